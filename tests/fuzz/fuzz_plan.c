/*
 * fuzz_plan.c: libFuzzer target for the plan reader, plan_load() in plan.c,
 * on the input as a plan file (plan_bind needs a database and is not
 * fuzzed).  Run by `make fuzz`.
 */
#include <string.h>

#include "engine/operation.h"
#include "engine/plan.h"
#include "fuzz_util.h"
#include "ops/backfill/backfill.h"
#include "ops/ops.h"

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

		/* an operation every plan has (OpType.plan_key: versioned_views) is about no one column */
		if (op->label == NULL || op->kind == NULL || (op->column == NULL && op->kind->plan_key == NULL))
			fuzz_fail("an accepted operation lacks its label, kind or column");
		check_ident(op->column);
		/* what each operation's own data must hold (Op.data) */
		if (op->kind == &op_type_backfill_from_mapping)
		{
			const BackfillSpec *b = op->data;

			if (b->uid_column == NULL || b->n_set < 1)
				fuzz_fail("an accepted backfill lacks the column for localId");
			check_ident(b->match_column);
			check_ident(b->email_column);
			for (int k = 0; k < b->n_set; k++)
				check_ident(b->set[k].column);
		}
		else if (op->kind == &op_type_create_index || op->kind == &op_type_add_unique)
		{
			const IndexSpec *ix = op->data;

			if (op->kind == &op_type_create_index && ix->n_columns < 1)
				fuzz_fail("an accepted index has no columns");
			check_ident(ix->name);
			for (int k = 0; k < ix->n_columns; k++)
				check_ident(ix->columns[k]);
		}
		else if (op->kind == &op_type_add_column && strpbrk(add_column_type(op), ";'\"\\") != NULL)
			fuzz_fail("an accepted column type holds a quote, backslash or semicolon");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Plan *plan;

	operations_use(op_types);
	plan = plan_load(fuzz_input_file(data, size));

	if (plan != NULL)
	{
		check_plan(plan);
		plan_free(plan);
	}
	return 0;
}
