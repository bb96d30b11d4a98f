/*
 * db.c: libpq helpers: connection and the session's settings, and error
 * reporting with SQLSTATE (db_report: every failed statement, our own cancel
 * as the stop).  Statements and results are db_query.c's; DDL under a short
 * lock_timeout with retry is ddl.c's.
 */
#include "core/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conninfo_secrets.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"

static void
chomp_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	snprintf(dst, size, "%s", src ? src : "");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

/*
 * Every value phasemig sends or reads is UTF-8 (the export is): the
 * connection's client_encoding must be UTF8 whatever a role's or database's
 * setting, or an "options" of the connection string, made it.  Logs and
 * returns false when it cannot be.
 */
static bool
pin_client_encoding(PGconn *conn)
{
	if (PQclientEncoding(conn) != pg_char_to_encoding("UTF8") && PQsetClientEncoding(conn, "UTF8") != 0)
	{
		char why[DB_MESSAGE_MAX];

		log_error("could not set the connection's client_encoding to UTF8: %s",
				  db_error_line(NULL, conn, why, sizeof why));
		return false;
	}
	if (PQclientEncoding(conn) != pg_char_to_encoding("UTF8"))
	{
		log_error("the connection's client_encoding is %s, not UTF8", pg_encoding_to_char(PQclientEncoding(conn)));
		return false;
	}
	return true;
}

/* The settings of every session, each checked: one that did not apply fails the connection. */
static const char *const session_settings[] = {
	/* the server's NOTICEs ("already exists, skipping") are noise to an operator */
	"SET client_min_messages = warning",
	/*
	 * A role's statement_timeout would kill a long CREATE INDEX CONCURRENTLY
	 * or VALIDATE halfway; phasemig bounds its waits with lock_timeout instead.
	 */
	"SET statement_timeout = 0",
	/*
	 * A role's idle_session_timeout would end the run's own connection while
	 * it waits (on --jobs workers, a pause, a hook), and the plan's lock with
	 * it.  idle_in_transaction_session_timeout stays: phasemig never waits
	 * inside a transaction, so it only ends a stuck one holding row locks.
	 */
	"SET idle_session_timeout = 0",
	/*
	 * If this process dies (kill -9, a lost terminal), the server notices the
	 * closed socket within a second and cancels our statement, releasing the
	 * plan's lock, instead of finishing a long statement nobody waits for.
	 */
	"SET client_connection_check_interval = 1000",
	/*
	 * phase2 stages the mapping and its lookups in temporary tables that the
	 * batches probe for every row: room for them in this session's local
	 * buffers (allocated as used, settable only before a temporary table is).
	 */
	"SET temp_buffers = '256MB'",
	/*
	 * The mark of phasemig's own sessions: the two-way sync triggers keep to
	 * one way for them, so a rollback that empties a new column never
	 * empties the application's original through the trigger.
	 */
	"SET phasemig.session = on",
};

/*
 * What every phasemig session runs with, set on a new connection and again
 * after a reset: an empty search_path, UTF8, the server's version checked,
 * and the settings below.  Logs and returns false on failure.
 */
static bool
session_setup(PGconn *conn)
{
	PGresult *res;

	res = PQexec(conn, "SELECT pg_catalog.set_config('search_path', '', false)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		db_report(res, conn, "SELECT pg_catalog.set_config('search_path', '', false)");
		PQclear(res);
		return false;
	}
	PQclear(res);
	if (!pin_client_encoding(conn))
		return false;
	if (PQserverVersion(conn) < 140000)
	{
		log_error("the server runs PostgreSQL %d.%d; phasemig needs 14 or later", PQserverVersion(conn) / 10000,
				  PQserverVersion(conn) % 10000);
		return false;
	}
	return db_set_all(conn, session_settings, sizeof session_settings / sizeof session_settings[0]);
}

bool
db_set_all(PGconn *conn, const char *const *settings, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		PGresult *res = PQexec(conn, settings[i]);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

		/* a setting that did not apply (statement_timeout = 0, say) would go unseen until it bites */
		if (!ok)
		{
			char why[DB_MESSAGE_MAX];

			log_error("could not set up the session: \"%s\" failed: %s", settings[i],
					  db_error_line(res, conn, why, sizeof why));
		}
		PQclear(res);
		if (!ok)
			return false;
	}
	return true;
}

/* libpq's variables that choose the server, the database or the user: any of them set, DATABASE_URL is not used. */
static const char *const pg_target_vars[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE",
											 "PGUSER", "PGSERVICE",  NULL};

/* Those of pg_target_vars that are set (not empty), as "PGHOST, PGDATABASE" in BUF; false when none is. */
static bool
pg_target_vars_set(char *buf, size_t size)
{
	buf[0] = '\0';
	for (int i = 0; pg_target_vars[i]; i++)
		if (getenv(pg_target_vars[i]) && getenv(pg_target_vars[i])[0])
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "", pg_target_vars[i]);
	return buf[0] != '\0';
}

const char *
db_choose_conninfo(const char *conninfo, const char **source)
{
	static bool announced;
	const char *url = getenv("DATABASE_URL");
	char pg_vars[128];

	if (conninfo && conninfo[0])
	{
		*source = "given with -d";
		return conninfo;
	}
	*source = "in DATABASE_URL";
	if (url == NULL || url[0] == '\0')
		return NULL;
	if (pg_target_vars_set(pg_vars, sizeof pg_vars))
	{
		if (!announced)
			log_info("DATABASE_URL is set but not used: libpq's PG* variables come first (set: %s); give -d "
					 "to choose",
					 pg_vars);
		announced = true;
		return NULL;
	}
	if (!announced)
		log_info("connecting with DATABASE_URL: neither -d nor PGHOST, PGPORT, PGDATABASE, PGUSER or PGSERVICE "
				 "is set");
	announced = true;
	return url;
}

/*
 * The application_name the session gets: PHASEMIG_PART alone, or after the
 * operator's own (an application_name in CONNINFO, else $PGAPPNAME) as
 * "OPERATOR / PHASEMIG_PART".  The server keeps 63 bytes (NAMEDATALEN - 1):
 * the operator's part is cut so that phasemig's up to its run id fits.
 * Malloc'd; NULL when CONNINFO cannot be parsed (the caller said why).
 */
static char *
application_name_for(const char *conninfo, const char *phasemig_part)
{
	PQconninfoOption *opts = NULL;
	const char *own = NULL;
	const char *run_id = strstr(phasemig_part, "phasemig run ");
	size_t keep, room;
	char *name;

	if (conninfo && is_connection_string(conninfo))
	{
		opts = PQconninfoParse(conninfo, NULL);
		if (opts == NULL)
			return NULL;
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (strcmp(o->keyword, "application_name") == 0 && o->val && o->val[0])
				own = o->val;
	}
	if (own == NULL && getenv("PGAPPNAME") && getenv("PGAPPNAME")[0])
		own = getenv("PGAPPNAME");
	if (own == NULL)
	{
		PQconninfoFree(opts);
		return xstrdup(phasemig_part);
	}
	/* phasemig's part up to the end of its run id ("phasemig run " and 8 hex digits) must stay */
	keep = run_id ? (size_t) (run_id - phasemig_part) + strlen("phasemig run ") + 8 : strlen(phasemig_part);
	keep = keep < strlen(phasemig_part) ? keep : strlen(phasemig_part);
	room = DB_APPNAME_MAX > keep + 3 ? DB_APPNAME_MAX - keep - 3 : 0;
	if (strlen(own) <= room)
		room = strlen(own);
	/* not in the middle of a UTF-8 character */
	while (room > 0 && room < strlen(own) && ((unsigned char) own[room] & 0xC0) == 0x80)
		room--;
	name = str_printf("%.*s / %s", (int) room, own, phasemig_part);
	PQconninfoFree(opts);
	return name;
}

PGconn *
db_connect_try(const char *conninfo, const char *application_name, char **why)
{
	/* after dbname, so client_encoding overrides a conninfo's and PGCLIENTENCODING */
	const char *keywords[] = {"dbname", "application_name", "client_encoding", NULL};
	const char *values[4];
	const char *source;
	const char *dbname = db_choose_conninfo(conninfo, &source);
	Secrets secrets = {0};
	char *appname;
	PGconn *conn;

	if (dbname && is_connection_string(dbname) && !secrets_collect(dbname, &secrets))
	{
		log_error("the connection string %s could not be parsed; it is not shown because it may hold a password",
				  source);
		log_hint("in key=value form, quote a value with blanks: password='a b'; in a URI, %%-encode '@', '/', "
				 "':', '%%' and blanks in the password: %%40 for '@'");
		return NULL;
	}
	appname = application_name_for(dbname, application_name);
	values[0] = (dbname && dbname[0]) ? dbname : NULL;
	values[1] = appname;
	values[2] = "UTF8";
	values[3] = NULL;
	if (values[0] == NULL)
		keywords[0] = "application_name", values[0] = appname, keywords[1] = "client_encoding", values[1] = "UTF8",
		keywords[2] = NULL;

	conn = PQconnectdbParams(keywords, values, 1);
	free(appname);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char *scrubbed = secrets_scrub(conn ? PQerrorMessage(conn) : "out of memory", &secrets);
		char msg[1024];

		chomp_copy(msg, sizeof msg, scrubbed);
		*why = xstrdup(msg);
		free(scrubbed);
		secrets_free(&secrets);
		PQfinish(conn);
		return NULL;
	}
	secrets_free(&secrets);
	if (!session_setup(conn))
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
db_connect(const char *conninfo, const char *application_name)
{
	char *why = NULL;
	PGconn *conn = db_connect_try(conninfo, application_name, &why);

	if (why)
		log_error("could not connect to the database: %s", why);
	free(why);
	return conn;
}

bool
db_reset(PGconn *conn)
{
	PQreset(conn);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char why[DB_MESSAGE_MAX];

		log_error("could not connect to the database again: %s", db_error_line(NULL, conn, why, sizeof why));
		return false;
	}
	return session_setup(conn);
}

bool
db_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

const char *
db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

const char *
db_error_line(const PGresult *res, const PGconn *conn, char *buf, size_t size)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	chomp_copy(buf, size, primary ? primary : PQerrorMessage(conn));
	return buf;
}

bool
db_stopped(const PGresult *res)
{
	/* the handler sets the flag before it sends the cancel: a 57014 after it is ours */
	return stop_requested() && strcmp(db_sqlstate(res), SQLSTATE_QUERY_CANCELED) == 0;
}

void
db_failure_keep(DbFailure *why, const PGresult *res, const PGconn *conn)
{
	if (why == NULL || why->message[0])
		return;
	snprintf(why->sqlstate, sizeof why->sqlstate, "%s", db_sqlstate(res));
	db_error_line(res, conn, why->message, sizeof why->message);
}

void
db_report(const PGresult *res, const PGconn *conn, const char *sql)
{
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *context = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
	char line[DB_MESSAGE_MAX];

	/* our own cancel: what the operator reads is that the run was stopped, wherever it was */
	if (db_stopped(res))
	{
		log_error("stopped by %s: the statement in progress was cancelled (the server rolled it back)",
				  stop_signal_name());
		if (sql)
			log_detail("statement: %s", sql);
		return;
	}
	log_error("%s", db_error_line(res, conn, line, sizeof line));
	if (detail)
		log_detail("%s", detail);
	if (context)
		log_detail("context: %s", context);
	if (hint)
		log_hint("%s", hint);
	if (sql)
		log_detail("statement: %s", sql);
}
