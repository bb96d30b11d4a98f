/*
 * batch.h: the keyset batch loop of phase2 and of restores: one statement per
 * batch, committed together with its checkpoint, with an optional pause
 * between batches, a batch size that adapts to a target duration and a pause
 * while a standby's replay lag is over a limit.  The loop never exits the
 * process: a failed statement is told and returned (its SQLSTATE and message
 * in the loop's failure), so a phase2 --jobs worker can hand it to the main
 * thread (jobs.c).
 */
#ifndef PHASEMIG_BATCH_H
#define PHASEMIG_BATCH_H

#include "engine/cli.h"
#include "engine/mlog.h"

/* on in a fill batch's transaction only (BatchLoop.quiet_triggers) */
#define BATCH_FILL_SETTING "phasemig.fill"

typedef struct BatchLoop
{
	const char *what; /* progress label */
	/*
	 * Both return one row (scanned bigint, last_key text, changed bigint).
	 * sql_first takes $1 = batch size; sql_next takes $1 = batch size and
	 * $2 = the last key of the previous batch.
	 */
	const char *sql_first;
	const char *sql_next;
	long long entry; /* migration_log row to checkpoint, 0 for none */
	long long rows_total;
	long long rows_done; /* in: resumed count; out: total */
	char *last_key;      /* in: resume after this key (malloc'd); out */
	int batch_size;
	int sleep_ms;
	int max_lag_ms;
	const char *lag_query; /* --lag-query: the operator's lag measure, else the standbys' */
	int target_batch_ms;
	/*
	 * 0, or the size --target-batch-ms may not grow the batch past (fill.c's
	 * cap for fills whose updates can be HOT)
	 */
	int max_batch_size;
	/*
	 * The batch writes only what the plan's sync triggers would leave as
	 * written (phase2's fills): each batch's transaction sets
	 * BATCH_FILL_SETTING, which their WHEN skips, so they are not called for
	 * the batch's own rows.
	 */
	bool quiet_triggers;
	/* where this run's loop started: its rate */
	double progress_from_s;
	long long progress_from_rows;
	/* out */
	long long changed;
	long batches;
	double seconds;
	double longest_batch_ms;
	DbFailure failure; /* the statement that failed the loop, if one did (message "" if none) */
} BatchLoop;

/*
 * The operator's batch options: --batch-size (else the plan's), --sleep-ms,
 * --max-lag-ms and --target-batch-ms.
 */
void batch_use_options(BatchLoop *b, const Options *opts, const Plan *plan);
/* The batch size those options give: --batch-size, else the plan's. */
int batch_size_of(const Options *opts, const Plan *plan);

/*
 * Run batches until a batch scans fewer rows than asked.  Returns an exit
 * code; EXIT_FAILED after a failed statement (told, kept in b->failure, every
 * batch before it committed with its checkpoint) or a stop.
 */
int batch_run(Run *run, BatchLoop *b);
/*
 * The same on run->conn without setting the signal mode: for jobs.c's
 * workers, whose caller keeps SIGINT/SIGTERM at the batch boundary for all.
 * Calls nothing that exits (log.h's log_exit): safe on a worker thread.
 */
int batch_loop(Run *run, BatchLoop *b);
/* While set, every batch_loop stops at its next batch boundary (the main thread: a --jobs worker failed). */
void batch_abandon(bool on);
/* Whether batch_abandon is set. */
bool batch_abandoned(void);

#endif
