/*
 * batch.c: runs keyset batches (pgroll's one-statement shape) with the
 * checkpoint in the same statement, so kill -9 loses no work and repeats
 * none; adapts the batch size (pt-online-schema-change's chunk-time) and
 * waits for lagging standbys (gh-ost).  A batch gives way to the
 * application: it never waits on a row the application holds locked
 * (keyset.h's NOWAIT) and waits on any other lock for less than the
 * server's deadlock_timeout; it is rolled back and retried smaller instead.
 * Every statement goes through db.h's _try functions: a failure is told and
 * returned, never exited on, so the loop runs on a --jobs worker thread too.
 */
#include "engine/batch.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/dryrun.h"
#include "core/keyset.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/progress.h"
#include "engine/throttle.h"

static int
adapt(int size, double took_ms, int target_ms)
{
	double factor = took_ms > 0 ? (double) target_ms / took_ms : 2.0;
	double next;

	if (factor > 2.0)
		factor = 2.0;
	if (factor < 0.5)
		factor = 0.5;
	next = size * factor;
	if (next < 10)
		next = 10;
	if (next > 100000)
		next = 100000;
	return (int) next;
}

int
batch_size_of(const Options *opts, const Plan *plan)
{
	return opts->batch_size > 0 ? opts->batch_size : plan->batch_size;
}

void
batch_use_options(BatchLoop *b, const Options *opts, const Plan *plan)
{
	b->batch_size = batch_size_of(opts, plan);
	b->sleep_ms = opts->sleep_ms > 0 ? opts->sleep_ms : 0;
	b->lag_query = opts->lag_query;
	b->max_lag_ms = opts->max_lag_ms;
	/* the size follows the batches' measured cost, unless the operator fixed it (--batch-size alone) */
	b->target_batch_ms = opts->target_batch_ms > 0 ? opts->target_batch_ms
						 : opts->batch_size > 0	   ? 0
													: plan->target_batch_ms;
}

/* set when one --jobs worker failed: the others stop at their next batch boundary */
static atomic_bool abandoned;

void
batch_abandon(bool on)
{
	atomic_store(&abandoned, on);
}

bool
batch_abandoned(void)
{
	return atomic_load(&abandoned);
}

int
batch_run(Run *run, BatchLoop *b)
{
	int rc;

	/* a SIGINT/SIGTERM lets the batch in flight commit with its checkpoint */
	stop_at_batch_boundary(true);
	rc = batch_loop(run, b);
	stop_at_batch_boundary(false);
	return rc;
}

/* Why the loop must stop before its next batch (logged), or EXIT_DONE to go on. */
static int
stop_before_batch(const BatchLoop *b)
{
	if (stop_requested())
	{
		log_progress_end();
		log_error("stopped by %s after %lld rows of %s (last key %s), each batch committed with its checkpoint",
				  stop_signal_name(), b->rows_done, b->what, b->last_key ? b->last_key : "none");
		return EXIT_FAILED;
	}
	if (atomic_load(&abandoned))
	{
		log_info("%s: stopped after %lld rows (last key %s) because another job failed; each batch "
				 "committed with its checkpoint",
				 b->what, b->rows_done, b->last_key ? b->last_key : "none");
		return EXIT_FAILED;
	}
	return EXIT_DONE;
}

typedef enum
{
	BATCH_COMMITTED,
	BATCH_LOCKED, /* waited too long for row locks: rolled back, try again */
	BATCH_FAILED  /* reported */
} BatchOutcome;

/*
 * The batch's transaction begun, and its settings, in one round trip (one
 * simple-query string: the values are numbers and on/off, written here).
 * Its lock_timeout: the run's, but under half the server's
 * deadlock_timeout.  Should the batch wait on a lock (a unique or foreign key
 * check, a restore's UPDATE) while an application transaction waits on one
 * of its rows, the batch's wait ends first and it is the one rolled back.
 * BATCH_FILL_SETTING: whether the sync triggers skip the batch's rows.
 */
static char *
begin_sql(const BatchLoop *b)
{
	return str_printf("BEGIN; SELECT pg_catalog.set_config('lock_timeout', greatest(1, least(%d, (SELECT "
					  "s.setting::integer / 2 FROM pg_catalog.pg_settings s WHERE s.name = 'deadlock_timeout')))::text, "
					  "true), pg_catalog.set_config('" BATCH_FILL_SETTING "', '%s', true)",
					  db_get_retry()->lock_timeout_ms, b->quiet_triggers ? "on" : "off");
}

/*
 * The batch statements with the checkpoint in them (mlog_checkpoint_step):
 * [0] the next ones, [1] the first; both NULL when a loop's statements are
 * not keyset_batch_sql's (a bug: every loop's are).  A loop without a
 * migration_log row runs them too, with row 0, which the checkpoint finds
 * not: one statement whether it has a row or not, so a dry run (which has
 * none) prints what the run runs.
 */
typedef struct Checkpointed
{
	char *sql[2];
} Checkpointed;

static Checkpointed
checkpointed(const BatchLoop *b)
{
	Checkpointed c = {{NULL, NULL}};

	for (int first = 0; first < 2; first++)
	{
		/* the checkpoint's parameters follow the statement's own: $2 on, or $3 on */
		char *step = mlog_checkpoint_step(first ? 2 : 3);

		c.sql[first] = keyset_with_step(first ? b->sql_first : b->sql_next, step);
		free(step);
	}
	if (c.sql[0] == NULL || c.sql[1] == NULL)
	{
		free(c.sql[0]), free(c.sql[1]);
		c.sql[0] = c.sql[1] = NULL;
	}
	return c;
}

/*
 * One batch of SIZE rows and its checkpoint in one statement (CK's), in one
 * transaction;
 * *scanned gets the rows it walked.  A row held by another transaction
 * (NOWAIT), a lock not had in time or a deadlock is BATCH_LOCKED, to try
 * again, unless RETRY is false.  Any other failure (BEGIN, the batch, the
 * checkpoint, COMMIT) is BATCH_FAILED, told and kept in b->failure; the
 * loop's figures then stay those of the last committed batch.
 */
static BatchOutcome
one_batch(Run *run, BatchLoop *b, const Checkpointed *ck, int size, bool retry, long long *scanned)
{
	char limit[16], entry[32], done[32], changed_before[32];
	const char *params[5] = {limit, b->last_key, entry, done, changed_before};
	char *begin = begin_sql(b);
	bool first = b->last_key == NULL;
	const char *sql = ck->sql[first];
	int n_params = first ? 4 : 5;
	long long changed = 0;
	char *last_key = NULL;
	PGresult *res;

	*scanned = 0;
	snprintf(limit, sizeof limit, "%d", size);
	/* the checkpoint's parameters, after the batch's own (the first batch has no $2) */
	if (first)
		params[1] = entry, params[2] = done, params[3] = changed_before;
	snprintf(entry, sizeof entry, "%lld", b->entry);
	snprintf(done, sizeof done, "%lld", b->rows_done);
	snprintf(changed_before, sizeof changed_before, "%lld", b->changed);
	/* 1. the transaction, and its settings */
	if (!db_execp_try(run->conn, begin, 0, NULL, NULL, &b->failure))
	{
		free(begin);
		db_end_session_work(run->conn);
		return BATCH_FAILED;
	}
	free(begin);
	/* 2. the batch: a row another transaction holds is a retry, anything else the loop's failure */
	res = db_query_try(run->conn, sql, n_params, params);
	if (!db_ok(res))
	{
		const char *st = db_sqlstate(res);
		bool locked = strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 || strcmp(st, SQLSTATE_DEADLOCK) == 0;

		db_end_session_work(run->conn);
		if (!(locked && retry))
		{
			db_report(res, run->conn, sql);
			db_failure_keep(&b->failure, res, run->conn);
		}
		PQclear(res);
		return locked && retry ? BATCH_LOCKED : BATCH_FAILED;
	}
	*scanned = db_field_ll(res, 0, "scanned");
	if (*scanned > 0)
	{
		last_key = xstrdup(db_field(res, 0, "last_key"));
		changed = db_field_ll(res, 0, "changed");
	}
	PQclear(res);
	/* 3. COMMIT, the checkpoint with it: until it is done, nothing of the batch counts */
	if (!db_execp_try(run->conn, "COMMIT", 0, NULL, NULL, &b->failure))
	{
		db_end_session_work(run->conn);
		free(last_key);
		*scanned = 0;
		return BATCH_FAILED;
	}
	if (*scanned > 0)
	{
		free(b->last_key);
		b->last_key = last_key;
		b->changed += changed;
		b->rows_done += *scanned;
	}
	b->batches++;
	return BATCH_COMMITTED;
}

/* A dry run prints the batch statements once each, with how many rows its batches would walk. */
static int
dry_run_batches(const BatchLoop *b, const Checkpointed *ck)
{
	if (b->rows_total >= 0)
		dryrun_comment("%s: in batches of %d rows, each committed with its checkpoint: %lld rows to walk%s%s", b->what,
					   b->batch_size, b->rows_total - b->rows_done, b->last_key ? " after key " : "",
					   b->last_key ? b->last_key : "");
	else
		dryrun_comment("%s: in batches of %d rows, each committed with its checkpoint", b->what, b->batch_size);
	if (b->last_key == NULL)
	{
		dryrun_comment("the first batch ($1: the batch size; then its checkpoint's migration_log row, rows and "
					   "rows changed before it)");
		dryrun_print_statement(ck->sql[1]);
	}
	dryrun_comment("the next ones ($1: the batch size, $2: the last key of the batch before; then the checkpoint's "
				   "three)");
	dryrun_print_statement(ck->sql[0]);
	return EXIT_DONE;
}

/*
 * How long the loop keeps retrying a batch that meets locked rows: as long as
 * a batch waited for its locks before, the run's lock timeout times the
 * plan's attempts.
 */
static double
lock_budget_ms(void)
{
	return (double) db_get_retry()->lock_timeout_ms * db_get_retry()->max_attempts;
}

/* The pause before retry number STREAK of a batch that met locked rows: doubling from 20 ms to 1 s, jittered. */
static long
lock_backoff_ms(int streak)
{
	long ceiling = 20L << (streak < 6 ? streak : 6);

	if (ceiling > 1000)
		ceiling = 1000;
	return ceiling / 2 + random() % (ceiling / 2 + 1);
}

static int
walk_batches(Run *run, BatchLoop *b, const Checkpointed *ck)
{
	double started = clock_now_ms();
	double locked_since = 0; /* when the batch first met locked rows, 0: it did not */
	int size = b->batch_size;
	int full = 0; /* the size before locked rows shrank it, 0: not shrunk */
	long long scanned = 0;

	b->progress_from_s = clock_now_ms() / 1000.0;
	b->progress_from_rows = b->rows_done;
	/* the run log gets each statement once, as run and as a dry run prints them */
	if (b->last_key == NULL)
		dryrun_log_statement(ck->sql[1]);
	dryrun_log_statement(ck->sql[0]);
	for (int attempt = 1;;)
	{
		double t0, took;
		int rc;
		bool retry;

		if ((rc = stop_before_batch(b)) != EXIT_DONE)
			return rc;
		if ((rc = throttle_between_batches(run, b, &size)) != EXIT_DONE)
			return rc;
		if (b->max_lag_ms > 0 && (rc = throttle_wait_for_lag(run, b)) != EXIT_DONE)
			return rc;
		t0 = clock_now_ms();
		/* a row that stays locked: give up once the budget is spent with batches of one row */
		retry = size > 1 || locked_since == 0 || t0 - locked_since < lock_budget_ms();
		switch (one_batch(run, b, ck, size, retry, &scanned))
		{
			case BATCH_FAILED:
				if (!retry)
				{
					log_error("%s: the row after key %s stayed locked by another transaction for %.0f s (%d "
							  "attempts); every batch before it is committed with its checkpoint",
							  b->what, b->last_key ? b->last_key : "(start)", (t0 - locked_since) / 1000.0, attempt);
					log_hint("find the transaction holding it (pg_locks, pg_stat_activity) and end it, then run the "
							 "same command again: it goes on from there");
				}
				return EXIT_FAILED;
			case BATCH_LOCKED:
			{
				long pause = lock_backoff_ms(attempt - 1);

				/* half the rows: those before the locked row commit, and it comes first */
				if (full == 0)
					full = size;
				if (locked_since == 0)
					locked_since = t0;
				size = size > 1 ? size / 2 : 1;
				log_progress_end();
				log_warning("%s: the batch after key %s met a row locked by another transaction (phasemig gives "
							"way); retrying with %d rows in %ld ms (attempt %d)",
							b->what, b->last_key ? b->last_key : "(start)", size, pause, attempt);
				db_sleep_ms(pause);
				attempt++;
				continue;
			}
			case BATCH_COMMITTED:
				attempt = 1;
				locked_since = 0;
				break;
		}
		took = clock_now_ms() - t0;
		if (took > b->longest_batch_ms)
			b->longest_batch_ms = took;
		progress_batch(b, scanned, size);
		if (scanned < size)
			break;
		if (full > 0)
		{
			/* past the locked rows: back to the size it had, doubling */
			size = size * 2 < full ? size * 2 : full;
			if (size == full)
				full = 0;
		}
		else if (b->target_batch_ms > 0)
		{
			size = adapt(size, took, b->target_batch_ms);
			if (b->max_batch_size > 0 && size > b->max_batch_size)
				size = b->max_batch_size;
		}
		if (b->sleep_ms > 0)
			db_sleep_ms(b->sleep_ms);
	}
	log_progress_end();
	b->seconds = (clock_now_ms() - started) / 1000.0;
	return EXIT_DONE;
}

int
batch_loop(Run *run, BatchLoop *b)
{
	Checkpointed ck;
	int rc;

	ck = checkpointed(b);
	/* a worker returns its failure (jobs.h): no exit here */
	if (ck.sql[0] == NULL)
	{
		log_error("%s: its batch statements cannot carry their checkpoint (not keyset_batch_sql's): a bug", b->what);
		return EXIT_FAILED;
	}
	rc = dryrun_on() ? dry_run_batches(b, &ck) : walk_batches(run, b, &ck);
	free(ck.sql[0]), free(ck.sql[1]);
	return rc;
}
