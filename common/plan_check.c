/*
 * plan_check.c: see plan_check.h.  Each operation lists the columns it needs;
 * they are looked up in the catalog, or among the columns earlier add_column
 * operations add.
 */
#include "plan_check.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "db.h"
#include "log.h"

/* true when an add_column before position BEFORE adds COLUMN */
static bool
added_earlier(const Plan *plan, int before, const char *column)
{
	for (int i = 0; i < before; i++)
		if (plan->ops[i].kind == OP_ADD_COLUMN && strcmp(plan->ops[i].column, column) == 0)
			return true;
	return false;
}

/* One column an operation needs; returns 1 when it is missing. */
static int
need_column(const Plan *plan, const Op *op, const char *column, const char *role)
{
	if (column == NULL || catalog_column_exists(plan, column) || added_earlier(plan, op->index, column))
		return 0;
	log_error("step %d (%s): %s \"%s\" is not a column of %s, and no add_column before it adds it", op->index + 1,
			  op->label, role, column, plan->q_table);
	return 1;
}

/* An add_column whose column exists with another type; returns 1 then. */
static int
clashing_type(Run *run, const Op *op)
{
	char *type = catalog_column_type(run->plan, op->column);
	int problem = type != NULL && !catalog_same_type(run->plan, type, op->type);

	if (problem)
		log_error("step %d (%s): column \"%s\" of %s already exists with type %s, the plan says %s", op->index + 1,
				  op->label, op->column, run->plan->q_table, type, op->type);
	free(type);
	return problem;
}

int
plan_check_columns(Run *run)
{
	const Plan *plan = run->plan;
	int problems = 0;

	for (int i = 0; i < plan->n_ops; i++)
	{
		const Op *op = &plan->ops[i];

		switch (op->kind)
		{
			case OP_ADD_COLUMN:
				problems += clashing_type(run, op);
				break;
			case OP_CREATE_INDEX:
				for (int c = 0; c < op->n_columns; c++)
					problems += need_column(plan, op, op->columns[c], "indexed column");
				break;
			case OP_BACKFILL_FROM_MAPPING:
				problems += need_column(plan, op, op->match_column, "match_column");
				problems += need_column(plan, op, op->email_column, "email_column");
				for (int s = 0; s < op->n_set; s++)
					problems += need_column(plan, op, op->set[s].column, "filled column");
				break;
			case OP_CONVERT_TO_UUID:
				problems += need_column(plan, op, op->column, "column");
				/* already uuid, and not by this plan's own swap */
				if (plan->key_type && strcmp(plan->key_type, "uuid") == 0 && strcmp(op->column, plan->key) == 0
					&& !(mlog_state_exists(run->conn) && mlog_is_registered(run->conn, plan, "uuid_pk", op->column)))
				{
					log_error("step %d (%s): %s.%s is already of type uuid: nothing to convert", op->index + 1,
							  op->label, plan->q_table, plan->q_key);
					problems++;
				}
				break;
			default:
				problems += need_column(plan, op, op->column, "column");
				break;
		}
	}
	if (problems > 0)
		log_error("the plan does not match table %s: %d problem%s; nothing was created or changed", plan->q_table,
				  problems, problems == 1 ? "" : "s");
	return problems > 0 ? EXIT_BAD_INPUT : EXIT_DONE;
}
