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

/* For the operations' checks (operation.h's check_plan); each returns the problems it logged. */
/* COLUMN (an OP's ROLE, for the message) exists, or an add_column before OP adds it; NULL passes. */
int plan_check_column(const Plan *plan, const Op *op, const char *column, const char *role);
/* The add_column before position BEFORE that adds COLUMN, or NULL. */
const Op *plan_check_added_earlier(const Plan *plan, int before, const char *column);
/*
 * An index (or unique constraint) NAME the operation would create, where a
 * relation of that name already exists in the plan's schema that is not this
 * very index: phasemig would otherwise take it for its own finished work.
 * Returns 1 then.
 */
int plan_check_name_free(Run *run, const Op *op, const char *name, char *const *columns, int n_columns, bool unique);

#endif
