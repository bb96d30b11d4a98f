/*
 * index.c: indexes and uniqueness: create_index (phase1, CONCURRENTLY),
 * add_unique (phase3: a unique index built CONCURRENTLY, then ADD CONSTRAINT
 * ... USING INDEX) and check_unique (a phase3 pre-flight check only).
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/plan_check.h"
#include "engine/registry.h"
#include "ops/ops.h"

static int
create_index_apply(Run *run, const Op *op, const Options *opts)
{
	const IndexSpec *ix = op->data;
	StrBuf cols;
	int rc;

	(void) opts;
	sb_init(&cols);
	for (int i = 0; i < ix->n_columns; i++)
	{
		char *q = plan_ident(run->plan, ix->columns[i]);

		sb_printf(&cols, "%s%s", i ? ", " : "", q);
		free(q);
	}
	rc = ops_build_index(run, ix->name, cols.data, ix->unique, "index");
	sb_free(&cols);
	return rc;
}

static int
drop_registered_index(Run *run, const char *name, const char *kind)
{
	const Plan *p = run->plan;
	char *qs, *qn, *sql;
	int rc = EXIT_DONE;

	if (!registry_has(run->conn, p, kind, name))
		return EXIT_DONE;
	qs = plan_ident(p, p->schema);
	qn = plan_ident(p, name);
	sql = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s.%s", qs, qn);
	log_info("dropping index %s", qn);
	if (!db_ddl_nontx_try(run->conn, sql, sql, true))
		rc = EXIT_FAILED;
	else
		registry_remove(run->conn, p, kind, name);
	free(sql);
	free(qs);
	free(qn);
	return rc;
}

static int
create_index_rollback(Run *run, const Op *op, const Options *opts)
{
	const IndexSpec *ix = op->data;

	(void) opts;
	return drop_registered_index(run, ix->name, "index");
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
		"(SELECT string_agg(format('%%s (value %%s)', quote_nullable(k), quote_nullable(v::text)), " FINDINGS_SEP ") "
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
	const IndexSpec *ix = op->data;

	return duplicates_gate(run->plan, op->column, ix->ignore_case);
}

/* What to do about duplicates: phasemig never chooses which row keeps a value. */
#define DUPLICATES_HINT                                                                                                \
	"make the values unique (the samples are the keys of rows that share one), then run \"phase3 check\" "             \
	"again; phasemig never chooses which row keeps a value"

static long long
add_unique_check(Run *run, const Op *op, Findings *f)
{
	const IndexSpec *ix = op->data;
	int from = f->n;
	long long n;

	if (catalog_constraint_exists(run->plan, ix->name))
		return 0;
	n = check_duplicates(run, f, op->column, false);
	findings_hint(f, from, DUPLICATES_HINT);
	return n;
}

/*
 * The plan's create_index that a unique constraint on COLUMN makes redundant:
 * a plain index on that column alone (clerk-to-firebase's
 * users_firebase_uid_idx beside users_firebase_uid_key), or NULL.
 */
static const Op *
redundant_index(const Plan *p, const char *column)
{
	for (int i = 0; i < p->n_ops; i++)
	{
		const Op *o = &p->ops[i];
		const IndexSpec *oix = o->data;

		if (o->kind == &op_type_create_index && !oix->unique && oix->n_columns == 1
			&& strcmp(oix->columns[0], column) == 0)
			return o;
	}
	return NULL;
}

/*
 * Once the unique constraint holds: drop the plan's plain index on the same
 * column, when phasemig built it (never one it found), noted first as
 * "replaced_index" so that a rollback builds it again.
 */
static int
drop_redundant_index(Run *run, const Op *op)
{
	const IndexSpec *ix = op->data;
	const Op *o = redundant_index(run->plan, op->column);
	const IndexSpec *oix = o ? o->data : NULL;

	if (o == NULL || !registry_has(run->conn, run->plan, "index", oix->name))
		return EXIT_DONE;
	registry_set(run->conn, run->plan, run->phase, "replaced_index", oix->name, "{}");
	log_info("index \"%s\" is redundant beside unique constraint \"%s\" on the same column: dropping it (phase3 "
			 "rollback builds it again)",
			 oix->name, ix->name);
	return drop_registered_index(run, oix->name, "index");
}

/* phase3 rollback: the index drop_redundant_index dropped, built again before the constraint goes. */
static int
rebuild_replaced_index(Run *run, const Op *op)
{
	const IndexSpec *ix = op->data;
	const Op *o = redundant_index(run->plan, op->column);
	const IndexSpec *oix = o ? o->data : NULL;
	char *qcol;
	int rc;

	if (o == NULL || !registry_has(run->conn, run->plan, "replaced_index", oix->name))
		return EXIT_DONE;
	qcol = plan_ident(run->plan, oix->columns[0]);
	log_info("building index \"%s\" again: unique constraint \"%s\" is about to go", oix->name, ix->name);
	rc = ops_build_index(run, oix->name, qcol, false, "index");
	if (rc == EXIT_DONE)
		registry_remove(run->conn, run->plan, "replaced_index", oix->name);
	free(qcol);
	return rc;
}

static int
add_unique_apply(Run *run, const Op *op, const Options *opts)
{
	const IndexSpec *ix = op->data;
	const Plan *p = run->plan;
	char *qcol, *qname, *add, *reg;
	int rc;

	(void) opts;
	if (catalog_constraint_exists(p, ix->name))
	{
		log_info("unique constraint \"%s\" already exists", ix->name);
		return drop_redundant_index(run, op);
	}
	qcol = plan_ident(p, op->column);
	qname = plan_ident(p, ix->name);
	/* 1. the unique index, built without blocking writes */
	rc = ops_build_index(run, ix->name, qcol, true, "unique_index");
	if (rc == EXIT_DONE)
	{
		/* 2. adopt it as the constraint: a catalog change under a short lock */
		add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", p->q_table, qname, qname);
		reg = registry_add_sql(p, run->phase, "constraint", ix->name);
		{
			const char *stmts[2] = {add, reg};

			log_info("adding unique constraint %s using index %s", qname, qname);
			rc = ops_ddl(run, add, stmts, 2);
		}
		free(add);
		free(reg);
	}
	/* 3. the plan's plain index on the same column is redundant now */
	if (rc == EXIT_DONE)
		rc = drop_redundant_index(run, op);
	free(qcol);
	free(qname);
	return rc;
}

static int
add_unique_rollback(Run *run, const Op *op, const Options *opts)
{
	const IndexSpec *ix = op->data;
	const Plan *p = run->plan;
	int rc = EXIT_DONE;

	(void) opts;
	/* the column never goes without an index: the plain one first, then the constraint goes */
	rc = rebuild_replaced_index(run, op);
	if (rc == EXIT_DONE && registry_has(run->conn, p, "constraint", ix->name))
	{
		char *qname = plan_ident(p, ix->name);
		char *drop = str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", p->q_table, qname);
		const char *stmts[1] = {drop};

		log_info("dropping unique constraint %s", qname);
		rc = ops_ddl_forget(run, drop, stmts, 1, "constraint", ix->name);
		free(drop);
		free(qname);
	}
	if (rc == EXIT_DONE)
		rc = drop_registered_index(run, ix->name, "unique_index");
	return rc;
}

static long long
check_unique_check(Run *run, const Op *op, Findings *f)
{
	const IndexSpec *ix = op->data;
	int from = f->n;
	long long n = check_duplicates(run, f, op->column, ix->ignore_case);

	findings_hint(f, from, DUPLICATES_HINT);
	return n;
}

/* The label of an operation with a name: "create_index <name>"; NULL (the column's) without one. */
static char *
name_label(const Op *op)
{
	const IndexSpec *ix = op->data;

	return ix->name ? str_printf("%s %s", op->kind->name, ix->name) : NULL;
}

static void
create_index_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	json_t *cols = json_object_get(obj, "columns");
	IndexSpec *ix = op->data = xcalloc(1, sizeof(IndexSpec));
	size_t i;
	json_t *c;

	ix->name = plan_read_ident(r, obj, where, "name", true);
	ix->unique = plan_read_bool(r, obj, where, "unique", false);
	if (!json_is_array(cols) || json_array_size(cols) == 0)
	{
		plan_read_fail(r, where, "\"columns\" must be a non-empty array of column names");
		return;
	}
	ix->columns = xcalloc(json_array_size(cols), sizeof(char *));
	json_array_foreach(cols, i, c)
	{
		if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > PLAN_MAX_IDENT)
			plan_read_fail(r, where, "\"columns\"[%zu] must be a column name", i);
		else
			ix->columns[ix->n_columns++] = xstrdup(json_string_value(c));
	}
	if (ix->n_columns > 0)
		op->column = xstrdup(ix->columns[0]);
	op->label = name_label(op);
}

static int
create_index_check_plan(Run *run, const Op *op)
{
	const IndexSpec *ix = op->data;
	int problems = 0;

	for (int c = 0; c < ix->n_columns; c++)
		problems += plan_check_column(run->plan, op, ix->columns[c], "indexed column");
	return problems + plan_check_name_free(run, op, ix->name, ix->columns, ix->n_columns, ix->unique);
}

static void
add_unique_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	IndexSpec *ix = op->data = xcalloc(1, sizeof(IndexSpec));

	op->column = plan_read_ident(r, obj, where, "column", true);
	ix->name = plan_read_ident(r, obj, where, "name", true);
	op->label = name_label(op);
}

static int
add_unique_check_plan(Run *run, const Op *op)
{
	const IndexSpec *ix = op->data;
	char *column = op->column;

	return plan_check_column(run->plan, op, op->column, "column")
		+ plan_check_name_free(run, op, ix->name, &column, 1, true);
}

static void
check_unique_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	IndexSpec *ix = op->data = xcalloc(1, sizeof(IndexSpec));

	op->column = plan_read_ident(r, obj, where, "column", true);
	ix->ignore_case = plan_read_bool(r, obj, where, "ignore_case", false);
}

static void
create_index_uses(const Op *op, PlanUses *u)
{
	const IndexSpec *ix = op->data;

	for (int c = 0; c < ix->n_columns; c++)
		plan_uses_add(u, PLAN_READS, ix->columns[c]);
	plan_uses_add(u, PLAN_NAMES, ix->name);
}

static void
add_unique_uses(const Op *op, PlanUses *u)
{
	const IndexSpec *ix = op->data;

	plan_uses_add(u, PLAN_READS, op->column);
	plan_uses_add(u, PLAN_NAMES, ix->name);
}

static void
index_free(void *data)
{
	IndexSpec *ix = data;

	if (ix == NULL)
		return;
	free(ix->name);
	for (int c = 0; c < ix->n_columns; c++)
		free(ix->columns[c]);
	free(ix->columns);
	free(ix);
}

/* "plan --json" shows the index's or constraint's name. */
static void
index_describe(const Op *op, json_t *obj, json_t *plan_obj)
{
	const IndexSpec *ix = op->data;

	(void) plan_obj;
	if (ix->name)
		json_object_set_new(obj, "name", json_string(ix->name));
}

static const OpHandlers create_index_handlers = {
	.apply = {[1] = create_index_apply},
	.rollback = {[1] = create_index_rollback},
};

static const OpHandlers add_unique_handlers = {
	.apply = {[3] = add_unique_apply},
	.rollback = {[3] = add_unique_rollback},
	.check = add_unique_check,
	.gate = add_unique_gate,
};

static const OpHandlers check_unique_handlers = {
	.check = check_unique_check,
	.gate = check_unique_gate,
};

const OpType op_type_create_index = {
	.name = "create_index",
	.keys = (const char *const[]){"name", "columns", "unique", NULL},
	.read = create_index_read,
	.free = index_free,
	.describe = index_describe,
	.check_plan = create_index_check_plan,
	.uses = create_index_uses,
	.handlers = &create_index_handlers,
};

const OpType op_type_add_unique = {
	.name = "add_unique",
	.keys = (const char *const[]){"column", "name", NULL},
	.read = add_unique_read,
	.free = index_free,
	.describe = index_describe,
	.check_plan = add_unique_check_plan,
	.uses = add_unique_uses,
	.handlers = &add_unique_handlers,
	.apply_drops = "builds a unique index CONCURRENTLY and adopts it as the constraint; drops the plan's plain "
				   "index on the same column, if it built one (a rollback builds it again)",
};

const OpType op_type_check_unique = {
	.name = "check_unique",
	.keys = (const char *const[]){"column", "ignore_case", NULL},
	.read = check_unique_read,
	.free = index_free,
	.handlers = &check_unique_handlers,
};
