/*
 * undrop.c: drop_column's phase3 rollback: add the column back, restore its
 * values in batches from the backup, then its default, NOT NULL, comment,
 * its constraints (unique ones through an index built CONCURRENTLY) and
 * indexes, as the definition recorded at the drop says.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/keyset.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/batch.h"
#include "engine/catalog.h"
#include "engine/registry.h"
#include "ops/drop_column/drop_column.h"

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
			char *qs = plan_ident(p, p->schema);
			char *drop = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s.%s", qs, qname);

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

/* Remove the backup an apply left that stopped before the drop (nothing was dropped). */
static int
remove_unused_backup(Run *run, const Op *op, const DropColumnObjects *n)
{
	const Plan *p = run->plan;
	char *stmts[3];
	int rc;

	if (!registry_has(run->conn, p, "drop_backup", op->column))
		return EXIT_DONE;
	stmts[0] = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->keep_trigger, p->q_table);
	stmts[1] = str_printf("DROP FUNCTION IF EXISTS %s()", n->keep_fn);
	stmts[2] = str_printf("DROP TABLE IF EXISTS %s", n->backup);
	rc = ops_ddl_forget(run, stmts[0], (const char *const *) stmts, 3, "drop_backup", op->column);
	for (int i = 0; i < 3; i++)
		free(stmts[i]);
	return rc;
}

/* 1. Add the column back (nullable, no default: no rewrite). */
static int
add_back(Run *run, const DropColumnObjects *n, json_t *d)
{
	const char *collation = json_string_value(json_object_get(d, "collation"));
	char *add = str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s%s%s", run->plan->q_table, n->qcol,
						   json_string_value(json_object_get(d, "type")), collation ? " COLLATE " : "",
						   collation ? collation : "");
	int rc;

	log_info("adding column %s back", n->qcol);
	rc = ops_ddl(run, add, (const char *[]){add}, 1);
	free(add);
	return rc;
}

/*
 * 2. Restore its values in keyset batches over the backup, resumable; a
 * value the application has written into the column since it came back is
 * newer than the backup and stays; keys compared in the key's current type
 * (another plan, string-to-uuid, may have changed it).
 */
static int
restore_values(Run *run, const Op *op, const DropColumnObjects *n, const Options *opts)
{
	const Plan *p = run->plan;
	char *label = str_printf("restore column %s", op->column);
	char *count = str_printf("SELECT count(*) FROM %s", n->backup);
	char *steps = str_printf("u AS (UPDATE %s t SET %s = b.value FROM b WHERE t.%s = b.key::%s AND t.%s IS NULL "
							 "AND b.value IS NOT NULL RETURNING 1)",
							 p->q_table, n->qcol, p->q_key, p->key_type, n->qcol);
	KeysetBatch k = {.table = n->backup, .key = "key", .columns = ", t.value AS value", .steps = steps, .changed = "u"};
	long long rows_total = db_count(run->conn, count, 0, NULL);
	int rc;

	log_info("restoring the values of %s from %s", n->qcol, n->backup);
	rc = ops_undo_batches(run, opts, label, &k, rows_total);
	free(label), free(count), free(steps);
	return rc;
}

/* 3. Default, NOT NULL, comment. */
static int
restore_attributes(Run *run, const Op *op, const DropColumnObjects *n, json_t *d)
{
	const Plan *p = run->plan;
	const char *dflt = json_string_value(json_object_get(d, "default"));
	const char *comment = json_string_value(json_object_get(d, "comment"));
	int rc = EXIT_DONE;

	if (dflt)
	{
		char *sql = str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", p->q_table, n->qcol, dflt);

		rc = ops_ddl(run, sql, (const char *[]){sql}, 1);
		free(sql);
	}
	if (rc == EXIT_DONE && json_is_true(json_object_get(d, "not_null")))
		rc = ops_enforce_not_null(run, op->column);
	if (rc == EXIT_DONE && comment)
	{
		char *lit = sql_literal(comment);
		char *sql = str_printf("COMMENT ON COLUMN %s.%s IS %s", p->q_table, n->qcol, lit);

		db_exec(run->conn, sql);
		free(lit);
		free(sql);
	}
	return rc;
}

/* 4. Constraints and indexes that went with the column. */
static int
restore_constraints_and_indexes(Run *run, json_t *d)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(d, "constraints"), i,
					   c) if (restore_constraint(run, c) != EXIT_DONE) return EXIT_FAILED;
	json_array_foreach(json_object_get(d, "indexes"), i, c)
	{
		char *build = concurrent_indexdef(json_string_value(c));
		char *ine = strstr(build, "CONCURRENTLY ");
		char *sql = ine ? str_printf("%.*sCONCURRENTLY IF NOT EXISTS %s", (int) (ine - build), build, ine + 13)
						: xstrdup(build);
		bool ok = db_ddl_nontx_try(run->conn, sql, sql, false);

		free(build);
		free(sql);
		if (!ok)
			return EXIT_FAILED;
	}
	return EXIT_DONE;
}

/* 5. The backup is no longer needed. */
static int
drop_backup(Run *run, const Op *op, const DropColumnObjects *n)
{
	char *stmts[2] = {str_printf("DROP TABLE IF EXISTS %s", n->backup),
					  str_printf("DROP FUNCTION IF EXISTS %s()", n->keep_fn)};
	int rc = ops_ddl(run, stmts[0], (const char *const *) stmts, 2);

	if (rc == EXIT_DONE)
	{
		registry_remove(run->conn, run->plan, "dropped_column", op->column);
		registry_remove(run->conn, run->plan, "drop_backup", op->column);
	}
	free(stmts[0]);
	free(stmts[1]);
	return rc;
}

int
drop_column_rollback(Run *run, const Op *op, const Options *opts)
{
	DropColumnObjects n;
	char *def;
	json_t *d = NULL;
	int rc;

	drop_objects_init(&n, run, op);
	def = registry_detail(run->conn, run->plan, "dropped_column", op->column);
	if (def == NULL)
		rc = remove_unused_backup(run, op, &n);
	else if ((d = json_loads(def, 0, NULL)) == NULL)
	{
		log_error("definition of dropped column %s in migration_backup.phasemig_objects is unreadable", n.qcol);
		rc = EXIT_FAILED;
	}
	else if ((rc = add_back(run, &n, d)) == EXIT_DONE && (rc = restore_values(run, op, &n, opts)) == EXIT_DONE
			 && (rc = restore_attributes(run, op, &n, d)) == EXIT_DONE
			 && (rc = restore_constraints_and_indexes(run, d)) == EXIT_DONE)
		rc = drop_backup(run, op, &n);
	json_decref(d);
	free(def);
	drop_objects_free(&n);
	return rc;
}
