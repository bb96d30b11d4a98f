/*
 * discover.c: phase1's reading of the catalog for convert_to_uuid.  The key's
 * primary key, every single-column foreign key pointing at it and every index
 * holding one of those columns are found in pg_constraint and pg_index and
 * recorded in the object registry (job.c loads them from there); what the job
 * cannot convert is refused before anything is created.
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"

/* The key and every single-column foreign key pointing at it, with each table's primary key. */
static const char *const targets_sql =
	"WITH k AS (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attname = $2), "
	"t AS (SELECT 0 AS ord, $1::regclass AS rel, k.attnum, NULL::name AS conname, NULL::text AS def, "
	"  NULL::bool AS validated FROM k "
	"  UNION ALL SELECT row_number() OVER (ORDER BY c.conrelid::regclass::text, c.conname), c.conrelid, "
	"  c.conkey[1], c.conname, "
	"  CASE WHEN c.convalidated THEN pg_catalog.pg_get_constraintdef(c.oid) "
	"  ELSE regexp_replace(pg_catalog.pg_get_constraintdef(c.oid), ' NOT VALID$', '') END, c.convalidated "
	"  FROM pg_catalog.pg_constraint c, k WHERE c.contype = 'f' AND c.confrelid = $1::regclass "
	"  AND c.confkey = ARRAY[k.attnum]::int2[] AND cardinality(c.conkey) = 1 AND c.conparentid = 0) "
	"SELECT t.ord, t.rel::text AS rel, a.attname, (SELECT quote_ident(pa.attname) FROM pg_catalog.pg_index i "
	"  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.indrelid AND pa.attnum = i.indkey[0] "
	"  WHERE i.indrelid = t.rel AND i.indisprimary AND i.indnkeyatts = 1) AS key, t.conname, t.def, a.attnotnull, "
	"  pg_catalog.format_type(a.atttypid, NULL) AS type, "
	"  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.rel AND i.indisprimary "
	"          AND t.attnum = ANY (i.indkey) AND t.ord > 0 AND t.rel <> $1::regclass) AS in_primary_key, "
	"  (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.rel) AS relkind, "
	"  t.validated "
	"FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.rel AND a.attnum = t.attnum ORDER BY t.ord";

/*
 * The plan's also_convert columns ($3: a JSON array of {schema, table,
 * column, constraint, def}), numbered after the foreign keys, as
 * targets_sql returns its rows: children without a constraint, or with the
 * one the swap adds (added).
 */
static const char *const also_convert_sql =
	"WITH k AS (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attname = $2), "
	"fk AS (SELECT count(*) AS n FROM pg_catalog.pg_constraint c, k WHERE c.contype = 'f' "
	"  AND c.confrelid = $1::regclass AND c.confkey = ARRAY[k.attnum]::int2[] AND cardinality(c.conkey) = 1 "
	"  AND c.conparentid = 0), "
	"t AS (SELECT fk.n + x.ord AS ord, "
	"  pg_catalog.to_regclass(quote_ident(x.e->>'schema') || '.' || quote_ident(x.e->>'table')) AS rel, "
	"  x.e->>'column' AS col, x.e->>'constraint' AS conname, x.e->>'def' AS def "
	"  FROM fk, jsonb_array_elements($3::jsonb) WITH ORDINALITY x(e, ord)) "
	"SELECT t.ord, t.rel::text AS rel, a.attname, (SELECT quote_ident(pa.attname) FROM pg_catalog.pg_index i "
	"  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.indrelid AND pa.attnum = i.indkey[0] "
	"  WHERE i.indrelid = t.rel AND i.indisprimary AND i.indnkeyatts = 1) AS key, t.conname, t.def, a.attnotnull, "
	"  pg_catalog.format_type(a.atttypid, NULL) AS type, "
	"  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.rel AND i.indisprimary "
	"          AND a.attnum = ANY (i.indkey)) AS in_primary_key, "
	"  (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.rel) AS relkind, "
	"  CASE WHEN t.conname IS NOT NULL THEN true END AS validated, t.conname IS NOT NULL AS added "
	"FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.rel AND a.attname = t.col AND NOT a.attisdropped "
	"ORDER BY t.ord";

/*
 * Every other index that includes a converted column, with the column lists
 * of its mirror (on the shadows) and of its legacy copy; an index holding two
 * converted columns of one table (a self-referencing key, two foreign keys)
 * is mirrored once, on both shadows.
 */
static const char *const indexes_sql =
	"WITH tg AS (SELECT (detail->>'table')::regclass AS rel, detail->>'column' AS col "
	"  FROM migration_backup.phasemig_objects WHERE plan = $1 AND kind = 'uuid_target'), "
	"ix AS (SELECT DISTINCT i.indexrelid FROM tg JOIN pg_catalog.pg_attribute ca ON ca.attrelid = tg.rel "
	"  AND ca.attname = tg.col JOIN pg_catalog.pg_index i ON i.indrelid = ca.attrelid "
	"  AND ca.attnum = ANY (i.indkey) AND NOT i.indisprimary) "
	"SELECT i.indrelid::regclass::text AS rel, ic.relname, i.indisunique, con.conname, "
	" (SELECT string_agg(CASE WHEN EXISTS (SELECT 1 FROM tg WHERE tg.rel = i.indrelid AND tg.col = a.attname) "
	"   THEN quote_ident(a.attname || '_uuid') ELSE quote_ident(a.attname) END, ', ' ORDER BY k.ord) "
	"   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) "
	"   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) AS columns, "
	" (SELECT string_agg(CASE WHEN EXISTS (SELECT 1 FROM tg WHERE tg.rel = i.indrelid AND tg.col = a.attname) "
	"   THEN quote_ident(a.attname || '_legacy') ELSE quote_ident(a.attname) END, ', ' ORDER BY k.ord) "
	"   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) "
	"   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) AS legacy_columns, "
	" i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR i.indnkeyatts <> i.indnatts AS unsupported, "
	" (SELECT string_agg(DISTINCT o.plan, ', ') FROM migration_backup.phasemig_objects o "
	"   JOIN pg_catalog.pg_attribute oa ON oa.attrelid = i.indrelid AND oa.attnum = ANY (i.indkey) "
	"   WHERE o.kind = 'uuid_target' AND o.plan <> $1 AND o.detail->>'table' = i.indrelid::regclass::text "
	"   AND oa.attname IN (o.detail->>'column', (o.detail->>'column') || '_uuid', "
	"   (o.detail->>'column') || '_legacy')) AS other_plan "
	"FROM ix JOIN pg_catalog.pg_index i ON i.indexrelid = ix.indexrelid "
	"JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
	"LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
	" AND con.contype = 'u' "
	"ORDER BY 1, 2";

/* The plan's name for the mirror ("uuid") or the legacy copy ("legacy") of INDEX (caller frees). */
static char *
index_name(const Plan *p, const char *side, const char *index)
{
	char *what = str_printf("%s_%s", side, index);
	char *name = ops_object_name(p, what);

	free(what);
	return name;
}

/* The primary key on exactly the plan's key column, recorded with its mirror's and legacy copy's names. */
static int
record_primary_key(Run *run, const Op *op)
{
	const Plan *p = run->plan;
	const char *params[2] = {p->q_table, op->column};
	char *pk, *mirror, *legacy;

	if (strcmp(op->column, p->key) != 0)
	{
		log_error("convert_to_uuid: column \"%s\" must be the plan's key \"%s\"", op->column, p->key);
		return EXIT_BAD_INPUT;
	}
	pk = db_value(run->conn,
				  "SELECT c.conname FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_attribute a "
				  "ON a.attrelid = c.conrelid AND a.attname = $2 WHERE c.conrelid = $1::regclass AND c.contype = 'p' "
				  "AND c.conkey = ARRAY[a.attnum]::int2[]",
				  2, params);
	if (pk == NULL)
	{
		log_error("convert_to_uuid: column \"%s\" is not the primary key of %s", op->column, p->q_table);
		return EXIT_BAD_INPUT;
	}
	mirror = index_name(p, "uuid", pk);
	legacy = index_name(p, "legacy", pk);
	uuid_record(run, 1, "uuid_pk", op->column,
				json_pack("{s:s, s:s, s:s}", "name", pk, "mirror", mirror, "legacy", legacy));
	free(pk), free(mirror), free(legacy);
	return EXIT_DONE;
}

/* Log why row R of targets_sql cannot be converted and return false, or return true. */
static bool
target_supported(const PGresult *res, int r)
{
	const char *rel = db_field(res, r, "rel");
	const char *column = db_field(res, r, "attname");
	const char *type = db_field(res, r, "type");

	if (strcmp(type, "character varying") != 0 && strcmp(type, "text") != 0 && strcmp(type, "character") != 0)
		log_error("convert_to_uuid: %s.%s is %s, not text", rel, column, type);
	else if (db_field(res, r, "relkind")[0] == 'p')
		log_error("convert_to_uuid: %s is a partitioned table; not supported (indexes cannot be built "
				  "CONCURRENTLY on it)",
				  rel);
	else if (db_field(res, r, "key") == NULL)
		log_error("convert_to_uuid: table %s has no single-column primary key to walk in batches", rel);
	else if (db_field_true(res, r, "in_primary_key"))
		log_error("convert_to_uuid: %s.%s is part of its table's primary key; not supported", rel, column);
	else
		return true;
	return false;
}

/* Row R of targets_sql into the registry. */
static void
record_target(Run *run, const PGresult *res, int r)
{
	const char *rel = db_field(res, r, "rel");
	const char *column = db_field(res, r, "attname");
	const char *constraint = db_field(res, r, "conname");
	json_t *d = json_pack("{s:i, s:s, s:s, s:s, s:b}", "index", atoi(db_field(res, r, "ord")), "table", rel, "column",
						  column, "key", db_field(res, r, "key"), "not_null", db_field_true(res, r, "attnotnull"));
	char *name = str_printf("%s.%s", rel, column);

	if (constraint)
	{
		json_object_set_new(d, "constraint", json_string(constraint));
		json_object_set_new(d, "def", json_string(db_field(res, r, "def")));
		json_object_set_new(d, "validated", json_boolean(db_field_true(res, r, "validated")));
	}
	if (PQfnumber(res, "added") >= 0 && db_field_true(res, r, "added"))
		json_object_set_new(d, "added", json_true());
	uuid_record(run, 1, "uuid_target", name, d);
	free(name);
}

/*
 * The plan's also_convert columns as the JSON also_convert_sql takes: each
 * with the foreign key the swap adds when the plan asks for one, named after
 * the plan, with the plan's actions (malloc'd).
 */
static char *
also_convert_json(const Run *run, const Op *op)
{
	const Plan *p = run->plan;
	const UuidSpec *spec = uuid_spec(op);
	json_t *list = json_array();
	char *text;

	for (int i = 0; i < spec->n_also_convert; i++)
	{
		const ColumnRef *c = &spec->also_convert[i];
		json_t *e = json_pack("{s:s, s:s, s:s}", "schema", c->schema ? c->schema : p->schema, "table", c->table,
							  "column", c->column);

		if (c->add_foreign_key)
		{
			char *what = str_printf("fk_%s_%s", c->table, c->column);
			char *name = ops_object_name(p, what);
			char *q_col = sql_ident(c->column);
			char *def = str_printf("FOREIGN KEY (%s) REFERENCES %s(%s) ON UPDATE %s ON DELETE %s", q_col, p->q_table,
								   p->q_key, c->on_update, c->on_delete);

			json_object_set_new(e, "constraint", json_string(name));
			json_object_set_new(e, "def", json_string(def));
			free(what), free(name), free(q_col), free(def);
		}
		json_array_append_new(list, e);
	}
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return text;
}

/*
 * A column another plan converts, recorded by its phase1: two plans may share
 * a table (each its own columns, triggers, indexes), never a column.
 * EXIT_BAD_INPUT naming the other plan, or EXIT_DONE.
 */
static int
refuse_shared_columns(Run *run)
{
	const char *params[1] = {run->plan->name};
	PGresult *res =
		db_query(run->conn,
				 "SELECT o.plan, o.name FROM migration_backup.phasemig_objects m "
				 "JOIN migration_backup.phasemig_objects o ON o.kind = 'uuid_target' AND o.plan <> m.plan "
				 " AND o.detail->>'table' = m.detail->>'table' AND o.detail->>'column' = m.detail->>'column' "
				 "WHERE m.plan = $1 AND m.kind = 'uuid_target' ORDER BY 1, 2",
				 1, params);
	int rc = EXIT_DONE;

	for (int r = 0; r < PQntuples(res); r++)
	{
		log_error("convert_to_uuid: column %s is already converted by plan \"%s\"", db_field(res, r, "name"),
				  db_field(res, r, "plan"));
		rc = EXIT_BAD_INPUT;
	}
	if (rc != EXIT_DONE)
		log_hint("finish or roll back plan \"%s\" first", db_field(res, 0, "plan"));
	PQclear(res);
	return rc;
}

static int
refuse_multi_column_foreign_keys(Run *run)
{
	const char *params[1] = {run->plan->name};
	long long multi =
		db_count(run->conn,
				 "SELECT count(*) FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.confrelid = "
				 "(SELECT (detail->>'table')::regclass FROM migration_backup.phasemig_objects WHERE plan = $1 "
				 " AND kind = 'uuid_target' AND detail->>'index' = '0') AND cardinality(c.conkey) > 1",
				 1, params);

	if (multi == 0)
		return EXIT_DONE;
	log_error("convert_to_uuid: %lld multi-column foreign keys reference %s; not supported", multi, run->plan->q_table);
	return EXIT_BAD_INPUT;
}

/* Log why row R of indexes_sql cannot be mirrored and return false, or return true. */
static bool
index_supported(const PGresult *res, int r)
{
	const char *rel = db_field(res, r, "rel");
	const char *name = db_field(res, r, "relname");
	const char *other_plan = db_field(res, r, "other_plan");

	if (db_field_true(res, r, "unsupported"))
	{
		log_error("convert_to_uuid: index \"%s\" on %s uses an expression, a predicate or INCLUDE columns; "
				  "not supported",
				  name, rel);
		return false;
	}
	if (other_plan)
	{
		/* each plan would mirror it on its own shadow and rename it at its own swap */
		log_error("convert_to_uuid: index \"%s\" on %s also holds a column converted by plan \"%s\"; "
				  "not supported",
				  name, rel, other_plan);
		log_hint("finish or roll back plan \"%s\" first, or drop the index", other_plan);
		return false;
	}
	return true;
}

/* Row R of indexes_sql into the registry, with its mirror's and legacy copy's names. */
static void
record_index(Run *run, const PGresult *res, int r)
{
	const char *rel = db_field(res, r, "rel");
	const char *index = db_field(res, r, "relname");
	const char *constraint = db_field(res, r, "conname");
	char *mirror = index_name(run->plan, "uuid", index);
	char *legacy = index_name(run->plan, "legacy", index);
	char *name = str_printf("%s.%s", rel, index);
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "table", rel, "name", index, "mirror", mirror,
						  "legacy", legacy, "columns", db_field(res, r, "columns"), "legacy_columns",
						  db_field(res, r, "legacy_columns"), "unique", db_field_true(res, r, "indisunique"));

	if (constraint)
		json_object_set_new(d, "constraint", json_string(constraint));
	uuid_record(run, 1, "uuid_index", name, d);
	free(mirror), free(legacy), free(name);
}

/*
 * Each row of SQL (with PARAMS, the plan's table and key column, or the
 * plan's name) recorded by RECORD, until the first one SUPPORTED refuses.
 */
static int
record_rows(Run *run, const char *sql, int nparams, const char *const *params,
			bool (*supported)(const PGresult *res, int r), void (*record)(Run *run, const PGresult *res, int r))
{
	PGresult *res = db_query(run->conn, sql, nparams, params);
	int rc = EXIT_DONE;

	for (int r = 0; r < PQntuples(res) && rc == EXIT_DONE; r++)
	{
		if (supported(res, r))
			record(run, res, r);
		else
			rc = EXIT_BAD_INPUT;
	}
	PQclear(res);
	return rc;
}

/*
 * The plan's also_convert columns recorded as children without a foreign
 * key (or with the one the swap adds): the same checks and records as the
 * foreign keys', so every step treats them as it treats those.
 */
static int
record_also_convert(Run *run, const Op *op)
{
	char *list;
	int rc;

	if (uuid_spec(op)->n_also_convert == 0)
		return EXIT_DONE;
	list = also_convert_json(run, op);
	rc = record_rows(run, also_convert_sql, 3, (const char *const[]){run->plan->q_table, op->column, list},
					 target_supported, record_target);
	free(list);
	return rc;
}

/*
 * Unless an earlier phase1 has added the shadows already: 1. the primary
 * key, 2. the key and its foreign key columns, then the plan's also_convert
 * columns, 3. refusals that need them all, 4. the indexes to mirror.  A refusal forgets what was recorded:
 * nothing was created, and a rollback must not look for it.
 */
int
uuid_discover(Run *run, const Op *op)
{
	const char *key[2] = {run->plan->q_table, op->column};
	const char *plan[1] = {run->plan->name};
	int rc;

	if (registry_has(run->conn, run->plan, "uuid_shadows", op->column))
		return EXIT_DONE;
	rc = record_primary_key(run, op);
	if (rc == EXIT_DONE)
		rc = record_rows(run, targets_sql, 2, key, target_supported, record_target);
	if (rc == EXIT_DONE)
		rc = record_also_convert(run, op);
	if (rc == EXIT_DONE)
		rc = refuse_shared_columns(run);
	if (rc == EXIT_DONE)
		rc = refuse_multi_column_foreign_keys(run);
	if (rc == EXIT_DONE)
		rc = record_rows(run, indexes_sql, 1, plan, index_supported, record_index);
	if (rc != EXIT_DONE)
		registry_remove_kinds(run->conn, run->plan, uuid_job_kinds);
	return rc;
}
