/*
 * views.c: the views on convert_to_uuid's columns, for a plan that asks for
 * them to be recreated (recreate_views).  Each is read from the catalog with
 * the statements that recreate it as it is (options, owner, grants, comment),
 * dropped at the start of the swap's transaction and recreated at its end;
 * the swap records them so that its undo recreates them as they were.
 */
#include "engine/registry.h"
#include "ops/uuid/uuid.h"
#include "ops/versions.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/strbuf.h"

/* $1: the converted columns, a JSON array of {table, column}; $2: the plan's versioned schemas, left out. */
static const char *const views_sql =
	"WITH cols(rel, col) AS (SELECT (e->>'table')::regclass, e->>'column' FROM jsonb_array_elements($1::jsonb) e), "
	"v AS (SELECT DISTINCT r.ev_class AS oid FROM cols JOIN pg_catalog.pg_attribute a ON a.attrelid = cols.rel "
	"  AND a.attname = cols.col JOIN pg_catalog.pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum "
	"  JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
	"  WHERE r.rulename = '_RETURN' AND (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	"  ON n.oid = c.relnamespace WHERE c.oid = r.ev_class) NOT IN (SELECT jsonb_array_elements_text($2::jsonb))) "
	"SELECT v.oid::regclass::text AS name, c.relkind, "
	" format('CREATE VIEW %s%s AS %s', v.oid::regclass, coalesce(' WITH (' || array_to_string(c.reloptions, ', ') || ')', ''), "
	"   pg_catalog.pg_get_viewdef(v.oid)) AS create_sql, "
	" format('ALTER VIEW %s OWNER TO %I', v.oid::regclass, pg_catalog.pg_get_userbyid(c.relowner)) AS owner_sql, "
	" (SELECT string_agg(format('GRANT %s ON %s TO %s', g.privilege_type, v.oid::regclass, CASE WHEN g.grantee = 0 "
	"   THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END), '; ') "
	"   FROM aclexplode(c.relacl) g WHERE g.grantee <> c.relowner) AS grants_sql, "
	" (SELECT format('COMMENT ON VIEW %s IS %L', v.oid::regclass, description) FROM pg_catalog.pg_description "
	"   WHERE objoid = v.oid AND classoid = 'pg_catalog.pg_class'::regclass AND objsubid = 0) AS comment_sql, "
	" EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON d.objid = r.oid "
	"   AND d.classid = 'pg_catalog.pg_rewrite'::regclass WHERE d.refobjid = v.oid AND r.ev_class <> v.oid) "
	"   AS has_dependents "
	"FROM v JOIN pg_catalog.pg_class c ON c.oid = v.oid ORDER BY 1";

/* The recreating statements of a view, in the order they run. */
static const char *const view_statements[] = {"create", "owner", "grants", "comment", NULL};

/* The job's columns as views_sql's parameter (malloc'd). */
static char *
columns_json(const UuidJob *job)
{
	json_t *cols = json_array();
	char *text;

	for (int i = 0; i < job->n; i++)
		json_array_append_new(cols, json_pack("{s:s, s:s}", "table", job->t[i].table, "column", job->t[i].column));
	text = json_dumps(cols, JSON_COMPACT);
	json_decref(cols);
	return text;
}

/* Row R names a view the swap cannot recreate: add it, with why, to *blocked. */
static void
add_blocked(char **blocked, const PGresult *res, int r)
{
	char *prev = *blocked;
	bool materialized = db_field(res, r, "relkind")[0] != 'v';

	*blocked = str_printf("%s%s%s (%s)", prev ? prev : "", prev ? ", " : "", db_field(res, r, "name"),
						  materialized ? "materialized view" : "other views depend on it");
	free(prev);
}

json_t *
uuid_dependent_views(const UuidJob *job, char **blocked)
{
	json_t *views = json_array();
	char *cols = columns_json(job);
	char *except = versions_except_schemas(job->run->plan);
	const char *params[2] = {cols, except};
	PGresult *res = db_query(job->run->conn, views_sql, 2, params);

	*blocked = NULL;
	for (int r = 0; r < PQntuples(res); r++)
	{
		if (db_field(res, r, "relkind")[0] != 'v' || db_field_true(res, r, "has_dependents"))
		{
			add_blocked(blocked, res, r);
			continue;
		}
		json_array_append_new(views,
							  json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "name", db_field(res, r, "name"), "create",
										db_field(res, r, "create_sql"), "owner", db_field(res, r, "owner_sql"),
										"grants", db_field(res, r, "grants_sql"), "comment",
										db_field(res, r, "comment_sql")));
	}
	PQclear(res);
	free(cols), free(except);
	return views;
}

void
uuid_add_view_drops(UuidStmts *st, json_t *views)
{
	size_t i;
	json_t *v;

	json_array_foreach(views, i, v)
		uuid_stmts_add(st, str_printf("DROP VIEW %s", json_string_value(json_object_get(v, "name"))));
}

void
uuid_add_view_creates(UuidStmts *st, json_t *views)
{
	size_t i;
	json_t *v;

	json_array_foreach(views, i, v) for (int k = 0; view_statements[k];
										 k++) if (json_is_string(json_object_get(v, view_statements[k])))
		uuid_stmts_add(st, xstrdup(json_string_value(json_object_get(v, view_statements[k]))));
}
