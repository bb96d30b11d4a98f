/*
 * trust.h: phasemig's own state (public.migration_log, the migration_backup
 * schema and everything in it) is used only when it is what phasemig made:
 * owned by the role phasemig runs as (or a role it is a member of), with no
 * trigger, rule or policy, and, for migration_log, no default, constraint,
 * index or column type that runs a function from outside pg_catalog.  A role
 * that could create them first (CREATE on public) could otherwise run its
 * code with the operator's rights on phasemig's first write.
 */
#ifndef PHASEMIG_TRUST_H
#define PHASEMIG_TRUST_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "engine/plan.h"

/*
 * Check what exists of the state now; log each problem naming the object and
 * its owner and return false.  true when nothing exists yet or all is ours.
 * Inside phase1's creating transaction it sees what that transaction made.
 * QTABLE (the plan's table, or NULL): when its owner owns all of the state,
 * a run as another role is told to run as that owner instead.
 */
bool trust_state(PGconn *conn, const char *qtable);

/*
 * Refuse code of another role on the application's tables: every trigger on
 * the tables PLAN writes (its table; for an operation that alters the tables
 * referencing it, those too; and their partitions and children) whose
 * function is owned by another role than the owner of the plan's table
 * (the role phasemig runs as and fires them as), unless the plan's
 * trusted_triggers lists it.  Logs each (trigger, table, function,
 * owners) and returns false; a trusted one is named in an info line.
 */
bool trust_triggers(PGconn *conn, const Plan *plan);

#endif
