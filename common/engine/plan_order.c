/*
 * plan_order.c: see plan_order.h.  Each operation's uses come from its
 * OpType (operation.h); the rules compare every pair of operations, so the
 * engine never needs to know which operation is which.
 */
#include "engine/plan_order.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "engine/operation.h"

void
plan_uses_add(PlanUses *u, PlanUseKind kind, const char *what)
{
	if (what == NULL)
		return;
	if (u->n == u->cap)
	{
		u->cap = u->cap ? 2 * u->cap : 8;
		u->use = xrealloc(u->use, (size_t) u->cap * sizeof *u->use);
	}
	u->use[u->n].kind = kind;
	u->use[u->n].what = xstrdup(what);
	u->n++;
}

void
plan_uses_add_suffixed(PlanUses *u, PlanUseKind kind, const char *what, const char *suffix)
{
	char *s;

	if (what == NULL)
		return;
	s = str_printf("%s%s", what, suffix);
	plan_uses_add(u, kind, s);
	free(s);
}

static void
uses_free(PlanUses *u)
{
	for (int i = 0; i < u->n; i++)
		free(u->use[i].what);
	free(u->use);
}

/* OP's uses: its type's, or, without a declaration, its "column" read. */
static void
uses_of(const Op *op, PlanUses *u)
{
	if (op->kind->uses)
		op->kind->uses(op, u);
	else
		plan_uses_add(u, PLAN_READS, op->column);
}

/* What KIND does, for a message: "reads" (THIRD person) or "read". */
static const char *
verb(PlanUseKind kind, bool third)
{
	static const char *const verbs[2][5] = {{"read", "fill", "add", "drop", "create"},
											{"reads", "fills", "adds", "drops", "creates"}};

	return verbs[third][kind];
}

/*
 * Why the uses X of the earlier operation A and Y of the later B are at odds
 * (malloc'd), or NULL.  A and B name the operations for the message.
 */
static char *
conflict(const PlanUse *x, const PlanUse *y, const char *a, const char *b)
{
	bool x_name = x->kind == PLAN_NAMES, y_name = y->kind == PLAN_NAMES;

	if (x_name != y_name || strcmp(x->what, y->what) != 0)
		return NULL; /* a column and a name never meet */
	if (x->kind == y->kind && x->kind != PLAN_READS)
		return str_printf("%s and %s both %s %s\"%s\"", a, b, verb(x->kind, false), x_name ? "" : "column ", x->what);
	if (x_name)
		return NULL;
	if (x->kind == PLAN_ADDS && y->kind == PLAN_DROPS)
		return str_printf("%s drops column \"%s\", which %s adds", b, x->what, a);
	if (y->kind == PLAN_ADDS)
		return str_printf("%s %s column \"%s\" before %s adds it (an operation that adds a column comes before "
						  "every operation on it)",
						  a, verb(x->kind, true), x->what, b);
	if (x->kind == PLAN_DROPS)
		return str_printf("%s %s column \"%s\" after %s drops it (an operation that drops a column comes after "
						  "every operation on it)",
						  b, verb(y->kind, true), x->what, a);
	return NULL;
}

/* The first reason the earlier operation A and the later B cannot be in one plan (malloc'd), or NULL. */
static char *
pair_problem(const Op *a, const PlanUses *ua, const Op *b, const PlanUses *ub)
{
	char *na = str_printf("operations[%d] (%s)", a->index, a->label);
	char *nb = str_printf("operations[%d] (%s)", b->index, b->label);
	char *why = NULL;

	if (strcmp(a->label, b->label) == 0)
		why = str_printf("%s repeats %s: an operation is listed once", nb, na);
	else if (a->kind == b->kind && a->kind->one_per_plan)
		why = str_printf("%s and %s: a plan has one %s (its state is named after the plan)", na, nb, a->kind->name);
	for (int x = 0; x < ua->n && why == NULL; x++)
		for (int y = 0; y < ub->n && why == NULL; y++)
			why = conflict(&ua->use[x], &ub->use[y], na, nb);
	free(na), free(nb);
	return why;
}

/* A use of OP at odds with the plan itself: its key added or dropped.  Malloc'd, or NULL. */
static char *
key_problem(const Plan *plan, const Op *op, const PlanUses *u)
{
	for (int i = 0; i < u->n; i++)
		if ((u->use[i].kind == PLAN_DROPS || u->use[i].kind == PLAN_ADDS) && strcmp(u->use[i].what, plan->key) == 0)
			return str_printf("operations[%d] (%s) %s column \"%s\", the plan's key (the batches walk it)", op->index,
							  op->label, verb(u->use[i].kind, true), plan->key);
	return NULL;
}

/* Log WHY (freed), if any, as a problem of PLAN; returns 1 then. */
static int
report(const Plan *plan, char *why)
{
	if (why == NULL)
		return 0;
	log_error("invalid plan \"%s\": %s", plan->path, why);
	free(why);
	return 1;
}

int
plan_order_check(const Plan *plan)
{
	PlanUses *uses = xcalloc((size_t) plan->n_ops + 1, sizeof *uses);
	int problems = 0;

	for (int i = 0; i < plan->n_ops; i++)
		uses_of(&plan->ops[i], &uses[i]);
	for (int j = 0; j < plan->n_ops; j++)
	{
		problems += report(plan, key_problem(plan, &plan->ops[j], &uses[j]));
		for (int i = 0; i < j; i++)
			problems += report(plan, pair_problem(&plan->ops[i], &uses[i], &plan->ops[j], &uses[j]));
	}
	for (int i = 0; i < plan->n_ops; i++)
		uses_free(&uses[i]);
	free(uses);
	if (problems > 0)
		log_hint("an operation's columns are there when it runs (added before it, dropped after it), and no two "
				 "operations add, drop or fill one column or create one name; see \"Order and duplicates\" in "
				 "docs/plans.md");
	return problems;
}
