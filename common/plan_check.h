/*
 * plan_check.h: the plan against the catalog before phase1 changes anything:
 * every column an operation names exists, or an add_column earlier in the
 * plan adds it; an add_column's column, if it exists, has the plan's type; a
 * key to convert to uuid is not one already.
 */
#ifndef PHASEMIG_PLAN_CHECK_H
#define PHASEMIG_PLAN_CHECK_H

#include "mlog.h"

/* Log every problem; EXIT_DONE, or EXIT_BAD_INPUT when there is any. */
int plan_check_columns(Run *run);

#endif
