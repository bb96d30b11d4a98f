/*
 * plan_order.h: the plan checked against itself, before any connection: what
 * each operation does to the columns of the plan's table (reads, fills, adds,
 * drops) and the names it creates, as its OpType declares them, must leave
 * every operation's columns there when it runs and no two operations at odds
 * over one column or name.  A plan that passes rolls back from every phase.
 */
#ifndef PHASEMIG_PLAN_ORDER_H
#define PHASEMIG_PLAN_ORDER_H

#include "engine/plan.h"

/* How an operation touches a column of the plan's table, or a name. */
typedef enum PlanUseKind
{
	PLAN_READS, /* needs the column there (and its values) */
	PLAN_FILLS, /* writes its values */
	PLAN_ADDS,  /* adds the column */
	PLAN_DROPS, /* drops the column */
	PLAN_NAMES  /* creates an index or constraint of that name in the plan's schema */
} PlanUseKind;

typedef struct PlanUse
{
	PlanUseKind kind;
	char *what; /* the column (or name), owned */
} PlanUse;

/* What one operation touches (OpType.uses fills it). */
typedef struct PlanUses
{
	PlanUse *use;
	int n;
	int cap;
} PlanUses;

/* Add WHAT (copied; NULL is ignored) as KIND. */
void plan_uses_add(PlanUses *u, PlanUseKind kind, const char *what);
/* WHAT followed by SUFFIX, as KIND. */
void plan_uses_add_suffixed(PlanUses *u, PlanUseKind kind, const char *what, const char *suffix);

/*
 * Log every problem of the order of PLAN's operations ("invalid plan ...",
 * naming both operations, their positions and the column or name); returns
 * how many.  The rules are in docs/plans.md ("Order and duplicates").
 */
int plan_order_check(const Plan *plan);

#endif
