/*
 * not_null.c: set_not_null: phase3 checks for NULL (and, if asked, empty)
 * values, then sets NOT NULL through a validated CHECK so no exclusive lock is
 * held during a scan; rollback drops NOT NULL again.
 */
#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/registry.h"
#include "ops/ops.h"

/* The rows set_not_null refuses: NULL, and with reject_empty '' too. */
static char *
refused_rows(const Plan *p, const Op *op)
{
	const NotNullSpec *spec = op->data;
	char *qcol = plan_ident(p, op->column);
	char *cond =
		spec->reject_empty ? str_printf("(%s IS NULL OR %s::text = '')", qcol, qcol) : str_printf("%s IS NULL", qcol);

	free(qcol);
	return cond;
}

static char *
set_not_null_gate(Run *run, const Op *op)
{
	char *cond = refused_rows(run->plan, op);
	char *gate = str_printf("count(*) FILTER (WHERE %s)", cond);

	free(cond);
	return gate;
}

static long long
set_not_null_check(Run *run, const Op *op, Findings *f)
{
	const Plan *p = run->plan;
	const NotNullSpec *spec = op->data;
	char *qcol = plan_ident(p, op->column);
	char *cond = refused_rows(p, op);
	char *subject = str_printf("%s.%s", p->q_table, qcol);
	int from = f->n;
	long long n = findings_rows_where(run, f, spec->reject_empty ? "null_or_empty" : "null", subject, cond);
	/* phase2 wrote them in the same logs directory: by default the database's and plan's (logs_dir.h) */
	char *hint = str_printf("give those rows a value, then run \"phase3 check\" again: phase2 apply fills what its "
							"mapping matches (the rows it could not match are in %s, in the last "
							"RUN-ID-unmatched.csv: add them to the mapping, or run phase2 apply --generate-missing)",
							run->logs_dir ? run->logs_dir : "phase2's logs directory");

	findings_hint(f, from, hint);
	free(hint);
	free(subject);
	free(cond);
	free(qcol);
	return n;
}

static int
set_not_null_apply(Run *run, const Op *op, const Options *opts)
{
	int rc;

	(void) opts;
	if (catalog_column_not_null(run->plan, op->column))
	{
		log_info("column \"%s\" is already NOT NULL", op->column);
		return EXIT_DONE;
	}
	{
		char *reg = registry_add_sql(run->plan, run->phase, "not_null", op->column);

		db_exec(run->conn, reg);
		free(reg);
	}
	rc = ops_enforce_not_null(run, op->column);
	return rc;
}

static int
set_not_null_rollback(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	char *qcol, *drop, *check, *dropcheck;
	int rc;

	(void) opts;
	if (!registry_has(run->conn, p, "not_null", op->column))
		return EXIT_DONE;
	qcol = plan_ident(p, op->column);
	check = ops_not_null_check_name(p, op->column);
	{
		char *qcheck = plan_ident(p, check);

		dropcheck = str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", p->q_table, qcheck);
		free(qcheck);
	}
	drop = str_printf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", p->q_table, qcol);
	{
		const char *stmts[2] = {drop, dropcheck};

		log_info("dropping NOT NULL of %s", qcol);
		rc = ops_ddl_forget(run, drop, stmts, 2, "not_null", op->column);
	}
	free(qcol);
	free(drop);
	free(check);
	free(dropcheck);
	return rc;
}

static void
set_not_null_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	NotNullSpec *spec = op->data = xcalloc(1, sizeof(NotNullSpec));

	op->column = plan_read_ident(r, obj, where, "column", true);
	spec->reject_empty = plan_read_bool(r, obj, where, "reject_empty", false);
}

static const OpHandlers set_not_null_handlers = {
	.apply = {[3] = set_not_null_apply},
	.rollback = {[3] = set_not_null_rollback},
	.check = set_not_null_check,
	.gate = set_not_null_gate,
};

const OpType op_type_set_not_null = {
	.name = "set_not_null",
	.keys = (const char *const[]){"column", "reject_empty", NULL},
	.read = set_not_null_read,
	.handlers = &set_not_null_handlers,
};
