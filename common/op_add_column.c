/*
 * op_add_column.c: phase1 adds a nullable column (no rewrite, a short lock);
 * rollback drops it only if phasemig added it.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "db.h"
#include "log.h"
#include "ops.h"
#include "strbuf.h"

static bool
same_type(Run *run, const char *existing, const char *wanted)
{
	const char *p[2] = {existing, wanted};
	char *eq = db_value(run->conn, "SELECT pg_catalog.format_type($1::regtype, NULL) = "
						"pg_catalog.format_type($2::regtype, NULL)", 2, p);
	bool same = eq && eq[0] == 't';

	free(eq);
	return same;
}

static int
add_column_apply(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	char *type = catalog_column_type(p, op->column);
	char *qcol = plan_ident(p, op->column);
	int rc = EXIT_DONE;

	(void) opts;
	if (type != NULL)
	{
		if (!same_type(run, type, op->type))
		{
			log_error("column %s of %s already exists with type %s, the plan says %s", qcol, p->q_table, type,
					  op->type);
			rc = EXIT_BAD_INPUT;
		}
		else if (!mlog_is_registered(run->conn, p, "column", op->column))
			log_warning("column %s already existed before phasemig; it is used as is and kept on rollback", qcol);
		else
			log_info("column %s already added", qcol);
	}
	else
	{
		char *add = str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", p->q_table, qcol, op->type);
		char *reg = mlog_register_sql(p, run->phase, "column", op->column);
		const char *stmts[2] = {add, reg};

		log_info("adding column %s %s", qcol, op->type);
		rc = ops_ddl(run, add, stmts, 2);
		free(add);
		free(reg);
	}
	free(type);
	free(qcol);
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
	if (!mlog_is_registered(run->conn, p, "column", op->column))
		return EXIT_DONE;
	qcol = plan_ident(p, op->column);
	drop = str_printf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", p->q_table, qcol);
	{
		const char *stmts[1] = {drop};

		log_info("dropping column %s", qcol);
		rc = ops_ddl(run, drop, stmts, 1);
	}
	if (rc == EXIT_DONE)
		mlog_unregister(run->conn, p, "column", op->column);
	free(drop);
	free(qcol);
	return rc;
}

const OpHandlers op_add_column = {
	.apply = {[1] = add_column_apply},
	.rollback = {[1] = add_column_rollback},
};
