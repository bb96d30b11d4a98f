/*
 * op_index.c: indexes and uniqueness: create_index (phase1, CONCURRENTLY),
 * add_unique (phase3: a unique index built CONCURRENTLY, then ADD CONSTRAINT
 * ... USING INDEX) and check_unique (a phase3 pre-flight check only).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/catalog.h"
#include "core/db.h"
#include "core/log.h"
#include "ops/ops.h"
#include "core/strbuf.h"

static int
create_index_apply(Run *run, const Op *op, const Options *opts)
{
	StrBuf cols;
	int rc;

	(void) opts;
	sb_init(&cols);
	for (int i = 0; i < op->n_columns; i++)
	{
		char *q = plan_ident(run->plan, op->columns[i]);

		sb_printf(&cols, "%s%s", i ? ", " : "", q);
		free(q);
	}
	rc = ops_build_index(run, op->name, cols.data, op->unique, "index");
	sb_free(&cols);
	return rc;
}

static int
drop_registered_index(Run *run, const char *name, const char *kind)
{
	const Plan *p = run->plan;
	char *qs, *qn, *sql;
	int rc = EXIT_DONE;

	if (!mlog_is_registered(run->conn, p, kind, name))
		return EXIT_DONE;
	qs = plan_ident(p, p->schema);
	qn = plan_ident(p, name);
	sql = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s.%s", qs, qn);
	log_info("dropping index %s", qn);
	if (!db_ddl_nontx_try(run->conn, sql, sql, true))
		rc = EXIT_FAILED;
	else
		mlog_unregister(run->conn, p, kind, name);
	free(sql);
	free(qs);
	free(qn);
	return rc;
}

static int
create_index_rollback(Run *run, const Op *op, const Options *opts)
{
	(void) opts;
	return drop_registered_index(run, op->name, "index");
}

/* Duplicated values of EXPR (over non-NULL values), with sample keys. */
static long long
check_duplicates(Run *run, Findings *f, const char *column, bool ignore_case)
{
	const Plan *p = run->plan;
	char *qcol = plan_ident(p, column);
	char *expr = ignore_case ? str_printf("lower(%s::text)", qcol) : xstrdup(qcol);
	char *subject = str_printf("%s.%s%s", p->q_table, qcol, ignore_case ? " (compared lower-cased)" : "");
	char *sql = str_printf(
		"WITH d AS (SELECT %s AS v FROM %s WHERE %s IS NOT NULL GROUP BY 1 HAVING count(*) > 1), "
		"r AS (SELECT t.%s::text AS k, %s AS v FROM %s t JOIN d ON d.v = %s) "
		"SELECT (SELECT count(*) FROM r), "
		"(SELECT string_agg(format('%%s (value %%s)', quote_nullable(k), quote_nullable(v::text)), ', ') "
		" FROM (SELECT k, v FROM r ORDER BY v, k LIMIT %d) s)",
		expr, p->q_table, qcol, p->q_key, expr, p->q_table, expr, SAMPLE_LIMIT);
	long long n = findings_query(run, f, "duplicate", subject, sql);

	free(sql);
	free(subject);
	free(expr);
	free(qcol);
	return n;
}

/* Surplus rows of duplicated values of COLUMN: 0 when check_duplicates would find none. */
static char *
duplicates_gate(const Plan *p, const char *column, bool ignore_case)
{
	char *qcol = plan_ident(p, column);
	char *expr = ignore_case ? str_printf("lower(%s::text)", qcol) : xstrdup(qcol);
	char *gate = str_printf("count(%s) - count(DISTINCT %s)", expr, expr);

	free(expr);
	free(qcol);
	return gate;
}

static char *
add_unique_gate(Run *run, const Op *op)
{
	return duplicates_gate(run->plan, op->column, false);
}

static char *
check_unique_gate(Run *run, const Op *op)
{
	return duplicates_gate(run->plan, op->column, op->ignore_case);
}

static long long
add_unique_check(Run *run, const Op *op, Findings *f)
{
	if (catalog_constraint_exists(run->plan, op->name))
		return 0;
	return check_duplicates(run, f, op->column, false);
}

static int
add_unique_apply(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	char *qcol, *qname, *add, *reg;
	int rc;

	(void) opts;
	if (catalog_constraint_exists(p, op->name))
	{
		log_info("unique constraint \"%s\" already exists", op->name);
		return EXIT_DONE;
	}
	qcol = plan_ident(p, op->column);
	qname = plan_ident(p, op->name);
	/* 1. the unique index, built without blocking writes */
	rc = ops_build_index(run, op->name, qcol, true, "unique_index");
	if (rc == EXIT_DONE)
	{
		/* 2. adopt it as the constraint: a catalog change under a short lock */
		add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", p->q_table, qname, qname);
		reg = mlog_register_sql(p, run->phase, "constraint", op->name);
		{
			const char *stmts[2] = {add, reg};

			log_info("adding unique constraint %s using index %s", qname, qname);
			rc = ops_ddl(run, add, stmts, 2);
		}
		free(add);
		free(reg);
	}
	free(qcol);
	free(qname);
	return rc;
}

static int
add_unique_rollback(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	int rc = EXIT_DONE;

	(void) opts;
	if (mlog_is_registered(run->conn, p, "constraint", op->name))
	{
		char *qname = plan_ident(p, op->name);
		char *drop = str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", p->q_table, qname);
		const char *stmts[1] = {drop};

		log_info("dropping unique constraint %s", qname);
		rc = ops_ddl(run, drop, stmts, 1);
		if (rc == EXIT_DONE)
			mlog_unregister(run->conn, p, "constraint", op->name);
		free(drop);
		free(qname);
	}
	if (rc == EXIT_DONE)
		rc = drop_registered_index(run, op->name, "unique_index");
	return rc;
}

static long long
check_unique_check(Run *run, const Op *op, Findings *f)
{
	return check_duplicates(run, f, op->column, op->ignore_case);
}

const OpHandlers op_create_index = {
	.apply = {[1] = create_index_apply},
	.rollback = {[1] = create_index_rollback},
};

const OpHandlers op_add_unique = {
	.apply = {[3] = add_unique_apply},
	.rollback = {[3] = add_unique_rollback},
	.check = add_unique_check,
	.gate = add_unique_gate,
};

const OpHandlers op_check_unique = {
	.check = check_unique_check,
	.gate = check_unique_gate,
};
