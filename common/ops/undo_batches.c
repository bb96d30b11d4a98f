/*
 * undo_batches.c: a rollback's resumable keyset batches (ops_undo_batches),
 * on one connection or, with --jobs N, in key ranges on N at once as
 * phase2's fills are (engine/fill.c): the rows to change split by ntile()
 * over the key, each range its own migration_log row "LABEL [i/n]" with its
 * bounds and checkpoint, run by jobs.c's workers (batch_loop: nothing that
 * exits), every row closed afterwards by the main thread alone.  A run
 * killed part way is taken over as it was, range by range, whatever --jobs
 * the next run is given; without ranges the step is the single row LABEL it
 * always was.
 */
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/jobs.h"

/* One unit: the whole step (LABEL) or one key range of it (LABEL [i/n]). */
typedef struct Unit
{
	char *operation;
	char *upper;  /* the range's last key, NULL: to the end */
	char *sql[2]; /* [0] after $2, [1] from the range's start */
	bool ranged;  /* one of the step's key ranges, not the step's one row */
	BatchLoop b;
	bool started;
	int rc;
} Unit;

typedef struct Units
{
	Unit *u;
	int n;
} Units;

static void
add_unit(Units *us, const KeysetBatch *k, const char *operation, bool ranged, const char *after, const char *upper,
		 long long rows_done, long long rows_total)
{
	Unit *u;

	us->u = xrealloc(us->u, (size_t) (us->n + 1) * sizeof *us->u);
	u = &us->u[us->n++];
	memset(u, 0, sizeof *u);
	u->operation = xstrdup(operation);
	u->ranged = ranged;
	u->upper = upper ? xstrdup(upper) : NULL;
	keyset_range_sql(k, upper, u->sql);
	u->b.what = u->operation;
	u->b.sql_first = u->sql[1];
	u->b.sql_next = u->sql[0];
	u->b.last_key = after ? xstrdup(after) : NULL;
	u->b.rows_done = rows_done;
	u->b.rows_total = rows_total;
	u->rc = EXIT_FAILED; /* until it runs */
}

static void
free_units(Units *us)
{
	for (int i = 0; i < us->n; i++)
	{
		free(us->u[i].operation), free(us->u[i].upper);
		free(us->u[i].sql[0]), free(us->u[i].sql[1]);
		free(us->u[i].b.last_key);
	}
	free(us->u);
}

typedef enum
{
	UNDO_FRESH,   /* nothing to take over: a new pass */
	UNDO_DONE,    /* the newest pass finished: the triggers kept every row written since right */
	UNDO_RESUMED, /* the newest pass's unfinished units, in *us */
} UndoStart;

/*
 * 1. The newest run of this step since the phase was last applied (or
 * finalized), its one row or its ranges: done, failed (a new pass from the
 * start: each batch changes only what is wrong), or interrupted (killed,
 * stopped), whose units go on from their checkpoints.  A run records all
 * its rows in one transaction (begin_units), so its rows are the whole of
 * what it had left: those done stay done, the others go on.
 */
static UndoStart
newest_pass(Run *run, const char *label, const KeysetBatch *k, long long rows_total, Units *us)
{
	char phase[8];
	const char *params[3] = {run->plan->name, phase, label};
	PGresult *res;
	UndoStart start = UNDO_FRESH;
	int n, done = 0, failed = 0, parts = 0;

	snprintf(phase, sizeof phase, "%d", run->phase);
	res = db_query(run->conn,
				   "WITH c AS (SELECT * FROM public.migration_log WHERE plan = $1 AND phase = $2::int "
				   "  AND (operation = $3 OR left(operation, length($3) + 2) = $3 || ' [') "
				   "  AND id > coalesce((SELECT max(a.id) FROM public.migration_log a WHERE a.plan = $1 "
				   "  AND a.phase = $2::int AND a.operation IN ('apply', 'finalize')), 0)) "
				   "SELECT operation, status, rows_done, rows_total, last_key, metadata->>'range_after' AS after, "
				   "metadata->>'range_through' AS through FROM c "
				   "WHERE run_id IS NOT DISTINCT FROM (SELECT run_id FROM c ORDER BY id DESC LIMIT 1) ORDER BY id",
				   3, params);
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
	{
		const char *status = db_field(res, i, "status");

		done += strcmp(status, "done") == 0;
		failed += strcmp(status, "failed") == 0;
		if (strcmp(db_field(res, i, "operation"), label) != 0)
			sscanf(db_field(res, i, "operation") + strlen(label), " [%*d/%d]", &parts);
	}
	if (n > 0 && parts == 0)
	{
		/* the step's one row: the newest is what counts, as it always was */
		const char *status = db_field(res, n - 1, "status");
		const char *last_key = db_field(res, n - 1, "last_key");

		if (strcmp(status, "done") == 0)
			start = UNDO_DONE;
		else if (strcmp(status, "failed") != 0 && last_key != NULL)
		{
			add_unit(us, k, label, false, last_key, NULL, db_field_ll(res, n - 1, "rows_done"), rows_total);
			log_info("resuming %s after key %s", label, last_key);
			start = UNDO_RESUMED;
		}
	}
	else if (n > 0 && done == n)
		start = UNDO_DONE;
	else if (n > 0 && failed == 0)
	{
		for (int i = 0; i < n; i++)
		{
			const char *op = db_field(res, i, "operation");
			const char *last_key = db_field(res, i, "last_key");
			const char *after = last_key ? last_key : db_field(res, i, "after");

			if (strcmp(db_field(res, i, "status"), "done") == 0)
				continue;
			add_unit(us, k, op, true, after, db_field(res, i, "through"), db_field_ll(res, i, "rows_done"),
					 db_field(res, i, "rows_total") ? db_field_ll(res, i, "rows_total") : -1);
			log_info("resuming %s after key %s", op, after ? after : "(start)");
		}
		start = UNDO_RESUMED;
	}
	PQclear(res);
	if (start == UNDO_DONE)
		log_info("%s: already done", label);
	return start;
}

/*
 * 2. A new pass: with JOBS > 1 and rows enough (two batches a range), the
 * rows to change in JOBS ranges of about equal size; else the one unit.
 */
static void
split(Run *run, const char *label, const KeysetBatch *k, long long rows_total, int jobs, int batch_size, Units *us)
{
	PGresult *res;

	if (jobs <= 1 || rows_total < 0 || rows_total / jobs < 2LL * batch_size)
	{
		add_unit(us, k, label, false, NULL, NULL, 0, rows_total);
		return;
	}
	res = jobs_key_ranges(run, k->table, k->key, k->filter, jobs);
	for (int i = 0; i < PQntuples(res); i++)
	{
		char *op = str_printf("%s [%d/%d]", label, i + 1, PQntuples(res));

		add_unit(us, k, op, true, i > 0 ? PQgetvalue(res, i - 1, 1) : NULL,
				 i < PQntuples(res) - 1 ? PQgetvalue(res, i, 1) : NULL, 0, atoll(PQgetvalue(res, i, 0)));
		free(op);
	}
	if (PQntuples(res) == 0)
		add_unit(us, k, label, false, NULL, NULL, 0, rows_total);
	else
		log_info("%s: %lld rows in %d key ranges, one batch loop each", label, rows_total, PQntuples(res));
	PQclear(res);
}

/*
 * 3. Every unit's migration_log row, in one transaction: a run killed now
 * finds all of its ranges, or none.  A range's row keeps its bounds.
 */
static void
begin_units(Run *run, Units *us, const Options *opts)
{
	bool ranged = us->u[0].ranged;

	if (ranged)
		db_exec(run->conn, "BEGIN");
	for (int i = 0; i < us->n; i++)
	{
		Unit *u = &us->u[i];

		u->b.entry = mlog_begin(run, u->operation, u->b.rows_total, u->b.rows_done, u->b.last_key);
		batch_use_options(&u->b, opts, run->plan);
		if (u->ranged)
		{
			/* where the range starts (a resumed one: its checkpoint) and ends, for the next resume */
			char id[32];
			const char *p[3] = {id, u->b.last_key, u->upper};

			snprintf(id, sizeof id, "%lld", u->b.entry);
			db_execp(run->conn,
					 "UPDATE public.migration_log SET metadata = coalesce(metadata, '{}'::jsonb) || "
					 "jsonb_build_object('range_after', $2::text, 'range_through', $3::text) WHERE id = $1::bigint",
					 3, p);
		}
	}
	if (ranged)
		db_exec(run->conn, "COMMIT");
}

/* jobs.h's JobTaskFn: unit TASK's batches on RUN's connection. */
static int
run_unit(Run *run, void *ctx, int task)
{
	Unit *u = &((Units *) ctx)->u[task];

	u->started = true;
	u->rc = batch_loop(run, &u->b);
	return u->rc;
}

/* 5. Close each unit's row; the rows they changed go to the step's. */
static void
finish_units(Run *run, Units *us)
{
	for (int i = 0; i < us->n; i++)
	{
		Unit *u = &us->u[i];
		BatchLoop *b = &u->b;
		char *meta = str_printf("{\"rows_changed\": %lld, \"batches\": %ld, \"seconds\": %.3f, "
								"\"longest_batch_ms\": %.1f}",
								b->changed, b->batches, b->seconds, b->longest_batch_ms);
		const char *why = u->rc == EXIT_DONE ? NULL
			: !u->started                    ? "not started: another job failed or the run stopped"
			: b->failure.message[0]          ? b->failure.message
											 : NULL;

		mlog_finish(run, b->entry, u->rc == EXIT_DONE ? "done" : "failed", b->rows_done, why, meta);
		free(meta);
		if (u->rc == EXIT_DONE)
			log_info("%s: %lld rows, %lld changed in %ld batches, %.1f s (longest batch %.0f ms)", u->operation,
					 b->rows_done, b->changed, b->batches, b->seconds, b->longest_batch_ms);
		run->op_rows += b->changed;
	}
}

int
ops_undo_batches(Run *run, const Options *opts, const char *label, const KeysetBatch *k, long long rows_total)
{
	Units us = {0};
	int jobs = opts && opts->jobs > 1 && !dryrun_on() ? opts->jobs : 1;
	long long total = 0, done = 0;
	int rc;

	/* 1. the newest pass, done or to take over; 2. else a new one */
	switch (newest_pass(run, label, k, rows_total, &us))
	{
		case UNDO_DONE:
			return EXIT_DONE;
		case UNDO_FRESH:
			split(run, label, k, rows_total, jobs, batch_size_of(opts, run->plan), &us);
			break;
		case UNDO_RESUMED:
			break;
	}
	/* 3. the rows; 4. the batches, on --jobs connections when there are ranges (the largest first) */
	begin_units(run, &us, opts);
	if (jobs > us.n)
		jobs = us.n;
	if (!us.u[0].ranged)
	{
		/* the step's one row, on the run's own connection, as it always was */
		us.u[0].started = true;
		rc = us.u[0].rc = batch_run(run, &us.u[0].b);
	}
	else
	{
		if (jobs > 1)
			log_info("%d key ranges on %d connections", us.n, jobs);
		for (int i = 0; i < us.n; i++)
			if (us.u[i].b.rows_total >= 0)
				total += us.u[i].b.rows_total, done += us.u[i].b.rows_done;
		/* a lost connection is opened once more, to record each unit's outcome */
		rc = jobs_run_batches(run, us.n, jobs, run_unit, &us, total, done);
	}
	/* 5. each row closed (the run's end records them when the connection is gone) */
	if (PQstatus(run->conn) == CONNECTION_OK)
		finish_units(run, &us);
	free_units(&us);
	return rc;
}
