/*
 * op_drop_column.c: phase3 drops a column once its values are safe in
 * migration_backup (kept current by a trigger until the drop), refusing when a
 * view, rule, policy or foreign key depends on it.  Rollback adds the column
 * back, restores its values in batches, then its default, NOT NULL, its
 * constraints (unique ones through an index built CONCURRENTLY) and indexes.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/batch.h"
#include "engine/catalog.h"
#include "core/db.h"
#include "core/keyset.h"
#include "core/log.h"
#include "ops/ops.h"
#include "core/strbuf.h"

typedef struct Names
{
	char *qcol;				/* the column, quoted */
	char *backup;			/* migration_backup."<plan>:drop:<col>" */
	char *keep_fn;			/* migration_backup."<plan>:keep:<col>" */
	char *keep_trigger;		/* trigger name, quoted */
	char *what;				/* registry name */
} Names;

static void
names_init(Names *n, Run *run, const Op *op)
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
	n->what = xstrdup(op->column);
}

static void
names_free(Names *n)
{
	free(n->qcol);
	free(n->backup);
	free(n->keep_fn);
	free(n->keep_trigger);
	free(n->what);
}

static long long
drop_column_check(Run *run, const Op *op, Findings *f)
{
	char *deps;
	char *subject;

	if (!catalog_column_exists(run->plan, op->column))
		return 0;
	deps = catalog_column_dependents(run->plan, op->column);
	if (deps == NULL)
		return 0;
	subject = str_printf("column %s.\"%s\" (drop it, or remove the dependent objects first)", run->plan->q_table,
						 op->column);
	findings_add(f, "dependent_object", subject, 1, deps);
	free(subject);
	free(deps);
	return 1;
}

/* Definition of the column and everything that goes with it, as JSON text. */
static char *
column_definition(Run *run, const char *column)
{
	const char *p[2] = {run->plan->q_table, column};

	return db_value(run->conn,
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

static int
drop_column_apply(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	Findings f;
	Names n;
	char *type = catalog_column_type(p, op->column);
	char *def = NULL;
	int rc = EXIT_DONE;

	(void) opts;
	names_init(&n, run, op);
	if (type == NULL)
	{
		if (mlog_is_registered(run->conn, p, "dropped_column", op->column))
			log_info("column %s already dropped", n.qcol);
		else
		{
			log_error("column %s of %s does not exist", n.qcol, p->q_table);
			rc = EXIT_FAILED;
		}
		goto done;
	}
	/* 1. refuse when something depends on the column */
	findings_init(&f);
	if (drop_column_check(run, op, &f) > 0)
	{
		findings_print(&f);
		findings_free(&f);
		rc = EXIT_REFUSED;
		goto done;
	}
	findings_free(&f);
	def = column_definition(run, op->column);

	/* 2. the backup table and a trigger that keeps it current until the drop */
	{
		char *create = str_printf("CREATE TABLE IF NOT EXISTS %s AS SELECT %s AS key, %s AS value FROM %s WITH NO DATA",
								  n.backup, p->q_key, n.qcol, p->q_table);
		/* the table's name goes in as a parameter, never inside a literal */
		bool has_pk = db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = "
								"pg_catalog.to_regclass($1) AND contype = 'p'", 1, (const char *[]) {n.backup});
		char *pk = has_pk ? NULL : str_printf("ALTER TABLE %s ADD PRIMARY KEY (key)", n.backup);
		char *fn = str_printf("CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$ BEGIN "
							  "INSERT INTO %s (key, value) VALUES (NEW.%s, NEW.%s) "
							  "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; RETURN NULL; END $fn$",
							  n.keep_fn, n.backup, p->q_key, n.qcol);
		char *drop_trig = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n.keep_trigger, p->q_table);
		char *trig = str_printf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OF %s ON %s FOR EACH ROW EXECUTE FUNCTION %s()",
								n.keep_trigger, n.qcol, p->q_table, n.keep_fn);
		char *reg = mlog_register_sql(p, run->phase, "drop_backup", op->column);
		const char *all[6] = {create, pk, fn, drop_trig, trig, reg};
		const char *stmts[6];
		int k = 0;

		for (int i = 0; i < 6; i++)
			if (all[i])			/* no primary key to add when the table has one */
				stmts[k++] = all[i];
		log_info("saving the values of %s into %s", n.qcol, n.backup);
		rc = ops_ddl(run, create, stmts, k);
		free(create);
		free(pk);
		free(fn);
		free(drop_trig);
		free(trig);
		free(reg);
		if (rc != EXIT_DONE)
			goto done;
	}
	/* 3. copy the values (rows changed meanwhile are newer in the backup already) */
	{
		char *copy = str_printf("INSERT INTO %s (key, value) SELECT %s, %s FROM %s ON CONFLICT (key) DO NOTHING",
								n.backup, p->q_key, n.qcol, p->q_table);

		db_exec(run->conn, copy);
		free(copy);
	}
	/* 4. drop trigger and column together, recording the definition for rollback */
	{
		char *drop_trig = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n.keep_trigger, p->q_table);
		char *drop = str_printf("ALTER TABLE %s DROP COLUMN %s", p->q_table, n.qcol);
		char *lit_plan = PQescapeLiteral(run->conn, p->name, strlen(p->name));
		char *lit_col = PQescapeLiteral(run->conn, op->column, strlen(op->column));
		char *lit_def = PQescapeLiteral(run->conn, def, strlen(def));
		char *reg = str_printf("INSERT INTO migration_backup.phasemig_objects (plan, kind, name, phase, detail) "
							   "VALUES (%s, 'dropped_column', %s, 3, %s::jsonb) ON CONFLICT DO NOTHING",
							   lit_plan, lit_col, lit_def);
		const char *stmts[3] = {drop_trig, drop, reg};

		log_info("dropping column %s", n.qcol);
		rc = ops_ddl(run, drop, stmts, 3);
		if (rc == EXIT_DONE)
		{
			char *dropfn = str_printf("DROP FUNCTION IF EXISTS %s()", n.keep_fn);

			db_exec(run->conn, dropfn);
			free(dropfn);
		}
		PQfreemem(lit_plan);
		PQfreemem(lit_col);
		PQfreemem(lit_def);
		free(drop_trig);
		free(drop);
		free(reg);
	}
done:
	free(type);
	free(def);
	names_free(&n);
	return rc;
}

/* "CREATE [UNIQUE] INDEX name ON ..." from pg_get_indexdef, built CONCURRENTLY. */
static char *
concurrent_indexdef(const char *indexdef)
{
	const char *on = strstr(indexdef, "INDEX ");

	if (on == NULL)
		return xstrdup(indexdef);
	return str_printf("%.*sINDEX CONCURRENTLY %s", (int) (on - indexdef), indexdef, on + 6);
}

static int
restore_constraint(Run *run, json_t *c)
{
	const Plan *p = run->plan;
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *type = json_string_value(json_object_get(c, "type"));
	const char *cdef = json_string_value(json_object_get(c, "def"));
	const char *index = json_string_value(json_object_get(c, "index"));
	char *qname = plan_ident(p, name);
	int rc = EXIT_DONE;

	if (catalog_constraint_exists(p, name))
		goto done;
	if (strcmp(type, "u") == 0 && index)
	{
		char *build = concurrent_indexdef(index);
		char *add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", p->q_table, qname, qname);
		const char *stmts[1] = {add};

		if (catalog_index_state(p, name) != INDEX_VALID)
		{
			char *drop = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s", qname);
			char *qs = plan_ident(p, p->schema);

			free(drop);
			drop = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s.%s", qs, qname);
			free(qs);
			if (!db_ddl_nontx_try(run->conn, drop, drop, true) || !db_ddl_nontx_try(run->conn, build, build, false))
				rc = EXIT_FAILED;
			free(drop);
		}
		if (rc == EXIT_DONE)
			rc = ops_ddl(run, add, stmts, 1);
		free(build);
		free(add);
	}
	else if (strcmp(type, "c") == 0 || strcmp(type, "f") == 0)
	{
		char *add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", p->q_table, qname, cdef);
		const char *stmts[1] = {add};

		rc = ops_ddl(run, add, stmts, 1);
		if (rc == EXIT_DONE)
			rc = ops_validate(run, p->q_table, qname);
		free(add);
	}
	else
	{
		char *add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s %s", p->q_table, qname, cdef);
		const char *stmts[1] = {add};

		rc = ops_ddl(run, add, stmts, 1);
		free(add);
	}
done:
	free(qname);
	return rc;
}

static int
drop_column_rollback(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	const char *params[3] = {p->name, "dropped_column", op->column};
	Names n;
	char *def;
	json_t *d = NULL;
	json_error_t jerr;
	int rc = EXIT_DONE;

	names_init(&n, run, op);
	def = db_value(run->conn, "SELECT detail::text FROM migration_backup.phasemig_objects "
				   "WHERE plan = $1 AND kind = $2 AND name = $3", 3, params);
	if (def == NULL)
	{
		/* dropped nothing; remove a backup left by an apply that stopped before the drop */
		if (mlog_is_registered(run->conn, p, "drop_backup", op->column))
		{
			char *drop_trig = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n.keep_trigger, p->q_table);
			char *dropfn = str_printf("DROP FUNCTION IF EXISTS %s()", n.keep_fn);
			char *dropt = str_printf("DROP TABLE IF EXISTS %s", n.backup);
			const char *stmts[3] = {drop_trig, dropfn, dropt};

			rc = ops_ddl(run, drop_trig, stmts, 3);
			if (rc == EXIT_DONE)
				mlog_unregister(run->conn, p, "drop_backup", op->column);
			free(drop_trig);
			free(dropfn);
			free(dropt);
		}
		goto done;
	}
	d = json_loads(def, 0, &jerr);
	if (d == NULL)
	{
		log_error("definition of dropped column %s in migration_backup.phasemig_objects is unreadable", n.qcol);
		rc = EXIT_FAILED;
		goto done;
	}
	/* 1. add the column back (nullable, no default: no rewrite) */
	{
		const char *collation = json_string_value(json_object_get(d, "collation"));
		char *add = str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s%s%s", p->q_table, n.qcol,
							   json_string_value(json_object_get(d, "type")), collation ? " COLLATE " : "",
							   collation ? collation : "");
		const char *stmts[1] = {add};

		log_info("adding column %s back", n.qcol);
		rc = ops_ddl(run, add, stmts, 1);
		free(add);
		if (rc != EXIT_DONE)
			goto done;
	}
	/*
	 * 2. restore its values in keyset batches over the backup, resumable; a
	 * value the application has written into the column since it came back
	 * is newer than the backup and stays; keys compared in the key's current
	 * type (another plan, string-to-uuid, may have changed it)
	 */
	{
		BatchLoop b = {.what = "restoring"};
		char *sql[2];
		char *label = str_printf("restore column %s", op->column);
		char *count = str_printf("SELECT count(*) FROM %s", n.backup);

		b.rows_total = db_count(run->conn, count, 0, NULL);
		free(count);

		char *steps = str_printf("u AS (UPDATE %s t SET %s = b.value FROM b WHERE t.%s = b.key::%s AND t.%s IS NULL "
								 "AND b.value IS NOT NULL RETURNING 1)", p->q_table, n.qcol, p->q_key, p->key_type,
								 n.qcol);
		KeysetBatch k = {.table = n.backup, .key = "key", .columns = ", t.value AS value", .steps = steps,
						 .changed = "u"};

		for (int first = 0; first < 2; first++)
			sql[first] = keyset_batch_sql(&k, first);
		free(steps);
		b.sql_first = sql[1];
		b.sql_next = sql[0];
		log_info("restoring the values of %s from %s", n.qcol, n.backup);
		rc = ops_undo_batches(run, opts, label, &b);
		free(label), free(sql[0]), free(sql[1]);
		if (rc != EXIT_DONE)
			goto done;
	}
	/* 3. default, NOT NULL, comment */
	if (json_is_string(json_object_get(d, "default")))
	{
		char *sql = str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", p->q_table, n.qcol,
							   json_string_value(json_object_get(d, "default")));
		const char *stmts[1] = {sql};

		rc = ops_ddl(run, sql, stmts, 1);
		free(sql);
		if (rc != EXIT_DONE)
			goto done;
	}
	if (json_is_true(json_object_get(d, "not_null")) && (rc = ops_enforce_not_null(run, op->column)) != EXIT_DONE)
		goto done;
	if (json_is_string(json_object_get(d, "comment")))
	{
		const char *c = json_string_value(json_object_get(d, "comment"));
		char *lit = PQescapeLiteral(run->conn, c, strlen(c));
		char *sql = str_printf("COMMENT ON COLUMN %s.%s IS %s", p->q_table, n.qcol, lit);

		db_exec(run->conn, sql);
		PQfreemem(lit);
		free(sql);
	}
	/* 4. constraints and indexes that went with the column */
	{
		size_t i;
		json_t *c;

		json_array_foreach(json_object_get(d, "constraints"), i, c)
			if ((rc = restore_constraint(run, c)) != EXIT_DONE)
			goto done;
		json_array_foreach(json_object_get(d, "indexes"), i, c)
		{
			char *build = concurrent_indexdef(json_string_value(c));
			char *ine = strstr(build, "CONCURRENTLY ");
			char *sql = ine ? str_printf("%.*sCONCURRENTLY IF NOT EXISTS %s", (int) (ine - build), build, ine + 13)
				: xstrdup(build);

			if (!db_ddl_nontx_try(run->conn, sql, sql, false))
				rc = EXIT_FAILED;
			free(build);
			free(sql);
			if (rc != EXIT_DONE)
				goto done;
		}
	}
	/* 5. the backup is no longer needed */
	{
		char *dropt = str_printf("DROP TABLE IF EXISTS %s", n.backup);
		char *dropfn = str_printf("DROP FUNCTION IF EXISTS %s()", n.keep_fn);
		const char *stmts[2] = {dropt, dropfn};

		rc = ops_ddl(run, dropt, stmts, 2);
		if (rc == EXIT_DONE)
		{
			mlog_unregister(run->conn, p, "dropped_column", op->column);
			mlog_unregister(run->conn, p, "drop_backup", op->column);
		}
		free(dropt);
		free(dropfn);
	}
done:
	json_decref(d);
	free(def);
	names_free(&n);
	return rc;
}

const OpHandlers op_drop_column = {
	.apply = {[3] = drop_column_apply},
	.rollback = {[3] = drop_column_rollback},
	.check = drop_column_check,
	.contract_last = true,
};
