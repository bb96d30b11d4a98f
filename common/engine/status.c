/*
 * status.c: reads migration_log (and pg_locks for a run in progress) into a
 * JSON object, then prints it as text or as JSON; with --run, one run's steps.
 */
#include "engine/status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/db_target.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/guard.h"
#include "engine/operation.h"
#include "engine/progress.h"
#include "engine/repack.h"
#include "engine/summary.h"
#include "engine/throttle.h"

static json_t *
row_object(PGresult *res, int row)
{
	json_t *obj = json_object();

	for (int c = 0; c < PQnfields(res); c++)
	{
		if (PQgetisnull(res, row, c))
			json_object_set_new(obj, PQfname(res, c), json_null());
		else
			json_object_set_new(obj, PQfname(res, c), json_string(PQgetvalue(res, row, c)));
	}
	return obj;
}

/*
 * What the batch operations of this phase's applies have done since its
 * newest rollback (nothing after a rollback), and those of a rollback while it
 * runs: per operation its newest row, the
 * rows changed over every run since (checkpoints carry them, so a killed run
 * counts too), and for a fill in progress its rate and time left.
 */
static void
phase_progress(Run *run, json_t *obj, const char *const *params, bool lock_held)
{
	json_t *ops = json_array();
	long long done = 0, total = 0;
	double rate_now = 0;
	PGresult *res = db_query(
		run->conn,
		"WITH since AS (SELECT coalesce(max(id), 0) AS id FROM public.migration_log WHERE plan = $1 AND phase = $2 "
		"  AND operation = 'rollback' AND status = 'done'), "
		"r AS (SELECT l.* FROM public.migration_log l, since WHERE l.plan = $1 AND l.phase = $2 "
		"  AND l.rows_total IS NOT NULL AND l.operation NOT LIKE 'rollback %' AND l.id > since.id "
		"  AND (l.status = 'running' OR EXISTS (SELECT 1 FROM public.migration_log a WHERE a.run_id = l.run_id "
		"  AND a.operation = 'apply'))), "
		/*
		 * a table's fill is one row, or (--jobs) a row per key range "LABEL [i/n]",
		 * some of them perhaps resumed by later runs: the newest row of each
		 * range since the table's newest fresh (not resumed) start
		 */
		"b AS (SELECT r.*, regexp_replace(r.operation, ' \\[[0-9]+/[0-9]+\\]$', '') AS base FROM r), "
		"fresh AS (SELECT DISTINCT ON (base) base, run_id FROM b "
		"  WHERE NOT coalesce((metadata->>'resumed')::boolean, false) ORDER BY base, id DESC), "
		"cur AS (SELECT b.* FROM b LEFT JOIN fresh f USING (base) WHERE f.run_id IS NULL OR b.id >= "
		"  (SELECT min(x.id) FROM b x WHERE x.base = b.base AND x.run_id = f.run_id)), "
		"latest AS (SELECT DISTINCT ON (operation) * FROM cur ORDER BY operation, id DESC), "
		"totals AS (SELECT operation, count(*) AS runs, sum(coalesce((metadata->>'rows_changed')::bigint, "
		"  (metadata->>'rows_filled')::bigint, 0)) AS changed FROM r GROUP BY operation) "
		"SELECT l.operation, l.status, l.rows_done, l.rows_total, t.changed, t.runs, l.last_key IS NULL AS unstarted, "
		"  l.metadata->>'unmatched' AS unmatched, "
		"  (l.rows_done - (l.metadata->>'progress_from_rows')::bigint) / nullif(extract(epoch FROM "
		"  clock_timestamp() - (l.metadata->>'progress_from_at')::timestamptz), 0) AS rate "
		"FROM latest l JOIN totals t USING (operation) ORDER BY l.id",
		2, params);

	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *status = db_field(res, i, "status");
		const char *rate = db_field(res, i, "rate");
		bool running = strcmp(status, "running") == 0;
		long long rows_done = db_field_ll(res, i, "rows_done"), rows_total = db_field_ll(res, i, "rows_total");
		/* a table of the job whose turn has not come yet: its row is begun, no batch has run */
		bool waiting = running && lock_held && rows_done == 0 && db_field_true(res, i, "unstarted");
		json_t *op =
			json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "operation", db_field(res, i, "operation"), "status",
					  running && !lock_held ? "interrupted"
						  : waiting         ? "waiting"
											: status,
					  "rows_done", (json_int_t) rows_done, "rows_total", (json_int_t) rows_total, "rows_changed",
					  (json_int_t) db_field_ll(res, i, "changed"), "runs", (json_int_t) db_field_ll(res, i, "runs"));

		if (db_field(res, i, "unmatched"))
			json_object_set_new(op, "unmatched", json_integer(db_field_ll(res, i, "unmatched")));
		/* (a table whose batches are over keeps its row running until the job ends: not filling now) */
		if (running && lock_held && rate && atof(rate) > 0 && rows_done < rows_total)
		{
			json_object_set_new(op, "rows_per_second", json_real(atof(rate)));
			json_object_set_new(op, "eta_seconds",
								json_real(rows_total > rows_done ? (rows_total - rows_done) / atof(rate) : 0));
			rate_now += atof(rate);
		}
		done += rows_done;
		total += rows_total;
		json_array_append_new(ops, op);
	}
	PQclear(res);
	json_object_set_new(obj, "operations", ops);
	if (json_array_size(ops) > 0)
	{
		json_object_set_new(obj, "rows_done", json_integer(done));
		json_object_set_new(obj, "rows_total", json_integer(total));
	}
	/* the whole job's time left: every table's rows left at the rate of those filling now */
	if (rate_now > 0)
	{
		json_object_set_new(obj, "rows_per_second", json_real(rate_now));
		json_object_set_new(obj, "eta_seconds", json_real(total > done ? (double) (total - done) / rate_now : 0));
	}
}

static json_t *
phase_status(Run *run, int phase, bool lock_held)
{
	char ph[8];
	const char *params[2] = {run->plan->name, ph};
	json_t *obj = json_object();
	PGresult *res;

	snprintf(ph, sizeof ph, "%d", phase);
	json_object_set_new(obj, "phase", json_integer(phase));
	json_object_set_new(obj, "applied", json_boolean(mlog_phase_applied(run->conn, run->plan, phase)));

	res = db_query(
		run->conn,
		"SELECT operation, status, " DB_ISO_UTC("started_at") " AS started_at, " DB_ISO_UTC(
			"finished_at") " AS finished_at, db_user, client, run_id::text, "
						   "message FROM public.migration_log WHERE plan = $1 AND phase = $2 "
						   "AND operation IN ('apply', 'rollback', 'check', 'finalize') ORDER BY id DESC LIMIT 1",
		2, params);
	if (PQntuples(res) == 1)
	{
		json_t *last = row_object(res, 0);

		if (strcmp(PQgetvalue(res, 0, 1), "running") == 0 && !lock_held)
		{
			json_object_set_new(last, "status", json_string("interrupted"));
			json_object_set_new(last, "message",
								json_string("its process is gone (the plan's lock is free); "
											"run the same command again to continue"));
		}
		json_object_set_new(obj, "last_run", last);
	}
	else
		json_object_set_new(obj, "last_run", json_null());
	PQclear(res);

	phase_progress(run, obj, params, lock_held);
	/* what the last apply of this phase found (invalid keys, orphans, conflicts, findings) */
	res = db_query(run->conn,
				   "SELECT metadata::text FROM public.migration_log WHERE plan = $1 AND phase = $2 "
				   "AND operation NOT IN ('apply', 'rollback', 'check') AND operation NOT LIKE 'rollback %' "
				   "AND operation NOT LIKE 'fill %' AND (metadata ? 'invalid' OR metadata ? 'orphans' "
				   "OR metadata ? 'conflicts' OR metadata ? 'findings') ORDER BY id DESC LIMIT 1",
				   2, params);
	if (PQntuples(res) == 1)
	{
		json_t *meta = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		static const char *const keys[] = {"canonical", "not_canonical", "invalid", "regenerated", "orphans", NULL};

		for (int k = 0; meta && keys[k]; k++)
			if (json_object_get(meta, keys[k]))
				json_object_set(obj, keys[k], json_object_get(meta, keys[k]));
		json_decref(meta);
	}
	PQclear(res);
	/* phase3 finalize --repack: each table's sizes before and after its newest compaction */
	if (phase == 3)
		repack_status(run, obj);
	/* what the operations add of their own (convert_to_uuid: the steps of phase3 it reached) */
	for (int i = 0; i < run->plan->n_ops; i++)
		if (run->plan->ops[i].kind->status)
			run->plan->ops[i].kind->status(run, &run->plan->ops[i], phase, obj);

	/* the failures since the last done apply or rollback: the newest run's, then earlier attempts' */
	res = db_query(
		run->conn,
		"SELECT operation, status, " DB_ISO_UTC(
			"finished_at") " AS at, message, run_id::text "
						   "FROM public.migration_log WHERE plan = $1 AND phase = $2 AND status IN ('failed', 'refused') "
						   "AND id > coalesce((SELECT max(id) FROM public.migration_log WHERE plan = $1 AND phase = $2 "
						   "AND operation IN ('apply', 'rollback') AND status = 'done'), 0) ORDER BY id DESC LIMIT 5",
		2, params);
	{
		json_t *errors = json_array(), *earlier = json_array();
		json_t *last = json_object_get(obj, "last_run");
		const char *last_id = json_is_object(last) ? json_string_value(json_object_get(last, "run_id")) : NULL;

		for (int i = 0; i < PQntuples(res); i++)
			json_array_append_new(last_id && strcmp(db_field(res, i, "run_id"), last_id) == 0 ? errors : earlier,
								  row_object(res, i));
		json_object_set_new(obj, "errors", errors);
		json_object_set_new(obj, "earlier_attempts", earlier);
	}
	PQclear(res);
	return obj;
}

/*
 * A line per batch operation, the job's total when there are several, rate
 * and ETA while running; PAUSED_SINCE (not NULL: phase2 throttle paused the
 * running run) instead of the time left.
 */
static void
print_operations(json_t *ph, const char *paused_since)
{
	size_t i;
	json_t *op;
	json_t *ops = json_object_get(ph, "operations");

	json_array_foreach(ops, i, op)
	{
		long long done = json_integer_value(json_object_get(op, "rows_done"));
		long long total = json_integer_value(json_object_get(op, "rows_total"));
		long long runs = json_integer_value(json_object_get(op, "runs"));

		printf("  %s: %lld of %lld rows scanned (%.1f%%), %s; %lld changed in all (%lld run%s)",
			   json_string_value(json_object_get(op, "operation")), done, total, progress_percent(done, total),
			   json_string_value(json_object_get(op, "status")),
			   (long long) json_integer_value(json_object_get(op, "rows_changed")), runs, runs == 1 ? "" : "s");
		if (json_is_integer(json_object_get(op, "unmatched")))
			printf(", %lld without a match", (long long) json_integer_value(json_object_get(op, "unmatched")));
		putchar('\n');
		if (paused_since && json_is_real(json_object_get(op, "rows_per_second")))
			printf("    paused since %s (\"phase2 throttle --resume\" resumes)\n", paused_since);
		else if (json_is_real(json_object_get(op, "rows_per_second")))
		{
			char eta[64];

			progress_eta_text(json_real_value(json_object_get(op, "eta_seconds")), eta, sizeof eta);
			printf("    now %.0f rows/s, %s\n", json_real_value(json_object_get(op, "rows_per_second")), eta);
		}
	}
	if (json_array_size(ops) > 1)
	{
		long long done = json_integer_value(json_object_get(ph, "rows_done"));
		long long total = json_integer_value(json_object_get(ph, "rows_total"));

		printf("  all tables: %lld of %lld rows scanned (%.1f%%)", done, total, progress_percent(done, total));
		if (paused_since && json_is_real(json_object_get(ph, "eta_seconds")))
			printf("; paused since %s", paused_since);
		else if (json_is_real(json_object_get(ph, "eta_seconds")))
		{
			char eta[64];

			progress_eta_text(json_real_value(json_object_get(ph, "eta_seconds")), eta, sizeof eta);
			printf("; now %.0f rows/s, %s", json_real_value(json_object_get(ph, "rows_per_second")), eta);
		}
		putchar('\n');
	}
}

/* One failed or refused row E of migration_log, after PREFIX. */
static void
print_failure(const char *prefix, json_t *e)
{
	printf("%s%s %s at %s%s%s\n", prefix, json_string_value(json_object_get(e, "operation")),
		   json_string_value(json_object_get(e, "status")),
		   json_is_string(json_object_get(e, "at")) ? json_string_value(json_object_get(e, "at")) : "?",
		   json_is_string(json_object_get(e, "message")) ? ": " : "",
		   json_is_string(json_object_get(e, "message")) ? json_string_value(json_object_get(e, "message")) : "");
}

static void
print_text(json_t *st, const char *q_table, const char *target)
{
	size_t i;
	json_t *ph;
	const char *paused_since = throttle_paused_since(json_object_get(st, "throttle"));

	printf("plan %s on %s\n", json_string_value(json_object_get(st, "plan")), q_table);
	printf("%s\n", target);
	if (json_is_string(json_object_get(st, "running")))
		printf("running now: %s\n", json_string_value(json_object_get(st, "running")));
	if (json_is_object(json_object_get(st, "throttle")))
	{
		printf("throttle: ");
		throttle_print(json_object_get(st, "throttle"));
	}
	json_array_foreach(json_object_get(st, "phases"), i, ph)
	{
		json_t *last = json_object_get(ph, "last_run");
		json_t *errors = json_object_get(ph, "errors");
		size_t k;
		json_t *e;

		printf("\nphase%d: %s\n", (int) json_integer_value(json_object_get(ph, "phase")),
			   json_is_true(json_object_get(ph, "applied")) ? "applied" : "not applied");
		/* the newest run first, with its own errors; earlier failed attempts last, under their heading */
		if (json_is_object(last))
			printf(
				"  last run: %s %s, started %s by %s (%s)%s%s\n", json_string_value(json_object_get(last, "operation")),
				json_string_value(json_object_get(last, "status")),
				json_string_value(json_object_get(last, "started_at")),
				json_string_value(json_object_get(last, "db_user")),
				json_string_value(json_object_get(last, "client")) ? json_string_value(json_object_get(last, "client"))
																   : "?",
				json_is_string(json_object_get(last, "message")) ? ": " : "",
				json_is_string(json_object_get(last, "message")) ? json_string_value(json_object_get(last, "message"))
																 : "");
		else
			printf("  last run: never\n");
		json_array_foreach(errors, k, e) print_failure("  error:    ", e);
		print_operations(ph, paused_since);
		{
			static const char *const keys[] = {"canonical", "not_canonical", "invalid", "regenerated", "orphans", NULL};

			for (int k = 0; keys[k]; k++)
				if (json_is_integer(json_object_get(ph, keys[k])))
					printf("  %-9s %lld\n", keys[k], (long long) json_integer_value(json_object_get(ph, keys[k])));
			if (json_is_string(json_object_get(ph, "reached")))
				printf("  reached:  %s\n", json_string_value(json_object_get(ph, "reached")));
			if (json_array_size(json_object_get(ph, "schemas")) > 0)
			{
				json_t *s;

				printf("  schemas:  ");
				json_array_foreach(json_object_get(ph, "schemas"), k, s)
					printf("%s%s", k ? ", " : "", json_string_value(s));
				printf(" (search_path of each application version)\n");
			}
		}
		repack_print(ph);
		if (json_array_size(json_object_get(ph, "earlier_attempts")) > 0)
		{
			printf("  earlier attempts:\n");
			json_array_foreach(json_object_get(ph, "earlier_attempts"), k, e) print_failure("    ", e);
		}
	}
}

int
status_print(Run *run, bool as_json)
{
	json_t *st = json_object();
	json_t *phases = json_array();
	char *holder = guard_holder(run->conn, run->plan);
	bool state = mlog_state_exists(run->conn);

	json_object_set_new(st, "plan", json_string(run->plan->name));
	/* identifiers as they are, not quoted: JSON needs no SQL quoting */
	json_object_set_new(st, "schema", json_string(run->plan->schema));
	json_object_set_new(st, "table", json_string(run->plan->table));
	json_object_set_new(st, "database", db_target_json(run->conn));
	json_object_set_new(st, "running", holder ? json_string(holder) : json_null());
	for (int phase = 1; phase <= 3 && state; phase++)
		json_array_append_new(phases, phase_status(run, phase, holder != NULL));
	if (!state)
		for (int phase = 1; phase <= 3; phase++)
			json_array_append_new(phases,
								  json_pack("{s:i, s:b, s:n, s:[], s:[]}", "phase", phase, "applied", 0, "last_run",
											"errors", "earlier_attempts"));
	json_object_set_new(st, "phases", phases);
	{
		json_t *throttle = state ? throttle_status(run) : NULL;

		json_object_set_new(st, "throttle", throttle ? throttle : json_null());
	}
	if (as_json)
	{
		char *s = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(s);
		free(s);
	}
	else
	{
		char *target = db_target_describe(run->conn);

		print_text(st, run->plan->q_table, target);
		free(target);
		if (!state)
			printf("\n(no migration_log table: phase1 has never been applied to this database)\n");
	}
	json_decref(st);
	free(holder);
	return EXIT_DONE;
}

/*
 * The full run id GIVEN stands for: GIVEN itself, or the one run of the plan
 * whose id starts with it (the 8 digits application_name shows).  Malloc'd;
 * NULL after saying why when GIVEN starts no run's id or several.
 */
static char *
full_run_id(Run *run, const char *given)
{
	const char *params[2] = {run->plan->name, given};
	size_t n = strlen(given);
	PGresult *res;
	char *id = NULL;

	/* (cli.c took only hex digits and hyphens, 8 to 36 of them) */
	if (n == 36 || !mlog_state_exists(run->conn))
		return xstrdup(given);
	res = db_query(run->conn,
				   "SELECT DISTINCT run_id::text FROM public.migration_log WHERE plan = $1 "
				   "AND run_id::text LIKE pg_catalog.lower($2) || '%' LIMIT 2",
				   2, params);
	if (PQntuples(res) > 1)
		log_error("--run \"%s\" starts the ids of several runs of plan \"%s\": give more of it", given,
				  run->plan->name);
	else if (PQntuples(res) == 0)
		log_error("no run of plan \"%s\" in migration_log has an id starting with \"%s\"", run->plan->name, given);
	else
		id = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return id;
}

/* ", longest lock hold N ms" and the like, from the figures of OBJ that are there. */
static void
print_lock_figures(json_t *obj)
{
	if (json_is_number(json_object_get(obj, "ddl_longest_attempt_ms")))
		printf(", longest lock hold %.1f ms", json_number_value(json_object_get(obj, "ddl_longest_attempt_ms")));
	if (json_is_number(json_object_get(obj, "ddl_longest_ms")))
		printf(", longest DDL %.1f ms", json_number_value(json_object_get(obj, "ddl_longest_ms")));
	if (json_is_integer(json_object_get(obj, "ddl_retries")) && json_integer_value(json_object_get(obj, "ddl_retries")))
		printf(", %lld lock retries", (long long) json_integer_value(json_object_get(obj, "ddl_retries")));
}

/* status --run RUN_ID: one run's steps and figures (summary.h), as text or as JSON. */
int
status_print_run(Run *run, const char *given, bool as_json)
{
	char *run_id = full_run_id(run, given);
	json_t *obj = run_id ? summary_run(run, run_id) : NULL;
	size_t i;
	json_t *step;

	if (run_id == NULL)
		return EXIT_BAD_INPUT;
	if (obj == NULL)
	{
		free(run_id);
		return EXIT_FAILED;
	}
	if (as_json)
	{
		char *s = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));

		puts(s);
		free(s);
	}
	else if (!json_is_string(json_object_get(obj, "subcommand")))
		printf("run %s: not in migration_log\n", run_id);
	else
	{
		printf("run %s: phase%d %s %s, %lld rows", run_id, (int) json_integer_value(json_object_get(obj, "phase")),
			   json_string_value(json_object_get(obj, "subcommand")), json_string_value(json_object_get(obj, "status")),
			   (long long) json_integer_value(json_object_get(obj, "rows")));
		print_lock_figures(obj);
		putchar('\n');
		json_array_foreach(json_object_get(obj, "steps"), i, step)
		{
			printf("  %s: %s, %lld rows, %.3f s", json_string_value(json_object_get(step, "operation")),
				   json_string_value(json_object_get(step, "status")),
				   (long long) json_integer_value(json_object_get(step, "rows_done")),
				   json_number_value(json_object_get(step, "seconds")));
			print_lock_figures(json_object_get(step, "metadata"));
			putchar('\n');
		}
	}
	json_decref(obj);
	free(run_id);
	return EXIT_DONE;
}
