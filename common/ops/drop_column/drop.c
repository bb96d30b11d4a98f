/*
 * drop.c: drop_column's phase3: it drops a column once its values are safe
 * in migration_backup (kept current by a trigger until the drop), refusing
 * when a view, rule, policy or foreign key depends on it, and records the
 * column's whole definition for the rollback (undrop.c).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/registry.h"
#include "ops/drop_column/drop_column.h"
#include "ops/versions.h"

void
drop_objects_init(DropColumnObjects *n, Run *run, const Op *op)
{
	char *tmp = str_printf("drop:%s", op->column);
	char *trig;

	n->qcol = plan_ident(run->plan, op->column);
	n->backup = plan_backup_table(run->plan, tmp);
	free(tmp);
	tmp = str_printf("keep:%s", op->column);
	n->keep_fn = plan_backup_table(run->plan, tmp);
	free(tmp);
	tmp = str_printf("keep_%s", op->column);
	trig = ops_object_name(run->plan, tmp);
	free(tmp);
	n->keep_trigger = plan_ident(run->plan, trig);
	free(trig);
}

void
drop_objects_free(DropColumnObjects *n)
{
	free(n->qcol);
	free(n->backup);
	free(n->keep_fn);
	free(n->keep_trigger);
}

/* The before schema of views goes with the column: a finding while sessions still hold its views. */
static long long
before_schema_check(Run *run, Findings *f)
{
	char *holders = versions_holders(run, VERSIONS_BEFORE);
	char *subject;

	if (holders == NULL)
		return 0;
	subject = str_printf("schema \"%s\" is still in use (its views go with the column)",
						 versions_schema(run->plan, VERSIONS_BEFORE));
	findings_add(f, "schema_in_use", subject, 1, holders);
	free(subject);
	findings_hint(f, f->n - 1,
				  "retire the application version whose search_path names the before schema, then run this again");
	free(holders);
	return 1;
}

static long long
drop_column_check(Run *run, const Op *op, Findings *f)
{
	char *deps, *except;
	char *subject;

	if (!catalog_column_exists(run->plan, op->column))
		return 0;
	/* the plan's before schema reads the column: the drop takes it along */
	except = versions_except_schemas(run->plan);
	deps = catalog_column_dependents(run->plan, op->column, except);
	free(except);
	if (deps == NULL)
		return before_schema_check(run, f);
	subject =
		str_printf("column %s.\"%s\" (drop it, or remove the dependent objects first)", run->plan->q_table, op->column);
	findings_add(f, "dependent_object", subject, 1, deps);
	findings_hint(f, f->n - 1,
				  "save each dependent view's definition (pg_get_viewdef), drop it, run phase3 apply, then re-create "
				  "it on the new columns; after a phase3 rollback, re-create it as it was (docs/runbook.md)");
	free(subject);
	free(deps);
	return 1 + before_schema_check(run, f);
}

/* Definition of the column and everything that goes with it, as JSON text. */
static char *
column_definition(Run *run, const char *column)
{
	const char *p[2] = {run->plan->q_table, column};

	return db_value(
		run->conn,
		"SELECT json_build_object("
		" 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),"
		" 'collation', CASE WHEN a.attcollation <> t.typcollation "
		"   THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(co.collname) FROM pg_catalog.pg_collation co "
		"         JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace WHERE co.oid = a.attcollation) END,"
		" 'not_null', a.attnotnull,"
		" 'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),"
		" 'comment', pg_catalog.col_description(a.attrelid, a.attnum),"
		" 'constraints', (SELECT coalesce(json_agg(json_build_object('name', c.conname, 'type', c.contype,"
		"     'def', pg_catalog.pg_get_constraintdef(c.oid),"
		"     'index', CASE WHEN c.contype IN ('u', 'x') THEN pg_catalog.pg_get_indexdef(c.conindid) END)"
		"     ORDER BY c.conname), '[]') FROM pg_catalog.pg_constraint c"
		"     WHERE c.conrelid = a.attrelid AND a.attnum = ANY (c.conkey)),"
		" 'indexes', (SELECT coalesce(json_agg(pg_catalog.pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid), '[]')"
		"     FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid"
		"     AND i.indexrelid IN (SELECT objid FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_class'::regclass"
		"       AND refobjid = a.attrelid AND refobjsubid = a.attnum)"
		"     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid"
		"       AND c.conrelid = i.indrelid)))::text "
		"FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
		"LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
		"WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped",
		2, p);
}

/*
 * 1. Nothing to do when this plan dropped the column already; the column
 * missing otherwise is an error.  Returns -1 to go on, else an exit code.
 */
static int
already_dropped(Run *run, const Op *op, const DropColumnObjects *n)
{
	if (catalog_column_exists(run->plan, op->column))
		return -1;
	if (registry_has(run->conn, run->plan, "dropped_column", op->column))
	{
		log_info("column %s already dropped", n->qcol);
		return EXIT_DONE;
	}
	log_error("column %s of %s does not exist", n->qcol, run->plan->q_table);
	return EXIT_FAILED;
}

/* 2. Refuse when something depends on the column. */
static int
refuse_dependents(Run *run, const Op *op)
{
	Findings f;
	int rc = EXIT_DONE;

	findings_init(&f);
	if (drop_column_check(run, op, &f) > 0)
	{
		findings_print(&f);
		rc = EXIT_REFUSED;
	}
	findings_free(&f);
	return rc;
}

/* 3. The backup table and a trigger that keeps it current until the drop. */
static int
create_backup(Run *run, const Op *op, const DropColumnObjects *n)
{
	const Plan *p = run->plan;
	/* the table's name goes in as a parameter, never inside a literal */
	bool has_pk = db_exists(run->conn,
							"SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = "
							"pg_catalog.to_regclass($1) AND contype = 'p'",
							1, (const char *[]){n->backup});
	char *stmts[6] = {
		str_printf("CREATE TABLE IF NOT EXISTS %s AS SELECT %s AS key, %s AS value FROM %s WITH NO DATA", n->backup,
				   p->q_key, n->qcol, p->q_table),
		str_printf("CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$ BEGIN "
				   "INSERT INTO %s (key, value) VALUES (NEW.%s, NEW.%s) "
				   "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; RETURN NULL; END $fn$",
				   n->keep_fn, n->backup, p->q_key, n->qcol),
		str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->keep_trigger, p->q_table),
		str_printf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OF %s ON %s FOR EACH ROW EXECUTE FUNCTION %s()",
				   n->keep_trigger, n->qcol, p->q_table, n->keep_fn),
		registry_add_sql(p, run->phase, "drop_backup", op->column),
		/* no primary key to add when the table has one */
		has_pk ? NULL : str_printf("ALTER TABLE %s ADD PRIMARY KEY (key)", n->backup),
	};
	int rc;

	log_info("saving the values of %s into %s", n->qcol, n->backup);
	rc = ops_ddl(run, stmts[0], (const char *const *) stmts, has_pk ? 5 : 6);
	for (int i = 0; i < 6; i++)
		free(stmts[i]);
	return rc;
}

/* 4. Copy the values (rows changed meanwhile are newer in the backup already). */
static void
copy_values(Run *run, const DropColumnObjects *n)
{
	const Plan *p = run->plan;
	char *copy = str_printf("INSERT INTO %s (key, value) SELECT %s, %s FROM %s ON CONFLICT (key) DO NOTHING", n->backup,
							p->q_key, n->qcol, p->q_table);

	db_exec(run->conn, copy);
	free(copy);
}

/*
 * 5. Drop trigger and column together, recording DEF, the column's
 * definition, for the rollback; the plan's before schema of views, which
 * reads the column, goes in the same transaction.
 */
static int
drop_recording(Run *run, const Op *op, const DropColumnObjects *n, const char *def)
{
	const Plan *p = run->plan;
	char *drop_before = versions_drop_sql(run, VERSIONS_BEFORE, NULL);
	char *stmts[4] = {
		str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->keep_trigger, p->q_table),
		str_printf("ALTER TABLE %s DROP COLUMN %s", p->q_table, n->qcol),
		registry_add_detail_sql(p, 3, "dropped_column", op->column, def),
		drop_before,
	};
	int rc;

	log_info("dropping column %s%s", n->qcol, drop_before ? " with the before schema of views" : "");
	if (drop_before)
	{
		/* the views before the column they read */
		stmts[3] = stmts[1];
		stmts[1] = drop_before;
	}
	rc = ops_ddl(run, stmts[drop_before ? 3 : 1], (const char *const *) stmts, drop_before ? 4 : 3);
	if (rc == EXIT_DONE)
	{
		char *dropfn = str_printf("DROP FUNCTION IF EXISTS %s()", n->keep_fn);

		db_exec(run->conn, dropfn);
		free(dropfn);
	}
	for (int i = 0; i < 4; i++)
		free(stmts[i]);
	return rc;
}

static int
drop_column_apply(Run *run, const Op *op, const Options *opts)
{
	DropColumnObjects n;
	char *def = NULL;
	int rc;

	(void) opts;
	drop_objects_init(&n, run, op);
	if ((rc = already_dropped(run, op, &n)) < 0 && (rc = refuse_dependents(run, op)) == EXIT_DONE
		&& (rc = versions_refuse_if_held(run, VERSIONS_BEFORE)) == EXIT_DONE)
	{
		def = column_definition(run, op->column);
		if ((rc = create_backup(run, op, &n)) == EXIT_DONE)
		{
			copy_values(run, &n);
			rc = drop_recording(run, op, &n, def);
		}
	}
	free(def);
	drop_objects_free(&n);
	return rc;
}

static void
drop_column_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	op->column = plan_read_ident(r, obj, where, "column", true);
	if (op->column && r->plan_name && strlen(r->plan_name) + strlen(":drop:") + strlen(op->column) > PLAN_MAX_IDENT)
		plan_read_fail(r, where,
					   "the backup table \"%s:drop:%s\" would be longer than %d bytes; use a shorter plan name",
					   r->plan_name, op->column, PLAN_MAX_IDENT);
}

static void
drop_column_uses(const Op *op, PlanUses *u)
{
	plan_uses_add(u, PLAN_DROPS, op->column);
}

static const OpHandlers drop_column_handlers = {
	.apply = {[3] = drop_column_apply},
	.rollback = {[3] = drop_column_rollback},
	.check = drop_column_check,
	.contract_last = true,
};

const OpType op_type_drop_column = {
	.name = "drop_column",
	.keys = (const char *const[]){"column", NULL},
	.read = drop_column_read,
	.uses = drop_column_uses,
	.handlers = &drop_column_handlers,
	.apply_drops = "drops the column (its values saved in migration_backup first; a rollback adds it back)",
};
