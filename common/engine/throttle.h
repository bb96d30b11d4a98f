/*
 * throttle.h: the operator's hand on a running phase2, from another
 * terminal: "phase2 throttle" writes the plan's control row
 * (migration_backup.phasemig_control: paused, sleep between batches, batch
 * size) for the running run (by its run id), or with --next-run for the next
 * run that walks batches and that run only; every batch loop reads its run's
 * row between batches, logs each change and takes it.  --reset clears it.
 * And the lag a batch loop waits on: a standby's replay lag, or the
 * operator's own query.
 */
#ifndef PHASEMIG_THROTTLE_H
#define PHASEMIG_THROTTLE_H

#include <stdbool.h>

#include <jansson.h>

#include "engine/batch.h"
#include "engine/cli.h"
#include "engine/mlog.h"

/*
 * phase2 throttle: set what the options say for the running run (--next-run:
 * the next one; --reset: clear every setting; nothing: show the row), print
 * the result.  EXIT_BAD_INPUT (said why) for a setting no run would take.
 */
int throttle_command(Run *run, const Options *opts);

/*
 * Between two batches of B: take the control row's changes (logged) into B
 * and *SIZE, and wait while it says paused.  EXIT_DONE, or EXIT_FAILED when
 * a signal asked the run to stop while paused or a statement failed (told,
 * kept in b->failure); never exits (a --jobs worker calls it).
 */
int throttle_between_batches(Run *run, BatchLoop *b, int *size);

/*
 * The control row as a JSON object for status (applies_to: running_run,
 * next_run, ended_run or none; paused_since), or NULL when there is none.
 */
json_t *throttle_status(Run *run);
/* That object's time the running run was paused at, or NULL when it is not paused. */
const char *throttle_paused_since(const json_t *t);
/* That object as one line on stdout: "for the running run 1a2b3c4d: paused since ..., batch size 500 (set by ...)". */
void throttle_print(const json_t *t);

/*
 * --lag-query: run it once, read-only, before anything changes: false (said
 * why) unless it returns one row whose one column is a number of milliseconds.
 */
bool throttle_check_lag_query(Run *run, const char *sql);

/*
 * Wait while the lag (b->lag_query's, else the standbys' replay lag) is over
 * b->max_lag_ms; EXIT_FAILED (said why; a failed statement kept in
 * b->failure) when it cannot be measured.  Never exits (a --jobs worker calls it).
 */
int throttle_wait_for_lag(Run *run, BatchLoop *b);

#endif
