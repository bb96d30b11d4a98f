/*
 * throttle.c: phase2 throttle (the control row) and what a batch loop does
 * with it between batches; the lag it waits on is throttle_lag.c's.
 */
#include "engine/throttle.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/stop.h"
#include "engine/guard.h"
#include "engine/progress.h"
#include "engine/run.h"

typedef struct Control
{
	bool paused;
	bool next_run;  /* set for the next run, not yet taken by one */
	int sleep_ms;   /* -1: the run's own */
	int batch_size; /* 0: the run's own */
	char by[256];   /* who set it, and when */
} Control;

/* The plan's control row ($1) when it belongs to run $2 or to the next run. */
static const char *const control_sql =
	"SELECT paused, next_run, coalesce(sleep_ms, -1) AS sleep_ms, coalesce(batch_size, 0) AS batch_size, "
	"coalesce(updated_by, 'unknown') || ' at ' || " DB_ISO_UTC(
		"updated_at") " AS by "
					  "FROM migration_backup.phasemig_control WHERE plan = $1 AND (next_run OR run_id = $2::uuid)";

/* The row for status and throttle, whichever run it belongs to. */
static const char *const row_sql =
	"SELECT paused, next_run, run_id::text AS run_id, coalesce(sleep_ms, -1) AS sleep_ms, "
	"coalesce(batch_size, 0) AS batch_size, " DB_ISO_UTC("updated_at") " AS updated_at, updated_by, " DB_ISO_UTC(
		"paused_at") " AS paused_at FROM migration_backup.phasemig_control WHERE plan = $1";

/*
 * The id of the run holding the plan's lock (malloc'd), or NULL: none holds
 * it, or it has not begun its migration_log rows yet.  The holder closed
 * every older 'running' row when it took the lock, so those left are its own.
 */
static char *
running_run_id(Run *run, bool *held)
{
	const char *params[1] = {run->plan->name};
	char *holder = guard_holder(run->conn, run->plan);
	char *id = NULL;

	*held = holder != NULL;
	if (holder && mlog_state_exists(run->conn))
		id = db_value(run->conn,
					  "SELECT run_id::text FROM public.migration_log WHERE plan = $1 AND status = 'running' "
					  "ORDER BY id DESC LIMIT 1",
					  1, params);
	free(holder);
	return id;
}

/* read_control's answers */
enum
{
	CONTROL_NONE,
	CONTROL_FOUND,
	CONTROL_FAILED /* a statement failed: told, kept in b->failure */
};

/*
 * The control row of this run into C: CONTROL_NONE when there is none (or no
 * table, or one older than run-scoped settings).  A row set for the next run
 * becomes this run's (said, and logged): no later run sees it.
 */
static int
read_control(Run *run, BatchLoop *b, Control *c)
{
	const char *params[2] = {run->plan->name, run->run_id};

	for (int round = 0; round < 2; round++)
	{
		PGresult *res = db_query_try(run->conn, control_sql, 2, params);
		const char *state = db_sqlstate(res);
		bool found = db_ok(res) && PQntuples(res) == 1;
		long long taken;

		/* no control table (3F000: nor its schema), or an older one without run-scoped settings: nothing set */
		if (!db_ok(res) && strcmp(state, SQLSTATE_UNDEFINED_TABLE) != 0
			&& strcmp(state, SQLSTATE_UNDEFINED_COLUMN) != 0 && strcmp(state, "3F000") != 0)
		{
			db_report(res, run->conn, control_sql);
			db_failure_keep(&b->failure, res, run->conn);
			PQclear(res);
			return CONTROL_FAILED;
		}
		if (found)
		{
			c->paused = db_field_true(res, 0, "paused");
			c->next_run = db_field_true(res, 0, "next_run");
			c->sleep_ms = (int) db_field_ll(res, 0, "sleep_ms");
			c->batch_size = (int) db_field_ll(res, 0, "batch_size");
			snprintf(c->by, sizeof c->by, "%s", db_field(res, 0, "by"));
		}
		PQclear(res);
		if (!found || !c->next_run)
			return found ? CONTROL_FOUND : CONTROL_NONE;
		/* set for the next run: this one; of --jobs workers one takes it, the others read it as this run's */
		if (!db_execp_try(run->conn,
						  "UPDATE migration_backup.phasemig_control SET run_id = $2::uuid, next_run = false, "
						  "paused_at = CASE WHEN paused THEN clock_timestamp() END WHERE plan = $1 AND next_run",
						  2, params, &taken, &b->failure))
			return CONTROL_FAILED;
		if (taken > 0)
			log_info("%s: throttle: this run takes the settings given for the next run by %s", b->what, c->by);
	}
	return CONTROL_NONE;
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
static bool
rebase_rate(Run *run, BatchLoop *b)
{
	progress_rebase(b);
	return b->entry <= 0 || b->rows_total < 0
		|| mlog_set_progress_try(run, b->entry, b->rows_total, b->rows_done, b->last_key, &b->failure);
}

int
throttle_between_batches(Run *run, BatchLoop *b, int *size)
{
	bool announced = false, changed = false;
	Control c;
	int found;

	while ((found = read_control(run, b, &c)) == CONTROL_FOUND)
	{
		changed |= take_settings(&c, b, size);
		if (!c.paused)
		{
			if (announced)
				log_info("%s: resumed by %s", b->what, c.by);
			if ((changed || announced) && !rebase_rate(run, b))
				return EXIT_FAILED;
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
	return found == CONTROL_FAILED ? EXIT_FAILED : EXIT_DONE;
}

/* The control row as JSON, RUNNING_ID the run holding the lock (NULL: none); NULL when there is no row. */
static json_t *
status_of(Run *run, const char *running_id)
{
	const char *params[1] = {run->plan->name};
	PGresult *res = db_query_try(run->conn, row_sql, 1, params);
	json_t *obj = NULL;

	if (db_ok(res) && PQntuples(res) == 1)
	{
		long long sleep_ms = db_field_ll(res, 0, "sleep_ms"), batch_size = db_field_ll(res, 0, "batch_size");
		bool next = db_field_true(res, 0, "next_run"), paused = db_field_true(res, 0, "paused");
		const char *id = db_field(res, 0, "run_id");
		const char *applies = next                      ? "next_run"
			: id == NULL                                ? "none"
			: running_id && strcmp(id, running_id) == 0 ? "running_run"
														: "ended_run";

		obj = json_pack("{s:b, s:s?, s:o, s:o, s:s, s:s?, s:s?, s:s}", "paused", paused, "paused_since",
						paused ? db_field(res, 0, "paused_at") : NULL, "sleep_ms",
						sleep_ms >= 0 ? json_integer(sleep_ms) : json_null(), "batch_size",
						batch_size > 0 ? json_integer(batch_size) : json_null(), "updated_at",
						db_field(res, 0, "updated_at"), "updated_by", db_field(res, 0, "updated_by"), "run_id", id,
						"applies_to", applies);
	}
	PQclear(res);
	return obj;
}

json_t *
throttle_status(Run *run)
{
	bool held;
	char *running = running_run_id(run, &held);
	json_t *obj = status_of(run, running);

	free(running);
	return obj;
}

const char *
throttle_paused_since(const json_t *t)
{
	const char *applies = json_string_value(json_object_get(t, "applies_to"));
	const char *since = json_string_value(json_object_get(t, "paused_since"));

	if (!json_is_true(json_object_get(t, "paused")) || applies == NULL || strcmp(applies, "running_run") != 0)
		return NULL;
	return since ? since : "?";
}

void
throttle_print(const json_t *t)
{
	json_t *sleep = json_object_get(t, "sleep_ms"), *size = json_object_get(t, "batch_size");
	const char *by = json_string_value(json_object_get(t, "updated_by"));
	const char *applies = json_string_value(json_object_get(t, "applies_to"));
	const char *id = json_string_value(json_object_get(t, "run_id"));
	const char *since = json_string_value(json_object_get(t, "paused_since"));

	applies = applies ? applies : "none";
	if (strcmp(applies, "next_run") == 0)
		printf("for the next run: ");
	else if (strcmp(applies, "running_run") == 0)
		printf("for the running run %.8s: ", id);
	else if (strcmp(applies, "ended_run") == 0)
		printf("none in force (the last, for run %.8s, which has ended): ", id);
	else
		printf("none in force (left by an older phasemig, for no run): ");
	if (json_is_true(json_object_get(t, "paused")))
		printf(since ? "paused since %s" : "paused", since);
	else
		printf("not paused");
	if (json_is_integer(sleep))
		printf(", %lld ms between batches", (long long) json_integer_value(sleep));
	if (json_is_integer(size))
		printf(", batch size %lld", (long long) json_integer_value(size));
	printf(" (set by %s at %s)\n", by ? by : "unknown", json_string_value(json_object_get(t, "updated_at")));
}

/* phase2 throttle --reset: every setting of the plan gone, of the running run and for the next one. */
static int
reset_command(Run *run)
{
	const char *params[1] = {run->plan->name};
	long long n = 0;

	if (db_exists(run->conn, "SELECT 1 WHERE pg_catalog.to_regclass('migration_backup.phasemig_control') IS NOT NULL",
				  0, NULL))
		n = db_execp_rows(run->conn, "DELETE FROM migration_backup.phasemig_control WHERE plan = $1", 1, params);
	printf("throttle of plan \"%s\": reset (%s); every run uses its own options\n", run->plan->name,
		   n > 0 ? "its setting cleared" : "nothing was set");
	log_info("throttle of plan \"%s\" reset", run->plan->name);
	return EXIT_DONE;
}

/*
 * Which run a change is for: the running one (*RUN_ID, malloc'd), or with
 * --next-run the next one (*RUN_ID NULL).  An exit code (said why) when it
 * is for none: no run is going and --next-run was not given, or a run is
 * going and --next-run was.
 */
static int
change_target(Run *run, const Options *opts, char **run_id)
{
	bool held;

	*run_id = running_run_id(run, &held);
	if (!opts->next_run && !held)
	{
		log_error("no run of plan \"%s\" is going: a throttle setting belongs to one run", run->plan->name);
		log_hint("give --next-run to set it for the next run that walks batches (phase2 apply or rollback, "
				 "phase3 rollback), and that run only");
		return EXIT_BAD_INPUT;
	}
	if (!opts->next_run && *run_id == NULL)
	{
		log_error("a run of plan \"%s\" is starting and has not recorded its run yet", run->plan->name);
		log_hint("try again in a moment, or give --next-run: the starting run takes it before its first batch");
		return EXIT_FAILED;
	}
	if (opts->next_run && *run_id != NULL)
	{
		log_error("run %.8s of plan \"%s\" is going: --next-run is for when none is", *run_id, run->plan->name);
		log_hint("leave --next-run out to change the running run, or wait for it to end");
		free(*run_id);
		*run_id = NULL;
		return EXIT_BAD_INPUT;
	}
	return EXIT_DONE;
}

/* The setting as the row is (or was) for the same run: a setting not given stays; for another run, the run's own. */
#define SAME_RUN "(c.next_run = $7::boolean AND c.run_id IS NOT DISTINCT FROM $6::uuid)"
#define PAUSED_NOW "coalesce($2::boolean, CASE WHEN " SAME_RUN " THEN c.paused ELSE false END)"

int
throttle_command(Run *run, const Options *opts)
{
	char sleep[16], size[16];
	char *target = NULL;
	const char *params[7] = {run->plan->name,
							 opts->pause        ? "true"
								 : opts->resume ? "false"
												: NULL,
							 opts->sleep_ms >= 0 ? sleep : NULL,
							 opts->batch_size > 0 ? size : NULL,
							 run->client,
							 NULL,
							 opts->next_run ? "true" : "false"};
	bool change = params[1] || params[2] || params[3];
	bool held;
	char *running;
	json_t *now;
	int rc;

	if (opts->max_lag_ms > 0 || opts->target_batch_ms > 0)
	{
		log_error("throttle sets --sleep-ms, --batch-size, --pause and --resume only; give --max-lag-ms, "
				  "--lag-query and --target-batch-ms to the run");
		return EXIT_BAD_INPUT;
	}
	if (opts->reset)
		return reset_command(run);
	snprintf(sleep, sizeof sleep, "%d", opts->sleep_ms);
	snprintf(size, sizeof size, "%d", opts->batch_size);
	/* 1. the run the setting is for: the running one, or the next one with --next-run */
	if (change && (rc = change_target(run, opts, &target)) != EXIT_DONE)
		return rc;
	params[5] = target;
	/* 2. a database phase1 prepared before throttle (or before run-scoped settings) gets its control table */
	if (change && (rc = mlog_create_state(run->conn)) != EXIT_DONE)
	{
		free(target);
		return rc;
	}
	/* 3. set what was asked; for the same run a setting not given stays as it was */
	if (change)
		db_execp(run->conn,
				 "INSERT INTO migration_backup.phasemig_control AS c (plan, paused, sleep_ms, batch_size, updated_by, "
				 "run_id, next_run, paused_at) VALUES ($1, coalesce($2::boolean, false), $3::integer, $4::integer, "
				 "$5, $6::uuid, $7::boolean, CASE WHEN $2::boolean THEN clock_timestamp() END) "
				 "ON CONFLICT (plan) DO UPDATE SET paused = " PAUSED_NOW ", "
				 "sleep_ms = coalesce($3::integer, CASE WHEN " SAME_RUN " THEN c.sleep_ms END), "
				 "batch_size = coalesce($4::integer, CASE WHEN " SAME_RUN " THEN c.batch_size END), "
				 "paused_at = CASE WHEN NOT " PAUSED_NOW " THEN NULL WHEN " SAME_RUN " AND c.paused THEN c.paused_at "
				 "ELSE clock_timestamp() END, "
				 "run_id = $6::uuid, next_run = $7::boolean, updated_at = clock_timestamp(), updated_by = $5",
				 7, params);
	free(target);
	/* 4. what the runs of this plan see now, and whether one is going */
	running = running_run_id(run, &held);
	printf("throttle of plan \"%s\": ", run->plan->name);
	if ((now = status_of(run, running)) != NULL)
		throttle_print(now);
	else
		printf("never set: each run uses its own options\n");
	json_decref(now);
	if (running)
		printf("run %.8s of this plan is going: it takes its setting before its next batch\n", running);
	else if (held)
		printf("a run of this plan is starting: it takes a setting given for the next run before its first batch\n");
	else
		printf("no run of this plan is going: a setting given for the next run is taken by the next phase2 apply "
			   "or rollback, or phase3 rollback, and by that run only\n");
	if (change)
		log_info("throttle of plan \"%s\" set for %s", run->plan->name,
				 opts->next_run ? "the next run" : "the running run");
	free(running);
	return EXIT_DONE;
}
