/*
 * ddl.c: DDL under a short lock_timeout, retried with jittered backoff when
 * a lock is not available or a deadlock is detected (DESIGN.md invariant 4),
 * and the statistics of how long each change held its locks.
 */
#include "core/ddl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"

static DbRetry retry = {.lock_timeout_ms = 1000, .max_attempts = 30, .max_backoff_ms = 5000};
/* --jobs workers run DDL on their own connections too (phase3): the figures are shared, under the mutex */
static DbDdlStats ddl_stats;
static pthread_mutex_t stats_mutex = PTHREAD_MUTEX_INITIALIZER;

void
db_ddl_stats_reset(void)
{
	pthread_mutex_lock(&stats_mutex);
	memset(&ddl_stats, 0, sizeof ddl_stats);
	pthread_mutex_unlock(&stats_mutex);
}

DbDdlStats
db_ddl_stats(void)
{
	DbDdlStats st;

	pthread_mutex_lock(&stats_mutex);
	st = ddl_stats;
	pthread_mutex_unlock(&stats_mutex);
	return st;
}

/*
 * Record one attempt (attempt_start) of a change begun at change_start.  An
 * attempt whose locks block the application's writes counts as a lock hold.
 */
static void
note_attempt(double change_start, double attempt_start, bool retried, bool blocks_writes)
{
	double now = clock_now_ms();

	pthread_mutex_lock(&stats_mutex);
	if (blocks_writes && now - attempt_start > ddl_stats.longest_attempt_ms)
		ddl_stats.longest_attempt_ms = now - attempt_start;
	if (now - change_start > ddl_stats.longest_ms)
		ddl_stats.longest_ms = now - change_start;
	if (retried)
		ddl_stats.retries++;
	pthread_mutex_unlock(&stats_mutex);
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
		log_warning("deadlock detected for %s, attempt %d of %d, retrying in %ld ms", what, attempt, retry.max_attempts,
					wait);
	else
		log_warning("lock not available for %s within %d ms, attempt %d of %d, retrying in %ld ms", what, timeout_ms,
					attempt, retry.max_attempts, wait);
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
	{
		/* a failed question is no answer: the default, and the statement after it tells the failure */
		PGresult *res = db_query_try(conn,
									 "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout' "
									 "AND EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE backend_type = "
									 "'autovacuum worker' AND datname = pg_catalog.current_database())",
									 0, NULL);

		deadlock_ms = db_ok(res) && PQntuples(res) == 1 ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
		PQclear(res);
	}
	if (deadlock_ms && atoi(deadlock_ms) + 200 > ms)
	{
		static _Atomic bool told; /* --jobs workers too */

		ms = atoi(deadlock_ms) + 200;
		if (!told || failed != NULL)
			log_info("an autovacuum worker is running in this database: waiting up to %d ms for %s, past "
					 "deadlock_timeout, so that the server cancels it if it holds the table",
					 ms, what);
		told = true;
	}
	free(deadlock_ms);
	return ms;
}

/*
 * One statement of the DDL's own bookkeeping (BEGIN, SET lock_timeout):
 * false after telling its failure, which a --jobs worker must return rather
 * than exit on (engine/jobs.h).
 */
static bool
session_exec(PGconn *conn, const char *sql)
{
	PGresult *res;
	bool ok;

	if (dryrun_intercept(sql)) /* as db_exec */
		return true;
	res = PQexec(conn, sql);
	ok = db_ok(res);
	if (!ok)
		db_report(res, conn, sql);
	PQclear(res);
	return ok;
}

static bool
ddl_try(PGconn *conn, const char *what, const char *const *stmts, int n, bool blocks_writes)
{
	char set_timeout[64];
	int timeout_ms;
	double change_start = clock_now_ms();

	if (dryrun_on())
	{
		dryrun_print_transaction(conn, stmts, n, retry.lock_timeout_ms);
		return true;
	}
	timeout_ms = attempt_lock_timeout(conn, what, NULL);

	for (int attempt = 1;; attempt++)
	{
		PGresult *res = NULL;
		const char *failed_sql = NULL;
		double attempt_start = clock_now_ms();

		snprintf(set_timeout, sizeof set_timeout, "SET LOCAL lock_timeout = %d", timeout_ms);
		if (!session_exec(conn, "BEGIN") || !session_exec(conn, set_timeout))
		{
			PQclear(PQexec(conn, "ROLLBACK"));
			return false;
		}
		for (int i = 0; i < n; i++)
		{
			if (attempt == 1)
				dryrun_log_statement(stmts[i]);
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
				log_error("gave up on %s after %d attempts: the table stayed locked by other sessions", what, attempt);
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
	double change_start = clock_now_ms();
	int timeout_ms;

	if (dryrun_on())
	{
		dryrun_print_statement(sql);
		return true;
	}
	dryrun_log_statement(sql);
	timeout_ms = use_lock_timeout ? attempt_lock_timeout(conn, what, NULL) : 0;

	for (int attempt = 1;; attempt++)
	{
		PGresult *res;
		double attempt_start = clock_now_ms();

		snprintf(set_timeout, sizeof set_timeout, "SET lock_timeout = %d", timeout_ms);
		if (!session_exec(conn, set_timeout))
			return false;
		res = PQexec(conn, sql);
		if (!session_exec(conn, "RESET lock_timeout"))
		{
			PQclear(res);
			return false;
		}
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
