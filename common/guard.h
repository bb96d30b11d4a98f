/*
 * guard.h: one operator at a time: a session-level pg_try_advisory_lock on a
 * key derived from the plan; never a blocking pg_advisory_lock.
 */
#ifndef PHASEMIG_GUARD_H
#define PHASEMIG_GUARD_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "plan.h"

/* Take the plan's lock.  When another session holds it, log who and return false. */
bool guard_take(PGconn *conn, const Plan *plan);
/* A line naming the session holding the plan's lock, or NULL (caller frees). */
char *guard_holder(PGconn *conn, const Plan *plan);

#endif
