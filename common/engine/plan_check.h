/*
 * plan_check.h: the plan against the catalog before phase1 changes anything:
 * every column an operation names exists, or an add_column earlier in the
 * plan adds it; an add_column's column, if it exists, has the plan's type;
 * each field a backfill sets can be cast to its column's type; an index or
 * unique constraint name is free, or is that very index; a key to convert to
 * uuid is not one already; and the role may alter the tables and create
 * phasemig's state.
 */
#ifndef PHASEMIG_PLAN_CHECK_H
#define PHASEMIG_PLAN_CHECK_H

#include "engine/mlog.h"

/* Log every problem; EXIT_DONE, or EXIT_BAD_INPUT when there is any. */
int plan_check_catalog(Run *run);
/* Ownership of the tables, CREATE where the state goes: EXIT_DONE or EXIT_BAD_INPUT (logged). */
int plan_check_rights(Run *run);

#endif
