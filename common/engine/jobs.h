/*
 * jobs.h: --jobs: tasks (phase2's key ranges, fill.c; phase3's per-table
 * index builds and validations) run on N connections at once, one worker
 * thread per connection, with one thread of failure: a worker never exits
 * the process, it returns its failure; the main thread stops the others at
 * their next boundary (a batch, or a task's next statement: batch_abandoned),
 * and only it records and exits.
 */
#ifndef PHASEMIG_JOBS_H
#define PHASEMIG_JOBS_H

#include "engine/mlog.h"

/*
 * Run task number TASK (of the caller's CTX) on run->conn, which is a
 * worker's own connection when JOBS > 1: on a worker thread, so it must not
 * exit (batch.h's batch_loop is what it runs); EXIT_DONE or the failure.
 */
typedef int (*JobTaskFn)(Run *run, void *ctx, int task);

/*
 * Run tasks 0..N-1 in that order: with JOBS <= 1 on run->conn, one after the
 * other until one fails; else on JOBS connections of their own
 * (run_connect), each worker taking the next task until none is left or it
 * fails.  While they run, the calling (main) thread only watches: a worker's
 * failure makes the others stop at their next batch boundary, and so does
 * the loss of run->conn (it holds the plan's lock).  Returns, once every
 * worker has returned, EXIT_DONE or the first failure's code: the caller
 * then records each task's outcome on run->conn.  A task not begun because
 * of a failure stays not begun.
 */
int jobs_run(Run *run, int n, int jobs, JobTaskFn run_task, void *ctx);

/*
 * The same over one task per table of QTABLES (regclass text, N of them):
 * task I is QTABLES[I]'s work, and the tasks start largest table first (its
 * heap's size, asked on run->conn before any worker starts; ties in the
 * given order), so that the longest build or scan does not start last.
 * With JOBS <= 1 (or a dry run) they run in the given order on run->conn.
 * A task that finds batch_abandoned() set between two of its statements
 * returns EXIT_FAILED without another: that is its boundary.
 */
int jobs_run_tables(Run *run, const char *const *qtables, int n, int jobs, JobTaskFn run_task, void *ctx);

/*
 * jobs_run over batch loops (phase2's fills, the rollbacks' restores): the
 * job's progress (TOTAL rows, DONE of them before) around it, SIGINT/SIGTERM
 * at batch boundaries while it runs, and run->conn opened again when it was
 * lost, so that the caller can record each loop's outcome (the run has
 * failed all the same: EXIT_FAILED).
 */
int jobs_run_batches(Run *run, int n, int jobs, JobTaskFn run_task, void *ctx, long long total, long long done);

/*
 * The rows of TABLE (aliased t; FILTER a condition on t, or NULL) in PARTS
 * ranges of about equal size by the quoted column KEY (ntile): one row per
 * range in key order, its count and its last key as text.  Caller clears.
 */
PGresult *jobs_key_ranges(Run *run, const char *table, const char *key, const char *filter, int parts);

#endif
