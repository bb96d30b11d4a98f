/*
 * db_target.c: see db_target.h.  Only what libpq says it connected to
 * (PQdb, PQhost, PQport, PQuser) is named: none of these holds a password.
 */
#include "core/db_target.h"

#include <stdbool.h>

#include "core/strbuf.h"

/* A Unix-domain socket's directory (or Linux's abstract "@name"), not a host name. */
static bool
is_socket(const char *host)
{
	return host != NULL && (host[0] == '/' || host[0] == '@');
}

static const char *
or_empty(const char *s)
{
	return s ? s : "";
}

char *
db_target_describe(const PGconn *conn)
{
	const char *host;

	if (conn == NULL)
		return str_printf("no database");
	host = PQhost(conn);
	return str_printf("database \"%s\" on %s %s port %s as user \"%s\"", or_empty(PQdb(conn)),
					  is_socket(host) ? "socket" : "host", host && host[0] ? host : "localhost", or_empty(PQport(conn)),
					  or_empty(PQuser(conn)));
}

json_t *
db_target_json(const PGconn *conn)
{
	const char *host;

	if (conn == NULL)
		return json_null();
	host = PQhost(conn);
	return json_pack("{s:s, s:s, s:s, s:s}", "host", host && host[0] ? host : "localhost", "port",
					 or_empty(PQport(conn)), "name", or_empty(PQdb(conn)), "user", or_empty(PQuser(conn)));
}
