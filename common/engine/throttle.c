/*
 * throttle.c: phase2 throttle (the control row), what a batch loop does with
 * it between batches, and the lag it waits on.
 */
#include "engine/throttle.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/stop.h"
#include "engine/guard.h"
#include "engine/progress.h"
#include "engine/run.h"

/* how long one run of --lag-query may take (its connection's statement_timeout) */
#define LAG_QUERY_TIMEOUT "10s"

typedef struct Control
{
	bool paused;
	int sleep_ms;   /* -1: the run's own */
	int batch_size; /* 0: the run's own */
	char by[256];   /* who set it, and when */
} Control;

static const char *const control_sql =
	"SELECT paused, coalesce(sleep_ms, -1) AS sleep_ms, coalesce(batch_size, 0) AS batch_size, "
	"coalesce(updated_by, 'unknown') || ' at ' || " DB_ISO_UTC("updated_at") " AS by, " DB_ISO_UTC(
		"updated_at") " AS updated_at, updated_by "
					  "FROM migration_backup.phasemig_control WHERE plan = $1";

/* The plan's control row into C: false when there is none (or no table: a state older than throttle). */
static bool
read_control(Run *run, Control *c)
{
	const char *params[1] = {run->plan->name};
	PGresult *res = db_query_try(run->conn, control_sql, 1, params);
	bool found = db_ok(res) && PQntuples(res) == 1;

	if (found)
	{
		c->paused = db_field_true(res, 0, "paused");
		c->sleep_ms = (int) db_field_ll(res, 0, "sleep_ms");
		c->batch_size = (int) db_field_ll(res, 0, "batch_size");
		snprintf(c->by, sizeof c->by, "%s", db_field(res, 0, "by"));
	}
	PQclear(res);
	return found;
}

/* Take the row's sleep and batch size into B and *SIZE, saying what changed; whether anything did. */
static bool
take_settings(const Control *c, BatchLoop *b, int *size)
{
	bool changed = false;

	if (c->sleep_ms >= 0 && c->sleep_ms != b->sleep_ms)
	{
		changed = true;
		log_info("%s: throttle: %d ms between batches (was %d), set by %s", b->what, c->sleep_ms, b->sleep_ms, c->by);
		b->sleep_ms = c->sleep_ms;
	}
	if (c->batch_size > 0 && c->batch_size != *size)
	{
		changed = true;
		log_info("%s: throttle: batch size %d (was %d), set by %s%s", b->what, c->batch_size, *size, c->by,
				 b->target_batch_ms > 0 ? "; --target-batch-ms no longer adapts it" : "");
		*size = b->batch_size = c->batch_size;
		b->target_batch_ms = 0;
	}
	return changed;
}

/*
 * After a change or a pause, the rate (the progress line's, and status's
 * from migration_log) is measured afresh: the time left follows the new pace.
 */
static void
rebase_rate(Run *run, BatchLoop *b)
{
	progress_rebase(b);
	if (b->entry > 0 && b->rows_total >= 0)
		mlog_set_progress(run, b->entry, b->rows_total, b->rows_done, b->last_key);
}

int
throttle_between_batches(Run *run, BatchLoop *b, int *size)
{
	bool announced = false, changed = false;
	Control c;

	while (read_control(run, &c))
	{
		changed |= take_settings(&c, b, size);
		if (!c.paused)
		{
			if (announced)
				log_info("%s: resumed by %s", b->what, c.by);
			if (changed || announced)
				rebase_rate(run, b);
			return EXIT_DONE;
		}
		if (!announced)
		{
			log_progress_end();
			log_info("%s: paused by %s, after %lld rows (each batch committed); \"phase2 throttle --plan %s "
					 "--resume\" resumes",
					 b->what, c.by, b->rows_done, run->plan->path);
		}
		announced = true;
		if (stop_requested())
		{
			log_error("stopped by %s while paused, after %lld rows of %s (last key %s)", stop_signal_name(),
					  b->rows_done, b->what, b->last_key ? b->last_key : "none");
			return EXIT_FAILED;
		}
		db_sleep_ms(250);
	}
	return EXIT_DONE;
}

json_t *
throttle_status(Run *run)
{
	const char *params[1] = {run->plan->name};
	PGresult *res = db_query_try(run->conn, control_sql, 1, params);
	json_t *obj = NULL;

	if (db_ok(res) && PQntuples(res) == 1)
	{
		long long sleep_ms = db_field_ll(res, 0, "sleep_ms"), batch_size = db_field_ll(res, 0, "batch_size");

		obj = json_pack("{s:b, s:o, s:o, s:s, s:s?}", "paused", db_field_true(res, 0, "paused"), "sleep_ms",
						sleep_ms >= 0 ? json_integer(sleep_ms) : json_null(), "batch_size",
						batch_size > 0 ? json_integer(batch_size) : json_null(), "updated_at",
						db_field(res, 0, "updated_at"), "updated_by", db_field(res, 0, "updated_by"));
	}
	PQclear(res);
	return obj;
}

void
throttle_print(const json_t *t)
{
	json_t *sleep = json_object_get(t, "sleep_ms"), *size = json_object_get(t, "batch_size");
	const char *by = json_string_value(json_object_get(t, "updated_by"));

	printf("%s", json_is_true(json_object_get(t, "paused")) ? "paused" : "not paused");
	if (json_is_integer(sleep))
		printf(", %lld ms between batches", (long long) json_integer_value(sleep));
	if (json_is_integer(size))
		printf(", batch size %lld", (long long) json_integer_value(size));
	printf(" (set by %s at %s)\n", by ? by : "unknown", json_string_value(json_object_get(t, "updated_at")));
}

int
throttle_command(Run *run, const Options *opts)
{
	char sleep[16], size[16];
	const char *params[5] = {run->plan->name,
							 opts->pause        ? "true"
								 : opts->resume ? "false"
												: NULL,
							 opts->sleep_ms >= 0 ? sleep : NULL, opts->batch_size > 0 ? size : NULL, run->client};
	bool change = params[1] || params[2] || params[3];
	char *holder;
	json_t *now;
	int rc;

	if (opts->max_lag_ms > 0 || opts->target_batch_ms > 0)
	{
		log_error("throttle sets --sleep-ms, --batch-size, --pause and --resume only; give --max-lag-ms, "
				  "--lag-query and --target-batch-ms to the run");
		return EXIT_BAD_INPUT;
	}
	snprintf(sleep, sizeof sleep, "%d", opts->sleep_ms);
	snprintf(size, sizeof size, "%d", opts->batch_size);
	/* 1. a database phase1 prepared before throttle existed gets its control table */
	if (change && (rc = mlog_create_state(run->conn)) != EXIT_DONE)
		return rc;
	/* 2. set what was asked; a setting not given stays as it was */
	if (change)
		db_execp(run->conn,
				 "INSERT INTO migration_backup.phasemig_control AS c (plan, paused, sleep_ms, batch_size, updated_by) "
				 "VALUES ($1, coalesce($2::boolean, false), $3::integer, $4::integer, $5) "
				 "ON CONFLICT (plan) DO UPDATE SET paused = coalesce($2::boolean, c.paused), "
				 "sleep_ms = coalesce($3::integer, c.sleep_ms), batch_size = coalesce($4::integer, c.batch_size), "
				 "updated_at = clock_timestamp(), updated_by = $5",
				 5, params);
	/* 3. what the runs of this plan see now, and whether one is going */
	printf("throttle of plan \"%s\": ", run->plan->name);
	if ((now = throttle_status(run)) != NULL)
		throttle_print(now);
	else
		printf("never set: each run uses its own options\n");
	json_decref(now);
	holder = guard_holder(run->conn, run->plan);
	if (holder)
		printf("a run of this plan is going (%s): it takes this before its next batch\n", holder);
	else
		printf("no run of this plan is going: the next phase2 apply or rollback starts with this\n");
	if (change)
		log_info("throttle of plan \"%s\" set", run->plan->name);
	free(holder);
	return EXIT_DONE;
}

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

	/* read-only; one statement (the extended protocol allows no more) */
	PQclear(PQexec(lag_conn, "BEGIN READ ONLY"));
	res = PQexecParams(lag_conn, lag_query, 0, NULL, NULL, NULL, NULL, 0);
	if (!db_ok(res))
	{
		log_error("--lag-query failed: %s", db_error_line(res, lag_conn));
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

/* The lag now, in ms: the operator's query's, else the largest replay lag of the standbys. */
static long long
lag_now(Run *run, const char *lag_query, bool *ok)
{
	long long lag = 0;

	*ok = true;
	if (lag_query == NULL)
		return db_count(run->conn,
						"SELECT coalesce(max(extract(epoch FROM replay_lag) * 1000), 0)::bigint "
						"FROM pg_catalog.pg_stat_replication",
						0, NULL);
	pthread_mutex_lock(&lag_mutex);
	*ok = open_lag_connection(run) && lag_of_query(lag_query, &lag);
	pthread_mutex_unlock(&lag_mutex);
	return lag;
}

bool
throttle_check_lag_query(Run *run, const char *sql)
{
	bool ok;
	long long lag = lag_now(run, sql, &ok);

	if (ok)
		log_info("--lag-query says %lld ms now", lag);
	else
		log_hint("the query runs before each batch in a read-only transaction, e.g. for a logical replica: "
				 "SELECT extract(epoch FROM now() - last_msg_receipt_time) * 1000 FROM pg_stat_subscription on "
				 "the subscriber, or your replica's own measure from this database");
	return ok;
}

int
throttle_wait_for_lag(Run *run, int max_lag_ms, const char *lag_query)
{
	static bool told_no_standby;
	bool announced = false, ok;

	if (lag_query == NULL && !told_no_standby
		&& db_count(run->conn, "SELECT count(*) FROM pg_catalog.pg_stat_replication", 0, NULL) == 0)
	{
		log_warning("--max-lag-ms: no standby is connected to this server (pg_stat_replication is empty): "
					"nothing to wait for");
		log_hint("for a logical replica, or a replica this server does not list, give --lag-query SQL");
		told_no_standby = true;
	}
	for (;;)
	{
		long long lag = lag_now(run, lag_query, &ok);

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
