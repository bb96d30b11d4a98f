/*
 * hook.h: the operator's hook (--hook CMD, else $PHASEMIG_HOOK): CMD runs with
 * /bin/sh at the start and at the end of every run that takes the plan's lock,
 * and every --hook-progress-interval while it walks batches, with one JSON
 * event on its standard input.  Its standard output and error go to the run
 * log, a line at a time (never to the operator's streams).  A hook that
 * fails, hangs past HOOK_TIMEOUT_S or does not read its input is logged as a
 * warning and never changes the run's outcome.
 */
#ifndef PHASEMIG_HOOK_H
#define PHASEMIG_HOOK_H

#include <jansson.h>

#include "engine/mlog.h"

#define HOOK_TIMEOUT_S 30

/* Use CMD (NULL: $PHASEMIG_HOOK, if set) for this run's events. */
void hook_set(const char *cmd);
/*
 * The database every event names from now on ("database": host, port, name,
 * user; JSON null in an event before the run connected).
 */
void hook_set_database(const PGconn *conn);
/* A progress event every MINUTES (0: none) from the start event on; fractions too. */
void hook_set_progress_interval(double minutes);
/* The start event: the run holds the plan's lock. */
void hook_start(const Run *run);
/*
 * After a batch: the progress event with FIGURES (the progress line's, not
 * stolen) when the interval has passed since the start or the last one.
 */
void hook_progress(const json_t *figures);
/*
 * The end event, with the run's exit code: status done, refused, failed,
 * interrupted, bad_input or locked, and MESSAGE (the reason) when not done.
 */
void hook_end(const Run *run, int code, const char *status, const char *message);

#endif
