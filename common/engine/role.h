/*
 * role.h: the role a run's statements run as.  Whoever connects (a superuser,
 * or a member of the owner's role), phasemig works as the owner of the plan's
 * table (SET ROLE), so code it fires on the application's tables (their
 * triggers) never runs with more rights than the owner's.
 */
#ifndef PHASEMIG_ROLE_H
#define PHASEMIG_ROLE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "engine/plan.h"

/*
 * On CONN (bound to PLAN), switch to the owner of the plan's table when the
 * connected role is not the owner but may become it (a superuser, or a member
 * of the owner's role), saying so in one info line.  *ROLE gets the owner's
 * name (malloc'd) when it switched, NULL when it did not need to or could
 * not (a role that is neither: phase1's rights check refuses it).  false,
 * after logging why, when the switch failed.
 */
bool role_assume_owner(PGconn *conn, const Plan *plan, char **role);

/* SET ROLE ROLE on CONN (another connection of the same run); NULL: nothing.  false after logging. */
bool role_set(PGconn *conn, const char *role);

#endif
