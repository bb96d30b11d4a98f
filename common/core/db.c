/*
 * db.c: libpq helpers: connection, statements with parameters, error reporting
 * with SQLSTATE, and DDL retried under lock_timeout (DESIGN.md invariant 4).
 */
#include "core/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/conninfo_secrets.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"

static DbRetry retry = {.lock_timeout_ms = 1000, .max_attempts = 30, .max_backoff_ms = 5000};
static DbDdlStats ddl_stats;

static bool is_retryable(const PGresult *res);

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

void
db_ddl_stats_reset(void)
{
	memset(&ddl_stats, 0, sizeof ddl_stats);
}

DbDdlStats
db_ddl_stats(void)
{
	return ddl_stats;
}

/*
 * Record one attempt (attempt_start) of a change begun at change_start.  An
 * attempt whose locks block the application's writes counts as a lock hold.
 */
static void
note_attempt(double change_start, double attempt_start, bool retried, bool blocks_writes)
{
	double now = now_ms();

	if (blocks_writes && now - attempt_start > ddl_stats.longest_attempt_ms)
		ddl_stats.longest_attempt_ms = now - attempt_start;
	if (now - change_start > ddl_stats.longest_ms)
		ddl_stats.longest_ms = now - change_start;
	if (retried)
		ddl_stats.retries++;
}

void
db_set_retry(const DbRetry *r)
{
	retry = *r;
}

const DbRetry *
db_get_retry(void)
{
	return &retry;
}

static void
chomp_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	snprintf(dst, size, "%s", src ? src : "");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

PGconn *
db_connect(const char *conninfo, const char *application_name)
{
	const char *keywords[] = {"dbname", "application_name", NULL};
	const char *values[3];
	const char *dbname = conninfo;
	const char *source = "given with -d";
	Secrets secrets = {0};
	PGconn *conn;
	PGresult *res;

	if (dbname == NULL || dbname[0] == '\0')
		dbname = getenv("DATABASE_URL"), source = "in DATABASE_URL";
	if (dbname && is_connection_string(dbname) && !secrets_collect(dbname, &secrets))
	{
		log_error("the connection string %s could not be parsed; it is not shown because it may hold a password",
				  source);
		log_hint("in key=value form, quote a value with blanks: password='a b'; in a URI, %%-encode '@', '/', "
				 "':', '%%' and blanks in the password: %%40 for '@'");
		return NULL;
	}
	values[0] = (dbname && dbname[0]) ? dbname : NULL;
	values[1] = application_name;
	values[2] = NULL;
	if (values[0] == NULL)
		keywords[0] = "application_name", values[0] = application_name, keywords[1] = NULL;

	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char *scrubbed = secrets_scrub(conn ? PQerrorMessage(conn) : "out of memory", &secrets);
		char msg[1024];

		chomp_copy(msg, sizeof msg, scrubbed);
		log_error("could not connect to the database: %s", msg);
		free(scrubbed);
		secrets_free(&secrets);
		PQfinish(conn);
		return NULL;
	}
	secrets_free(&secrets);
	res = PQexec(conn, "SELECT pg_catalog.set_config('search_path', '', false)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		db_report(res, conn, "SELECT pg_catalog.set_config('search_path', '', false)");
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	if (PQserverVersion(conn) < 140000)
	{
		log_error("the server runs PostgreSQL %d.%d; phasemig needs 14 or later", PQserverVersion(conn) / 10000,
				  PQserverVersion(conn) % 10000);
		PQfinish(conn);
		return NULL;
	}
	/* the server's NOTICEs ("already exists, skipping") are noise to an operator */
	PQclear(PQexec(conn, "SET client_min_messages = warning"));
	/*
	 * A role's statement_timeout would kill a long CREATE INDEX CONCURRENTLY
	 * or VALIDATE halfway; phasemig bounds its waits with lock_timeout instead.
	 */
	PQclear(PQexec(conn, "SET statement_timeout = 0"));
	/*
	 * If this process dies (kill -9, a lost terminal), the server notices the
	 * closed socket within a second and cancels our statement, releasing the
	 * plan's lock, instead of finishing a long statement nobody waits for.
	 */
	PQclear(PQexec(conn, "SET client_connection_check_interval = 1000"));
	/*
	 * phase2 stages the mapping and its lookups in temporary tables that the
	 * batches probe for every row: room for them in this session's local
	 * buffers (allocated as used, settable only before a temporary table is).
	 */
	PQclear(PQexec(conn, "SET temp_buffers = '256MB'"));
	return conn;
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
db_error_line(const PGresult *res, const PGconn *conn)
{
	static char line[2048];
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (primary)
		chomp_copy(line, sizeof line, primary);
	else
		chomp_copy(line, sizeof line, PQerrorMessage(conn));
	return line;
}

void
db_report(const PGresult *res, const PGconn *conn, const char *sql)
{
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *context = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;

	log_error("%s", db_error_line(res, conn));
	if (detail)
		log_detail("%s", detail);
	if (context)
		log_detail("context: %s", context);
	if (hint)
		log_hint("%s", hint);
	if (sql)
		log_detail("statement: %s", sql);
}

PGresult *
db_query_try(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	if (nparams == 0)
		return PQexec(conn, sql);
	return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

PGresult *
db_query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_query_try(conn, sql, nparams, params);

	if (!db_ok(res))
	{
		db_report(res, conn, sql);
		PQclear(res);
		log_exit(EXIT_FAILED);
	}
	return res;
}

void
db_exec(PGconn *conn, const char *sql)
{
	PQclear(db_query(conn, sql, 0, NULL));
}

void
db_execp(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PQclear(db_query(conn, sql, nparams, params));
}

long long
db_exec_rows(PGconn *conn, const char *sql)
{
	PGresult *res = db_query(conn, sql, 0, NULL);
	long long rows = atoll(PQcmdTuples(res));

	PQclear(res);
	return rows;
}

char *
db_value(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_query(conn, sql, nparams, params);
	char *value = NULL;

	if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		value = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

long long
db_count(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	char *v = db_value(conn, sql, nparams, params);
	long long n = v ? atoll(v) : 0;

	free(v);
	return n;
}

bool
db_exists(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_query(conn, sql, nparams, params);
	bool found = PQntuples(res) > 0;

	PQclear(res);
	return found;
}

char *
db_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	char *copy;

	if (q == NULL)
		log_fatal(EXIT_FAILED, "could not quote identifier \"%s\": %s", name, PQerrorMessage(conn));
	copy = xstrdup(q);
	PQfreemem(q);
	return copy;
}

void
db_end_session_work(PGconn *conn)
{
	PGresult *res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(conn) == PQTRANS_ACTIVE)
	{
		/* a COPY in progress: abort it, then read what the server answers */
		PQputCopyEnd(conn, "phasemig stopped");
		while ((res = PQgetResult(conn)) != NULL)
			PQclear(res);
	}
	if (PQtransactionStatus(conn) == PQTRANS_INTRANS || PQtransactionStatus(conn) == PQTRANS_INERROR)
		PQclear(PQexec(conn, "ROLLBACK"));
}

void
db_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool
is_retryable(const PGresult *res)
{
	const char *st = db_sqlstate(res);

	return strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 || strcmp(st, SQLSTATE_DEADLOCK) == 0;
}

/* Full jitter: a random wait in [base/2, base) where base doubles per attempt. */
static long
backoff_ms(int attempt)
{
	long base = 100L << (attempt < 10 ? attempt : 10);

	if (base > retry.max_backoff_ms)
		base = retry.max_backoff_ms;
	return base / 2 + (base > 1 ? random() % (base / 2) : 0);
}

static void
announce_retry(const char *what, const PGresult *res, int timeout_ms, int attempt, long wait)
{
	if (strcmp(db_sqlstate(res), SQLSTATE_DEADLOCK) == 0)
		log_warning("deadlock detected for %s, attempt %d of %d, retrying in %ld ms",
					what, attempt, retry.max_attempts, wait);
	else
		log_warning("lock not available for %s within %d ms, attempt %d of %d, retrying in %ld ms",
					what, timeout_ms, attempt, retry.max_attempts, wait);
}

/*
 * The lock_timeout of an attempt.  The server cancels an autovacuum worker
 * that holds a table (SHARE UPDATE EXCLUSIVE) once a lock request has waited
 * deadlock_timeout, but only if the request is still waiting then: with
 * lock_timeout at or under deadlock_timeout (both 1 s by default) every
 * attempt gives up first, for as long as the vacuum runs.  So while an
 * autovacuum worker is at work in this database, the first attempt, and any
 * after a lock timeout, waits until just past deadlock_timeout.
 */
static int
attempt_lock_timeout(PGconn *conn, const char *what, const PGresult *failed)
{
	char *deadlock_ms;
	int ms = retry.lock_timeout_ms;

	if (failed != NULL && strcmp(db_sqlstate(failed), SQLSTATE_LOCK_NOT_AVAILABLE) != 0)
		return ms;
	deadlock_ms = db_value(conn, "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout' "
						   "AND EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE backend_type = "
						   "'autovacuum worker' AND datname = pg_catalog.current_database())", 0, NULL);
	if (deadlock_ms && atoi(deadlock_ms) + 200 > ms)
	{
		static bool told;

		ms = atoi(deadlock_ms) + 200;
		if (!told || failed != NULL)
			log_info("an autovacuum worker is running in this database: waiting up to %d ms for %s, past "
					 "deadlock_timeout, so that the server cancels it if it holds the table", ms, what);
		told = true;
	}
	free(deadlock_ms);
	return ms;
}

static bool
ddl_try(PGconn *conn, const char *what, const char *const *stmts, int n, bool blocks_writes)
{
	char set_timeout[64];
	int timeout_ms = attempt_lock_timeout(conn, what, NULL);

	double change_start = now_ms();

	for (int attempt = 1;; attempt++)
	{
		PGresult *res = NULL;
		const char *failed_sql = NULL;
		double attempt_start = now_ms();

		snprintf(set_timeout, sizeof set_timeout, "SET LOCAL lock_timeout = %d", timeout_ms);
		db_exec(conn, "BEGIN");
		db_exec(conn, set_timeout);
		for (int i = 0; i < n; i++)
		{
			res = PQexec(conn, stmts[i]);
			if (!db_ok(res))
			{
				failed_sql = stmts[i];
				break;
			}
			PQclear(res);
			res = NULL;
		}
		if (failed_sql == NULL)
		{
			res = PQexec(conn, "COMMIT");
			if (db_ok(res))
			{
				PQclear(res);
				note_attempt(change_start, attempt_start, false, blocks_writes);
				return true;
			}
			failed_sql = "COMMIT";
		}
		PQclear(PQexec(conn, "ROLLBACK"));
		note_attempt(change_start, attempt_start, is_retryable(res), blocks_writes);
		if (!is_retryable(res) || attempt >= retry.max_attempts || stop_requested())
		{
			if (is_retryable(res) && stop_requested())
				log_error("stopped by %s while waiting for the lock of %s", stop_signal_name(), what);
			else if (is_retryable(res))
				log_error("gave up on %s after %d attempts: the table stayed locked by other sessions",
						  what, attempt);
			db_report(res, conn, failed_sql);
			PQclear(res);
			return false;
		}
		{
			long wait = backoff_ms(attempt);

			announce_retry(what, res, timeout_ms, attempt, wait);
			timeout_ms = attempt_lock_timeout(conn, what, res);
			PQclear(res);
			db_sleep_ms(wait);
		}
	}
}

bool
db_ddl_try(PGconn *conn, const char *what, const char *const *stmts, int n)
{
	return ddl_try(conn, what, stmts, n, true);
}

bool
db_ddl_try_nonblocking(PGconn *conn, const char *what, const char *const *stmts, int n)
{
	return ddl_try(conn, what, stmts, n, false);
}

bool
db_ddl_nontx_try(PGconn *conn, const char *what, const char *sql, bool use_lock_timeout)
{
	char set_timeout[64];

	double change_start = now_ms();

	int timeout_ms = use_lock_timeout ? attempt_lock_timeout(conn, what, NULL) : 0;

	for (int attempt = 1;; attempt++)
	{
		PGresult *res;
		double attempt_start = now_ms();

		snprintf(set_timeout, sizeof set_timeout, "SET lock_timeout = %d", timeout_ms);
		db_exec(conn, set_timeout);
		res = PQexec(conn, sql);
		db_exec(conn, "RESET lock_timeout");
		/* a CONCURRENTLY build holds no lock that blocks writes: not counted as a lock hold */
		if (use_lock_timeout)
			note_attempt(change_start, attempt_start, !db_ok(res) && is_retryable(res), true);
		if (db_ok(res))
		{
			PQclear(res);
			return true;
		}
		if (!is_retryable(res) || attempt >= retry.max_attempts || stop_requested())
		{
			db_report(res, conn, sql);
			PQclear(res);
			return false;
		}
		{
			long wait = backoff_ms(attempt);

			/* a CONCURRENTLY build can also end in a deadlock with another one: wait and retry */
			announce_retry(what, res, timeout_ms, attempt, wait);
			if (use_lock_timeout)
				timeout_ms = attempt_lock_timeout(conn, what, res);
			PQclear(res);
			db_sleep_ms(wait);
		}
	}
}

const char *
db_field(const PGresult *res, int row, const char *column)
{
	int c = PQfnumber(res, column);

	if (c < 0)
	{
		fprintf(stderr, "%s: internal error: the statement returns no column \"%s\"\n", log_progname(), column);
		abort();
	}
	return PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
}

long long
db_field_ll(const PGresult *res, int row, const char *column)
{
	const char *v = db_field(res, row, column);

	return v ? atoll(v) : 0;
}
