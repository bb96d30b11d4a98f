/*
 * add_column.c: phase1 adds a nullable column (no rewrite, a short lock);
 * rollback drops it only if phasemig added it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/registry.h"
#include "ops/ops.h"

/*
 * The plan that added this column to this table, when it is another one: two
 * plans never share a column, as the first one's rollback would drop it from
 * under the second.  NULL when none (caller frees).
 */
static char *
column_owner_plan(Run *run, const Op *op)
{
	return registry_other_plan(run->conn, run->plan, "column", op->column, run->plan->q_table);
}

static int
add_column_apply(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	char *type = catalog_column_type(p, op->column);
	char *qcol = plan_ident(p, op->column);
	char *other = type != NULL ? column_owner_plan(run, op) : NULL;
	int rc = EXIT_DONE;

	(void) opts;
	if (other != NULL)
	{
		log_error("column %s of %s was added by plan \"%s\"; two plans never share a column", qcol, p->q_table, other);
		log_hint("finish or roll back plan \"%s\" first, or name another column in this plan", other);
		rc = EXIT_BAD_INPUT;
	}
	else if (type != NULL)
	{
		if (!catalog_same_type(p, type, add_column_type(op)))
		{
			log_error("column %s of %s already exists with type %s, the plan says %s", qcol, p->q_table, type,
					  add_column_type(op));
			rc = EXIT_BAD_INPUT;
		}
		else if (!registry_has(run->conn, p, "column", op->column))
			log_warning("column %s already existed before phasemig; it is used as is and kept on rollback", qcol);
		else
			log_info("column %s already added", qcol);
	}
	else
	{
		char *add = str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", p->q_table, qcol, add_column_type(op));
		/* the table it belongs to, so another plan's column of the same name elsewhere is not taken for it */
		json_t *where = json_pack("{s:s}", "table", p->q_table);
		char *detail = json_dumps(where, JSON_COMPACT);
		char *reg = registry_add_detail_sql(p, run->phase, "column", op->column, detail);
		const char *stmts[2] = {add, reg};

		log_info("adding column %s %s", qcol, add_column_type(op));
		rc = ops_ddl(run, add, stmts, 2);
		free(add);
		free(reg);
		free(detail);
		json_decref(where);
	}
	free(type);
	free(qcol);
	free(other);
	return rc;
}

static int
add_column_rollback(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	char *qcol;
	char *drop;
	int rc;

	(void) opts;
	if (!registry_has(run->conn, p, "column", op->column))
		return EXIT_DONE;
	qcol = plan_ident(p, op->column);
	drop = str_printf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", p->q_table, qcol);
	{
		const char *stmts[1] = {drop};

		log_info("dropping column %s", qcol);
		rc = ops_ddl_forget(run, drop, stmts, 1, "column", op->column);
	}
	free(drop);
	free(qcol);
	return rc;
}

/*
 * phase1 rollback drops the column: every value in it that is not the one
 * the plan's backfill recorded as written for that row (its backup table,
 * still full when this counts, before any step of the rollback) is the
 * application's.  Counted only for a column phasemig added.
 */
static void
add_column_discards(Run *run, const Op *op, const Options *opts, Discards *d)
{
	const Plan *p = run->plan;
	char *qcol, *written, *join;
	char *name;

	(void) opts;
	if (!registry_has(run->conn, p, "column", op->column) || !catalog_column_exists(p, op->column))
		return;
	qcol = plan_ident(p, op->column);
	written = bf_written_value_sql(run, op->column, &join);
	name = str_printf("%s.%s", p->schema, p->table);
	discards_add(d, p->q_table, name, op->column,
				 written ? str_printf("t.%s IS DISTINCT FROM %s AND t.%s IS NOT NULL", qcol, written, qcol)
						 : str_printf("t.%s IS NOT NULL", qcol),
				 join);
	free(name);
	free(written);
	free(qcol);
}

const char *
add_column_type(const Op *op)
{
	const AddColumnSpec *spec = op->data;

	return spec->type;
}

static void
add_column_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	AddColumnSpec *spec = op->data = xcalloc(1, sizeof(AddColumnSpec));

	op->column = plan_read_ident(r, obj, where, "column", true);
	spec->type = plan_read_string(r, obj, where, "type", true);
	if (spec->type && strpbrk(spec->type, ";'\"\\"))
		plan_read_fail(r, where, "\"type\" must be a type name such as varchar(128)");
}

static void
add_column_free(void *data)
{
	AddColumnSpec *spec = data;

	if (spec)
		free(spec->type);
	free(spec);
}

/* "plan --json" shows the type. */
static void
add_column_describe(const Op *op, json_t *obj, json_t *plan_obj)
{
	(void) plan_obj;
	json_object_set_new(obj, "type", json_string(add_column_type(op)));
}

/* Once connected, on every run: the type is one the database knows. */
static bool
add_column_bind(const Op *op, const Plan *plan)
{
	const char *p[1] = {add_column_type(op)};
	PGresult *tr = db_query_answer(plan->conn, "SELECT pg_catalog.to_regtype($1)", 1, p);
	bool ok = db_ok(tr) && !PQgetisnull(tr, 0, 0);

	if (!ok)
		log_error("invalid plan \"%s\": operations[%d]: \"%s\" is not a type known to the database", plan->path,
				  op->index, add_column_type(op));
	PQclear(tr);
	return ok;
}

/* A column that exists with another type (plan_bind checked the type is one); returns 1 then. */
static int
add_column_check_plan(Run *run, const Op *op)
{
	char *type = catalog_column_type(run->plan, op->column);
	int problem = type != NULL && !catalog_same_type(run->plan, type, add_column_type(op));

	if (problem)
		log_error("step %d (%s): column \"%s\" of %s already exists with type %s, the plan says %s", op->index + 1,
				  op->label, op->column, run->plan->q_table, type, add_column_type(op));
	free(type);
	return problem;
}

static void
add_column_uses(const Op *op, PlanUses *u)
{
	plan_uses_add(u, PLAN_ADDS, op->column);
}

static const OpHandlers add_column_handlers = {
	.apply = {[1] = add_column_apply},
	.rollback = {[1] = add_column_rollback},
	.discards = {[1] = add_column_discards},
};

const OpType op_type_add_column = {
	.name = "add_column",
	.keys = (const char *const[]){"column", "type", NULL},
	.read = add_column_read,
	.free = add_column_free,
	.describe = add_column_describe,
	.bind = add_column_bind,
	.check_plan = add_column_check_plan,
	.uses = add_column_uses,
	.handlers = &add_column_handlers,
	.adds_column = true,
};
