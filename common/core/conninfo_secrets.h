/*
 * conninfo_secrets.h: connection strings may hold a password, so none is ever
 * printed: a string libpq cannot parse is refused without quoting it (libpq's
 * parse error quotes it), and a connection error has the password scrubbed.
 */
#ifndef PHASEMIG_CONNINFO_SECRETS_H
#define PHASEMIG_CONNINFO_SECRETS_H

#include <stdbool.h>

#define MAX_SECRETS 32

/* The strings a connection error must not show (malloc'd). */
typedef struct Secrets
{
	int n;
	char *s[MAX_SECRETS];
} Secrets;

/* A URI or key=value pairs, not a bare database name: libpq's own test. */
bool is_connection_string(const char *s);
/*
 * Parse s as libpq will and note its secrets (the password and, in a URI, the
 * user info after the user name).  False, nothing noted, if libpq cannot parse s.
 */
bool secrets_collect(const char *s, Secrets *secrets);
/* msg with every secret masked; the caller frees it. */
char *secrets_scrub(const char *msg, const Secrets *secrets);
void secrets_free(Secrets *secrets);
/*
 * A command-line argument as it may be printed: a connection string in it
 * (the argument, or the value of "--option=VALUE") with its password masked,
 * or left out when libpq cannot parse it.  The caller frees it.
 */
char *secrets_mask_arg(const char *arg);

#endif
