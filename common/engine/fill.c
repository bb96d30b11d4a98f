/*
 * fill.c: the units of phase2's fills (fill.h).  A unit is a key range of a
 * table with its own migration_log row; the ranges of a fresh split are
 * ntile()'s over the key, and an interrupted run's unfinished ranges are
 * taken over as they were (bounds kept in each row's metadata), so resume
 * stays exact when --jobs changes.  With --jobs N they run on N connections
 * at once, largest first (jobs.c: a failure on one stops the others at their
 * batch boundary); every unit's outcome is then recorded here, on the run's
 * own connection, by the main thread alone.
 */
#include "engine/fill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/jobs.h"

/*
 * A fill whose updates can be HOT (FillTable.hot_updates) leaves its table
 * larger the more of it one batch changes.  A row's new version stays on its
 * page (a HOT update: no index entry either) only when the page has room,
 * and a full page has room only for what earlier, committed batches freed on
 * it (pruned when a later batch visits it).  The batches go in key order,
 * which spreads each over every page, so the rows a batch changes on pages
 * no batch touched before move to new pages at the table's end: a share of
 * the table about the batch's share of it.  Hence batches of at most
 * 1/FILL_HOT_SHARE of the unit's rows: at 4,000 users the uuid job's four
 * tables end 1.50x the offline rewrite in batches of 1,000, 1.29x with 1/20,
 * 1.26x with 1/40 (docs/performance.md, "Size after finalize").  A VACUUM
 * between batches frees nothing the next visit's pruning does not: it was
 * larger there, and wrote more WAL.
 */
#define FILL_HOT_SHARE 40
#define FILL_HOT_MIN_BATCH 50

typedef struct Unit
{
	FillTable *t;
	char *operation; /* its migration_log operation */
	char *upper;     /* the range's last key (text), NULL: to the table's end */
	char *sql[2];    /* [0] after $2, [1] from the range's start */
	bool own_entry;  /* its row was begun here, not by the caller */
	bool resumed;    /* goes on from an interrupted run's checkpoint */
	BatchLoop b;
	int batch_cap; /* the plan's batch size lowered to this (FILL_HOT_SHARE), 0: not */
	int rc;
	bool started;
	double began, ended; /* wall clock of its batch loop, for its table's seconds */
} Unit;

static Unit *
unit_new(FillTable *t, const char *operation, const char *after, const char *upper, long long rows_done,
		 long long rows_total)
{
	Unit *u = xcalloc(1, sizeof *u);

	u->t = t;
	u->operation = xstrdup(operation);
	u->upper = upper ? xstrdup(upper) : NULL;
	u->b.what = u->operation;
	u->b.quiet_triggers = t->quiet_triggers;
	u->b.last_key = after ? xstrdup(after) : NULL;
	u->b.rows_done = rows_done;
	u->b.rows_total = rows_total;
	u->rc = EXIT_FAILED; /* until it runs */
	keyset_range_sql(&t->batch, upper, u->sql);
	u->b.sql_first = u->sql[1];
	u->b.sql_next = u->sql[0];
	return u;
}

static void
unit_free(Unit *u)
{
	free(u->operation);
	free(u->upper);
	free(u->sql[0]);
	free(u->sql[1]);
	free(u->b.last_key);
	free(u);
}

static void
push(Unit ***units, int *n, Unit *u)
{
	*units = xrealloc(*units, (size_t) (*n + 1) * sizeof **units);
	(*units)[(*n)++] = u;
}

/*
 * The unfinished units of the newest earlier run that filled this table
 * since the last phase2 rollback (or began to: a row with a checkpoint or a
 * range): its ranges when it had any, else its one row.  Returns how many
 * were added.
 */
static int
resume_units(Run *run, FillTable *t, Unit ***units, int *n)
{
	const char *params[3] = {run->plan->name, t->label, run->run_id};
	PGresult *res =
		db_query(run->conn,
				 "WITH c AS (SELECT id, run_id, operation, status, rows_done, rows_total, last_key, "
				 "  metadata->>'range_after' AS after, metadata->>'range_through' AS through, "
				 "  metadata ? 'range_through' AS ranged "
				 "  FROM public.migration_log WHERE plan = $1 AND phase = 2 AND status <> 'refused' "
				 "  AND (operation = $2 OR left(operation, length($2) + 2) = $2 || ' [') "
				 "  AND run_id <> $3::uuid AND id > " MLOG_LAST_PHASE2_ROLLBACK " "
				 /* a run that stopped before its first batch (mapping refused, killed) tells nothing */
				 "  AND (status = 'done' OR last_key IS NOT NULL OR metadata ? 'range_through')), "
				 "newest AS (SELECT * FROM c WHERE run_id = (SELECT run_id FROM c ORDER BY id DESC LIMIT 1)) "
				 "SELECT operation, status, rows_done, rows_total, last_key, after, through FROM newest "
				 "WHERE ranged = (SELECT bool_or(ranged) FROM newest) ORDER BY id",
				 3, params);
	int added = 0;

	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *operation = db_field(res, i, "operation");
		bool ranged = strcmp(operation, t->label) != 0;
		const char *last_key = db_field(res, i, "last_key");
		const char *after = last_key ? last_key : db_field(res, i, "after");
		const char *upper = db_field(res, i, "through");
		const char *total = db_field(res, i, "rows_total");

		/* done: nothing left; a row without a checkpoint committed nothing */
		if (strcmp(db_field(res, i, "status"), "done") == 0 || (!ranged && last_key == NULL))
			continue;
		push(units, n,
			 unit_new(t, operation, after, upper, db_field_ll(res, i, "rows_done"), total ? atoll(total) : -1));
		(*units)[*n - 1]->resumed = true;
		log_info("resuming the interrupted %s after key %s (%s rows done)", operation, after ? after : "(start)",
				 db_field(res, i, "rows_done"));
		added++;
	}
	PQclear(res);
	return added;
}

/* A fresh start: one unit, or with jobs > 1 and rows enough, ranges of about equal size (ntile over the key). */
static void
split_units(Run *run, FillTable *t, int jobs, int batch_size, Unit ***units, int *n)
{
	long long total;
	char *sql = str_printf("SELECT count(*) FROM %s", t->batch.table);
	int parts;

	total = db_count(run->conn, sql, 0, NULL);
	free(sql);
	parts = jobs;
	if (total / jobs < 2LL * batch_size)
		parts = 1;
	if (parts == 1)
	{
		push(units, n, unit_new(t, t->label, NULL, NULL, 0, total));
		return;
	}
	{
		/* the whole table, as the count: the fill's own condition is the batches' */
		PGresult *res = jobs_key_ranges(run, t->batch.table, t->batch.key, NULL, parts);

		for (int i = 0; i < PQntuples(res); i++)
		{
			char *op = str_printf("%s [%d/%d]", t->label, i + 1, PQntuples(res));
			const char *after = i > 0 ? PQgetvalue(res, i - 1, 1) : NULL;
			const char *upper = i < PQntuples(res) - 1 ? PQgetvalue(res, i, 1) : NULL;

			push(units, n, unit_new(t, op, after, upper, 0, atoll(PQgetvalue(res, i, 0))));
			free(op);
		}
		log_info("%s: %lld rows in %d key ranges, one batch loop each", t->label, total, PQntuples(res));
		PQclear(res);
	}
}

/*
 * The unit's batch size under FILL_HOT_SHARE's cap, for a fill whose updates
 * can be HOT: the plan's size, and any --target-batch-ms adapts to.  A
 * --batch-size given is the operator's word and kept (so is a throttle's,
 * batch.h).  Said in the run log, or in a dry run's output.
 */
static void
cap_unit(Unit *u, const Options *opts)
{
	long long rows = u->b.rows_total;
	int cap;

	if (!u->t->hot_updates || opts->batch_size > 0 || rows <= 0)
		return;
	cap = rows / FILL_HOT_SHARE > FILL_HOT_MIN_BATCH ? (int) (rows / FILL_HOT_SHARE) : FILL_HOT_MIN_BATCH;
	u->b.max_batch_size = cap;
	if (u->b.batch_size <= cap)
		return;
	u->batch_cap = cap;
	if (dryrun_on())
		dryrun_comment("%s: batches of %d rows, not %d: 1/%d of its %lld rows, so that its updates stay on their "
					   "pages (HOT) and the table does not grow",
					   u->operation, cap, u->b.batch_size, FILL_HOT_SHARE, rows);
	else
		log_info("%s: batches of %d rows, not %d: 1/%d of its %lld rows, so that its updates stay on their pages "
				 "(HOT) and the table does not grow",
				 u->operation, cap, u->b.batch_size, FILL_HOT_SHARE, rows);
	u->b.batch_size = cap;
}

/* Begin the unit's migration_log row (or take the caller's) with its range and starting point. */
static void
begin_unit(Run *run, Unit *u, bool one_unit)
{
	FillTable *t = u->t;
	bool ranged = strcmp(u->operation, t->label) != 0;

	if (t->entry > 0 && one_unit && !ranged)
		u->b.entry = t->entry;
	else
	{
		u->b.entry = mlog_begin(run, u->operation, u->b.rows_total, u->b.rows_done, u->b.last_key);
		u->own_entry = true;
	}
	mlog_set_progress(run, u->b.entry, u->b.rows_total, u->b.rows_done, u->b.last_key);
	{
		/* a range's bounds, for a resume; whether it goes on from an earlier run, for status */
		/* and the batch size FILL_HOT_SHARE capped, if it did */
		char id[32], cap[16];
		const char *resumed = u->resumed ? "true" : "false";
		const char *range[5] = {id, resumed, u->batch_cap > 0 ? cap : NULL, u->b.last_key, u->upper};

		snprintf(id, sizeof id, "%lld", u->b.entry);
		snprintf(cap, sizeof cap, "%d", u->batch_cap);
#define CAP_SQL " || CASE WHEN $3::integer IS NULL THEN '{}' ELSE jsonb_build_object('batch_cap', $3::integer) END"
		if (ranged)
			db_execp(run->conn,
					 "UPDATE public.migration_log SET metadata = metadata || jsonb_build_object("
					 "'resumed', $2::boolean, 'range_after', $4::text, 'range_through', $5::text)" CAP_SQL
					 " WHERE id = $1",
					 5, range);
		else
			db_execp(run->conn,
					 "UPDATE public.migration_log SET metadata = metadata || "
					 "jsonb_build_object('resumed', $2::boolean)" CAP_SQL " WHERE id = $1",
					 3, range);
#undef CAP_SQL
	}
}

/* One unit's batch loop on run->conn (a --jobs worker's: jobs.h's JobTaskFn, which never exits). */
static int
run_unit(Run *run, void *units, int i)
{
	Unit *u = ((Unit **) units)[i];

	u->started = true;
	u->began = (clock_now_ms() / 1000.0);
	u->rc = batch_loop(run, &u->b);
	u->ended = (clock_now_ms() / 1000.0);
	return u->rc;
}

static int
larger_first(const void *a, const void *b)
{
	long long ra = (*(Unit *const *) a)->b.rows_total - (*(Unit *const *) a)->b.rows_done;
	long long rb = (*(Unit *const *) b)->b.rows_total - (*(Unit *const *) b)->b.rows_done;

	return ra < rb ? 1 : ra > rb ? -1 : 0;
}

/* Close each unit's row and add it to its table's totals. */
static void
finish_unit(Run *run, Unit *u)
{
	FillTable *t = u->t;
	double rate = u->b.seconds > 0 ? (double) (u->b.rows_done) / u->b.seconds : 0.0;

	if (u->started)
	{
		if (t->began == 0 || u->began < t->began)
			t->began = u->began;
		if (u->ended > t->ended)
			t->ended = u->ended;
		t->seconds = t->ended - t->began;
	}
	t->rows_done += u->b.rows_done;
	if (u->b.rows_total > 0)
		t->rows_total += u->b.rows_total;
	t->changed += u->b.changed;
	t->batches += u->b.batches;
	if (u->b.longest_batch_ms > t->longest_batch_ms)
		t->longest_batch_ms = u->b.longest_batch_ms;
	if (!u->own_entry)
		return;
	{
		json_t *m = json_pack("{s:I, s:I, s:f, s:f, s:I}", "rows_filled", (json_int_t) u->b.changed, "batches",
							  (json_int_t) u->b.batches, "seconds", u->b.seconds, "rows_per_second", rate, "rows",
							  (json_int_t) u->b.rows_done);
		char *text = json_dumps(m, JSON_COMPACT);
		/* the unit whose statement failed says which failure; one stopped at its boundary by it, nothing */
		const char *why = u->rc == EXIT_DONE ? NULL
			: !u->started                    ? "not started: another job failed or the run stopped"
			: u->b.failure.message[0]        ? u->b.failure.message
											 : NULL;

		mlog_finish(run, u->b.entry, u->rc == EXIT_DONE ? "done" : "failed", u->b.rows_done, why, text);
		if (u->rc == EXIT_DONE && !dryrun_on())
			log_info("%s: %lld rows, %lld filled, %.1f s, %.0f rows/s", u->operation, u->b.rows_done, u->b.changed,
					 u->b.seconds, rate);
		free(text);
		json_decref(m);
	}
}

int
fill_tables(Run *run, FillTable *tables, int n, const Options *opts)
{
	Unit **units = NULL;
	int n_units = 0;
	/* a dry run prints each table's statement once, in order: one job */
	int jobs = opts->jobs > 1 && !dryrun_on() ? opts->jobs : 1;
	int batch_size = batch_size_of(opts, run->plan);
	int first_of_table = 0, rc;

	/* 1. each table's units: an interrupted run's unfinished ranges, else a fresh split */
	for (int i = 0; i < n; i++)
	{
		FillTable *t = &tables[i];

		t->rows_total = t->rows_done = t->changed = t->batches = 0;
		t->longest_batch_ms = t->seconds = t->began = t->ended = 0;
		t->batch_cap = 0;
		t->resumed = resume_units(run, t, &units, &n_units) > 0;
		if (!t->resumed)
			split_units(run, t, jobs, batch_size, &units, &n_units);
		/* 2. their migration_log rows, before any batch: a run killed now resumes every range */
		for (int j = first_of_table; j < n_units; j++)
		{
			batch_use_options(&units[j]->b, opts, run->plan);
			cap_unit(units[j], opts);
			if (units[j]->batch_cap > 0 && (t->batch_cap == 0 || units[j]->batch_cap < t->batch_cap))
				t->batch_cap = units[j]->batch_cap;
			begin_unit(run, units[j], n_units - first_of_table == 1);
		}
		first_of_table = n_units;
	}
	/* 3. on --jobs connections, the largest ranges first; alone, in the plan's order */
	if (jobs > 1)
		qsort(units, (size_t) n_units, sizeof *units, larger_first);
	if (jobs > n_units)
		jobs = n_units > 0 ? n_units : 1;
	if (jobs > 1)
		log_info("filling %d key ranges on %d connections", n_units, jobs);
	/* 4. the job's progress: every unit's rows, resumed ones counted as done */
	{
		long long total = 0, done = 0;

		for (int i = 0; i < n_units; i++)
			if (units[i]->b.rows_total >= 0)
				total += units[i]->b.rows_total, done += units[i]->b.rows_done;
		/* a lost connection is opened once more, to record each unit's outcome */
		rc = jobs_run_batches(run, n_units, jobs, run_unit, units, total, done);
	}
	/* 5. close every unit's row, started or not (the run's end records them when the connection is gone) */
	for (int i = 0; i < n_units; i++)
	{
		if (PQstatus(run->conn) == CONNECTION_OK)
			finish_unit(run, units[i]);
		unit_free(units[i]);
	}
	free(units);
	return rc;
}
