/*
 * db_query.c: db.h's statements with parameters, each as db_x(), which exits
 * through log_exit on a failed statement (the main thread's helpers), and as
 * db_x_try(), which tells the failure and returns it (what a --jobs worker
 * uses); and reading results by column name.
 */
#include "core/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"

PGresult *
db_query_try(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	char *own = dryrun_registry_sql(sql);
	PGresult *res;

	if (own)
		sql = own;
	if (nparams == 0)
		res = PQexec(conn, sql);
	else
		res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	free(own);
	return res;
}

/*
 * A statement of a db_x() helper failed: tell it (db_report: the server's
 * message, or the stop that cancelled it) and end the run through log_exit,
 * whose cleanups close the run's migration_log rows (failed, or interrupted
 * after a SIGINT/SIGTERM) and say so.  On the main thread only (log.h).
 */
static _Noreturn void
fail(PGresult *res, const PGconn *conn, const char *sql)
{
	db_report(res, conn, sql);
	PQclear(res);
	log_exit(EXIT_FAILED);
}

PGresult *
db_query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_query_try(conn, sql, nparams, params);

	if (!db_ok(res))
		fail(res, conn, sql);
	return res;
}

PGresult *
db_query_answer(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = db_query_try(conn, sql, nparams, params);
	const char *state = db_sqlstate(res);

	/* data exceptions (22...), a syntax error, an undefined object, function or table, no such cast */
	bool about_input = strncmp(state, "22", 2) == 0 || strcmp(state, "42601") == 0 || strcmp(state, "42704") == 0
		|| strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0 || strcmp(state, "42846") == 0;

	if (!db_ok(res) && !about_input)
		fail(res, conn, sql);
	return res;
}

void
db_exec(PGconn *conn, const char *sql)
{
	if (dryrun_intercept(sql))
		return;
	PQclear(db_query(conn, sql, 0, NULL));
}

void
db_execp(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	if (dryrun_intercept(sql))
		return;
	PQclear(db_query(conn, sql, nparams, params));
}

long long
db_exec_rows(PGconn *conn, const char *sql)
{
	return db_execp_rows(conn, sql, 0, NULL);
}

long long
db_execp_rows(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res;
	long long rows;

	if (dryrun_intercept(sql))
		return 0;
	res = db_query(conn, sql, nparams, params);
	rows = atoll(PQcmdTuples(res));
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

bool
db_execp_try(PGconn *conn, const char *sql, int nparams, const char *const *params, long long *rows, DbFailure *why)
{
	PGresult *res;
	bool ok;

	if (rows)
		*rows = 0;
	if (dryrun_intercept(sql))
		return true;
	res = db_query_try(conn, sql, nparams, params);
	ok = db_ok(res);
	if (ok && rows)
		*rows = atoll(PQcmdTuples(res));
	if (!ok)
	{
		db_report(res, conn, sql);
		db_failure_keep(why, res, conn);
	}
	PQclear(res);
	return ok;
}

bool
db_count_try(PGconn *conn, const char *sql, int nparams, const char *const *params, long long *count, DbFailure *why)
{
	PGresult *res = db_query_try(conn, sql, nparams, params);
	bool ok = db_ok(res);

	*count = ok && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? atoll(PQgetvalue(res, 0, 0)) : 0;
	if (!ok)
	{
		db_report(res, conn, sql);
		db_failure_keep(why, res, conn);
	}
	PQclear(res);
	return ok;
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

bool
db_field_true(const PGresult *res, int row, const char *column)
{
	const char *v = db_field(res, row, column);

	return v != NULL && v[0] == 't';
}
