/*
 * throttle_lag.c: the lag a batch loop waits on (throttle.h): the standbys'
 * replay lag, or the operator's --lag-query on a read-only connection of its
 * own.  A --jobs worker calls it: nothing here exits.
 */
#include "engine/throttle.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/stop.h"
#include "engine/run.h"

/* how long one run of --lag-query may take (its connection's statement_timeout) */
#define LAG_QUERY_TIMEOUT "10s"

/*
 * The operator's --lag-query runs on a connection of its own, never on the
 * run's (which holds the plan's lock: pg_advisory_unlock_all() there would
 * let a second run in), read-only.  Opened by the first check, before any
 * --jobs worker starts; the workers share it, one query at a time.
 */
static PGconn *lag_conn;
static const char *const lag_settings[] = {
	"SET default_transaction_read_only = on",
	"SET statement_timeout = '" LAG_QUERY_TIMEOUT "'",
};
static pthread_mutex_t lag_mutex = PTHREAD_MUTEX_INITIALIZER;

static void
close_lag_connection(void *arg)
{
	(void) arg;
	PQfinish(lag_conn);
	lag_conn = NULL;
}

static bool
open_lag_connection(Run *run)
{
	if (lag_conn != NULL)
		return true;
	if ((lag_conn = run_connect(run, "lag query")) == NULL)
	{
		log_error("could not open the connection --lag-query runs on");
		return false;
	}
	log_on_exit(close_lag_connection, NULL);
	/*
	 * Read-only, and bounded: a lag measure that hangs would hold every batch
	 * (and a SIGTERM, which waits for the batch boundary) for as long.
	 */
	if (!db_set_all(lag_conn, lag_settings, sizeof lag_settings / sizeof lag_settings[0]))
	{
		PQfinish(lag_conn);
		lag_conn = NULL;
		return false;
	}
	return true;
}

/* The operator's query's lag on lag_conn; false after saying why (naming --lag-query) when it is no lag. */
static bool
lag_of_query(const char *lag_query, long long *lag)
{
	PGresult *res;
	bool ok = false;
	char why[DB_MESSAGE_MAX];

	/* read-only; one statement (the extended protocol allows no more) */
	res = PQexec(lag_conn, "BEGIN READ ONLY");
	if (!db_ok(res))
	{
		log_error("--lag-query's transaction could not begin: %s", db_error_line(res, lag_conn, why, sizeof why));
		PQclear(res);
		return false;
	}
	PQclear(res);
	res = PQexecParams(lag_conn, lag_query, 0, NULL, NULL, NULL, NULL, 0);
	if (!db_ok(res))
	{
		log_error("--lag-query failed: %s", db_error_line(res, lag_conn, why, sizeof why));
		log_detail("statement: %s", lag_query);
	}
	else if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
		log_error("--lag-query must return one row with one non-NULL column (the lag in ms); it returned %d "
				  "rows of %d columns",
				  PQntuples(res), PQnfields(res));
	else
	{
		const char *text = PQgetvalue(res, 0, 0);
		char *end;
		double v = strtod(text, &end);

		/* a bigint holds up to 9.2e18: a larger lag, NaN or infinity would wrap, a negative one never pause */
		if (end == text || *end != '\0')
			log_error("--lag-query returned \"%s\", not a number of milliseconds", text);
		else if (!isfinite(v) || v < 0 || v > 9.2e18)
			log_error("--lag-query returned %s: a lag is a finite number of milliseconds, 0 or more (at most 9.2e18)",
					  text);
		else
		{
			*lag = (long long) v;
			ok = true;
		}
		if (!ok)
			log_detail("statement: %s", lag_query);
	}
	PQclear(res);
	PQclear(PQexec(lag_conn, "ROLLBACK"));
	return ok;
}

/*
 * The lag now, in ms: the operator's query's, else the largest replay lag of
 * the standbys; *OK false when it could not be measured (said why; a failed
 * statement kept in *WHY).
 */
static long long
lag_now(Run *run, const char *lag_query, bool *ok, DbFailure *why)
{
	long long lag = 0;

	if (lag_query == NULL)
	{
		*ok = db_count_try(run->conn,
						   "SELECT coalesce(max(extract(epoch FROM replay_lag) * 1000), 0)::bigint "
						   "FROM pg_catalog.pg_stat_replication",
						   0, NULL, &lag, why);
		return lag;
	}
	pthread_mutex_lock(&lag_mutex);
	*ok = open_lag_connection(run) && lag_of_query(lag_query, &lag);
	pthread_mutex_unlock(&lag_mutex);
	return lag;
}

bool
throttle_check_lag_query(Run *run, const char *sql)
{
	bool ok;
	long long lag = lag_now(run, sql, &ok, NULL);

	if (ok)
		log_info("--lag-query says %lld ms now", lag);
	else
		log_hint("the query runs before each batch in a read-only transaction, e.g. for a logical replica: "
				 "SELECT extract(epoch FROM now() - last_msg_receipt_time) * 1000 FROM pg_stat_subscription on "
				 "the subscriber, or your replica's own measure from this database");
	return ok;
}

int
throttle_wait_for_lag(Run *run, BatchLoop *b)
{
	/* said once per run, whichever --jobs worker sees it first */
	static atomic_bool told_no_standby;
	int max_lag_ms = b->max_lag_ms;
	const char *lag_query = b->lag_query;
	bool announced = false, ok;
	long long standbys;

	if (lag_query == NULL && !atomic_load(&told_no_standby))
	{
		if (!db_count_try(run->conn, "SELECT count(*) FROM pg_catalog.pg_stat_replication", 0, NULL, &standbys,
						  &b->failure))
			return EXIT_FAILED;
		if (standbys == 0 && !atomic_exchange(&told_no_standby, true))
		{
			log_warning("--max-lag-ms: no standby is connected to this server (pg_stat_replication is empty): "
						"nothing to wait for");
			log_hint("for a logical replica, or a replica this server does not list, give --lag-query SQL");
		}
	}
	for (;;)
	{
		long long lag = lag_now(run, lag_query, &ok, &b->failure);

		if (!ok)
			return EXIT_FAILED;
		if (lag <= max_lag_ms || stop_requested())
		{
			if (announced && !stop_requested())
				log_info("lag is %lld ms, under %d ms: going on", lag, max_lag_ms);
			return EXIT_DONE;
		}
		if (!announced)
			log_info("pausing: %s is %lld ms, over the limit of %d ms",
					 lag_query ? "--lag-query's lag" : "a standby's replay lag", lag, max_lag_ms);
		announced = true;
		db_sleep_ms(500);
	}
}
