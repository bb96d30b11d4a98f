/*
 * guard.h: one operator at a time: a session-level pg_try_advisory_lock on a
 * key derived from the plan; never a blocking pg_advisory_lock.
 */
#ifndef PHASEMIG_GUARD_H
#define PHASEMIG_GUARD_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "engine/plan.h"

/* Try once to take the plan's lock; false when another session holds it. */
bool guard_take(PGconn *conn, const Plan *plan);
/*
 * Take the plan's lock, trying again for up to wait_seconds while another
 * session holds it: right after a run was killed, the server may still be
 * ending that run's statement (client_connection_check_interval cancels it
 * within a second or so).  False when it is still held at the end.
 */
bool guard_take_waiting(PGconn *conn, const Plan *plan, int wait_seconds);
/* A line naming the session holding the plan's lock, or NULL (caller frees). */
char *guard_holder(PGconn *conn, const Plan *plan);

#endif
