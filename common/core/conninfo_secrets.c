/*
 * conninfo_secrets.c: the secrets of a connection string and their removal
 * from libpq's messages (see conninfo_secrets.h).
 */
#include "core/conninfo_secrets.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

#define SECRET_MIN_LEN 3 /* shorter ones are masked only in quotes */
#define SECRET_MASK "********"
#define SECRET_HIDDEN "(a connection string, not shown: it may hold a password)"

static bool
is_uri(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* A URI or key=value pairs, not a bare database name: libpq's own test. */
bool
is_connection_string(const char *s)
{
	return is_uri(s) || strchr(s, '=') != NULL;
}

/*
 * Note s[0..len): as it is, or in double quotes (as libpq quotes a host or
 * user name) when it is too short to mask everywhere.
 */
static void
secrets_add_one(Secrets *secrets, const char *s, size_t len)
{
	if (len == 0 || secrets->n == MAX_SECRETS)
		return;
	if (len >= SECRET_MIN_LEN)
		secrets->s[secrets->n++] = str_printf("%.*s", (int) len, s);
	else
		secrets->s[secrets->n++] = str_printf("\"%.*s\"", (int) len, s);
}

/* Note s[0..len) and each of its pieces between '@', '/', ':' or blanks. */
static void
secrets_add(Secrets *secrets, const char *s, size_t len)
{
	size_t start = 0;

	secrets_add_one(secrets, s, len);
	for (size_t i = 0; i <= len; i++)
		if (i == len || strchr("@/: ", s[i]) != NULL)
		{
			if (i - start < len)
				secrets_add_one(secrets, s + start, i - start);
			start = i + 1;
		}
}

void
secrets_free(Secrets *secrets)
{
	for (int i = 0; i < secrets->n; i++)
		free(secrets->s[i]);
	secrets->n = 0;
}

/*
 * Parse the connection string s as libpq will and note its secrets: the
 * password, and in a URI all of the user info after the user name, which
 * libpq may have split elsewhere ("u:pa@ss/word@host" gives the password
 * "pa" and the host "ss").  False, nothing noted, if libpq cannot parse s.
 */
bool
secrets_collect(const char *s, Secrets *secrets)
{
	char *parse_error = NULL;
	PQconninfoOption *options = PQconninfoParse(s, &parse_error);

	if (options == NULL)
	{
		PQfreemem(parse_error); /* it quotes s */
		return false;
	}
	for (const PQconninfoOption *o = options; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			secrets_add(secrets, o->val, strlen(o->val));
	PQconninfoFree(options);
	if (is_uri(s))
	{
		const char *userinfo = strstr(s, "://") + 3;
		const char *at = memrchr(userinfo, '@', strcspn(userinfo, "?"));
		const char *colon = at ? memchr(userinfo, ':', (size_t) (at - userinfo)) : NULL;

		if (colon)
			secrets_add(secrets, colon + 1, (size_t) (at - colon - 1));
	}
	return true;
}

/* msg with every secret (the longest at each place) masked; the caller frees it. */
char *
secrets_scrub(const char *msg, const Secrets *secrets)
{
	StrBuf out;

	sb_init(&out);
	while (*msg)
	{
		size_t longest = 0;

		for (int i = 0; i < secrets->n; i++)
		{
			size_t len = strlen(secrets->s[i]);

			if (len > longest && strncmp(msg, secrets->s[i], len) == 0)
				longest = len;
		}
		if (longest > 0)
			sb_append(&out, msg[0] == '"' ? "\"" SECRET_MASK "\"" : SECRET_MASK), msg += longest;
		else
			sb_appendn(&out, msg++, 1);
	}
	return sb_steal(&out);
}

/*
 * ARG, a command-line argument, as it may be printed: a connection string
 * in it (ARG itself, or the value of "--option=VALUE") has its password
 * masked; one libpq cannot parse, or whose password is too short to mask
 * safely, is left out.  The caller frees the result.
 */
char *
secrets_mask_arg(const char *arg)
{
	const char *eq = arg[0] == '-' ? strchr(arg, '=') : NULL;
	const char *value = eq ? eq + 1 : arg;
	Secrets secrets = {0};
	char *masked = NULL;

	if (!is_connection_string(value))
		return str_printf("%s", arg);
	if (secrets_collect(value, &secrets))
	{
		bool short_secret = false;

		for (int i = 0; i < secrets.n; i++)
			short_secret = short_secret || secrets.s[i][0] == '"';
		if (!short_secret)
			masked = secrets_scrub(arg, &secrets);
		secrets_free(&secrets);
	}
	if (masked == NULL)
		masked = str_printf("%.*s" SECRET_HIDDEN, (int) (value - arg), arg);
	return masked;
}
