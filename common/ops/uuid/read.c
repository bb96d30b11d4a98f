/*
 * read.c: what a convert_to_uuid says in a plan (the key column, whether
 * views on it are recreated around the swap) and its check against the
 * catalog before phase1: the column is there and not uuid already, unless
 * this plan's own swap made it so; and what it adds to phase3's status.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "engine/plan_check.h"
#include "engine/registry.h"
#include "ops/ops.h"

static void
uuid_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	op->column = plan_read_ident(r, obj, where, "column", true);
	op->recreate_views = plan_read_bool(r, obj, where, "recreate_views", false);
	if (op->column && strlen(op->column) > PLAN_MAX_IDENT - 7)
		plan_read_fail(r, where, "\"column\" must leave room for the suffix \"_legacy\" (%d bytes at most)",
					   PLAN_MAX_IDENT - 7);
}

static int
uuid_check_plan(Run *run, const Op *op)
{
	const Plan *plan = run->plan;
	int problems = plan_check_column(plan, op, op->column, "column");

	/* already uuid, and not by this plan's own swap */
	if (plan->key_type && strcmp(plan->key_type, "uuid") == 0 && strcmp(op->column, plan->key) == 0
		&& !(mlog_state_exists(run->conn) && registry_has(run->conn, plan, "uuid_pk", op->column)))
	{
		log_error("step %d (%s): %s.%s is already of type uuid: nothing to convert", op->index + 1, op->label,
				  plan->q_table, plan->q_key);
		problems++;
	}
	return problems;
}

/* status of phase3: which of its steps the conversion reached ("swapped", "finalized") */
static void
uuid_status(Run *run, const Op *op, int phase, json_t *obj)
{
	const char *params[1] = {run->plan->name};
	char *reached;

	(void) op;
	if (phase != 3)
		return;
	reached = db_value(run->conn,
					   "SELECT string_agg(replace(kind, 'uuid_', ''), ', ' ORDER BY kind DESC) "
					   "FROM migration_backup.phasemig_objects WHERE plan = $1 "
					   "AND kind IN ('uuid_swapped', 'uuid_finalized')",
					   1, params);
	if (reached)
		json_object_set_new(obj, "reached", json_string(reached));
	free(reached);
}

/* It reads the key and adds its shadow and, at the swap, its legacy column. */
static void
uuid_uses(const Op *op, PlanUses *u)
{
	plan_uses_add(u, PLAN_READS, op->column);
	plan_uses_add_suffixed(u, PLAN_ADDS, op->column, "_uuid");
	plan_uses_add_suffixed(u, PLAN_ADDS, op->column, "_legacy");
}

const OpType op_type_convert_to_uuid = {
	.name = "convert_to_uuid",
	.keys = (const char *const[]){"column", "recreate_views", NULL},
	.read = uuid_read,
	.check_plan = uuid_check_plan,
	.uses = uuid_uses,
	.one_per_plan = true, /* its triggers, map and indexes are named after the plan */
	.handlers = &op_convert_to_uuid,
	.apply_drops = "swaps the key and every column referencing it with its uuid shadow, and the keys, "
				   "foreign keys and indexes with their uuid copies (the text values stay in <column>_legacy)",
	.finalize_drops = "drops the <column>_legacy columns and their triggers (their values saved in "
					  "migration_backup first; a rollback restores them)",
	.status = uuid_status,
	.alters_referencing_tables = true,
	.options = CLI_ON_INVALID | CLI_DISCARD_GENERATED,
};
