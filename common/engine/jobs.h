/*
 * jobs.h: phase2 --jobs: tasks (fill.c's key ranges) run on N connections at
 * once, one worker thread per connection, with one thread of failure: a
 * worker never exits the process, it returns its failure; the main thread
 * stops the others at their batch boundary, and only it records and exits.
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

#endif
