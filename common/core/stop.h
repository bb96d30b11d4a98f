/*
 * stop.h: SIGINT and SIGTERM stop a run at its next safe point.  Outside the
 * batch loop the running statement is cancelled at once (the server rolls it
 * back); inside it, the batch in flight commits with its checkpoint and the
 * loop stops before the next one.  A second signal cancels at once anyway.
 */
#ifndef PHASEMIG_STOP_H
#define PHASEMIG_STOP_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connections a second signal can cancel besides the run's own (--jobs' ceiling). */
#define STOP_MAX_WATCHED 32

/* Catch SIGINT and SIGTERM; their cancel requests go to conn's backend. */
void stop_install(PGconn *conn);
/*
 * A second signal cancels conn's statement too (slot 1..STOP_MAX_WATCHED: a --jobs
 * worker's connection); NULL forgets the slot's.
 */
void stop_watch(int slot, PGconn *conn);
/* The signal that asked the run to stop, or 0. */
int stop_requested(void);
/* "SIGINT" or "SIGTERM" for stop_requested()'s signal. */
const char *stop_signal_name(void);
/* Between batches only: while set, a first signal waits for the batch to commit. */
void stop_at_batch_boundary(bool on);

#endif
