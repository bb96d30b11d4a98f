/*
 * fuzz_plan.c: libFuzzer target for the plan reader, plan_load() in plan.c,
 * on the input as a plan file (plan_bind needs a database and is not
 * fuzzed).  Run by `make fuzz`.
 */
#include <string.h>

#include "engine/operation.h"
#include "engine/plan.h"
#include "fuzz_util.h"

/* PostgreSQL truncates a longer identifier: the plan must refuse it. */
static void
check_ident(const char *name)
{
	if (name != NULL && strlen(name) > 63)
		fuzz_fail("an accepted plan names an identifier over 63 bytes");
}

/* What the phases take for granted in a plan that plan_load accepted. */
static void
check_plan(const Plan *plan)
{
	if (plan->name == NULL || plan->schema == NULL || plan->table == NULL || plan->key == NULL)
		fuzz_fail("an accepted plan lacks a name, schema, table or key");
	if (strlen(plan->name) > 40 || strspn(plan->name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(plan->name))
		fuzz_fail("an accepted plan has a name outside [a-z0-9_-]{1,40}");
	check_ident(plan->schema);
	check_ident(plan->table);
	check_ident(plan->key);
	for (int i = 0; i < plan->n_trusted_triggers; i++)
	{
		const TrustedTrigger *t = &plan->trusted_triggers[i];

		if (t->schema == NULL || t->table == NULL || t->trigger == NULL)
			fuzz_fail("an accepted trusted trigger lacks its schema, table or trigger");
		check_ident(t->schema);
		check_ident(t->table);
		check_ident(t->trigger);
	}
	if (plan->n_ops < 1 || plan->ops == NULL)
		fuzz_fail("an accepted plan has no operations");
	for (int i = 0; i < plan->n_ops; i++)
	{
		const Op *op = &plan->ops[i];
		const char *const names[] = {op->column, op->name, op->match_column, op->email_column};

		if (op->label == NULL || op->kind == NULL || op->column == NULL)
			fuzz_fail("an accepted operation lacks its label, kind or column");
		else if (op->kind->needs_mapping && (op->uid_column == NULL || op->n_set < 1))
			fuzz_fail("an accepted backfill lacks the column for localId");
		else if (strcmp(op->kind->name, "create_index") == 0 && op->n_columns < 1)
			fuzz_fail("an accepted index has no columns");
		for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
			check_ident(names[k]);
		for (int k = 0; k < op->n_columns; k++)
			check_ident(op->columns[k]);
		for (int k = 0; k < op->n_set; k++)
			check_ident(op->set[k].column);
		if (op->type != NULL && strpbrk(op->type, ";'\"\\") != NULL)
			fuzz_fail("an accepted column type holds a quote, backslash or semicolon");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Plan *plan = plan_load(fuzz_input_file(data, size));

	if (plan != NULL)
	{
		check_plan(plan);
		plan_free(plan);
	}
	return 0;
}
