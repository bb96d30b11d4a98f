/*
 * fuzz_plan.c: libFuzzer target for the plan reader, plan_load() in plan.c,
 * on the input as a plan file (plan_bind needs a database and is not
 * fuzzed).  Run by `make fuzz`.
 */
#include <string.h>

#include "fuzz_util.h"
#include "plan.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fuzz_quiet_logs("fuzz_plan");
	return 0;
}

/* What the phases take for granted in a plan that plan_load accepted. */
static void
check_plan(const Plan *plan)
{
	if (plan->name == NULL || plan->schema == NULL || plan->table == NULL || plan->key == NULL)
		fuzz_fail("an accepted plan lacks a name, schema, table or key");
	if (plan->n_ops < 1 || plan->ops == NULL)
		fuzz_fail("an accepted plan has no operations");
	for (int i = 0; i < plan->n_ops; i++)
	{
		const Op *op = &plan->ops[i];

		if (op->label == NULL || op->kind_name == NULL || op->column == NULL)
			fuzz_fail("an accepted operation lacks its label, kind or column");
		if (op->kind == OP_BACKFILL_FROM_MAPPING && (op->uid_column == NULL || op->n_set < 1))
			fuzz_fail("an accepted backfill lacks the column for localId");
		if (op->kind == OP_CREATE_INDEX && op->n_columns < 1)
			fuzz_fail("an accepted index has no columns");
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
