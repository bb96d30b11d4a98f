/*
 * catalog.c: catalog lookups for the plan's table, all by regclass and
 * attribute name with parameters, never by guessing from names.
 */
#include "engine/catalog.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/strbuf.h"

char *
catalog_column_type(const Plan *plan, const char *column)
{
	const char *p[2] = {plan->q_table, column};

	return db_value(plan->conn,
					"SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute "
					"WHERE attrelid = $1::regclass AND attname = $2 AND attnum > 0 AND NOT attisdropped",
					2, p);
}

bool
catalog_column_exists(const Plan *plan, const char *column)
{
	char *type = catalog_column_type(plan, column);
	bool exists = type != NULL;

	free(type);
	return exists;
}

bool
catalog_column_not_null(const Plan *plan, const char *column)
{
	return catalog_column_not_null_on(plan->conn, plan->q_table, column);
}

bool
catalog_column_not_null_on(PGconn *conn, const char *qtable, const char *column)
{
	const char *p[2] = {qtable, column};

	return db_exists(conn,
					 "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attname = $2 "
					 "AND attnum > 0 AND NOT attisdropped AND attnotnull",
					 2, p);
}

IndexState
catalog_index_state(const Plan *plan, const char *name)
{
	const char *p[2] = {plan->schema, name};
	char *valid = db_value(plan->conn,
						   "SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i "
						   "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
						   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
						   "WHERE n.nspname = $1 AND c.relname = $2",
						   2, p);
	IndexState st = valid == NULL ? INDEX_MISSING : valid[0] == 't' ? INDEX_VALID : INDEX_INVALID;

	free(valid);
	return st;
}

bool
catalog_constraint_exists(const Plan *plan, const char *name)
{
	return catalog_constraint_exists_on(plan->conn, plan->q_table, name);
}

bool
catalog_constraint_exists_on(PGconn *conn, const char *qtable, const char *name)
{
	const char *p[2] = {qtable, name};

	return db_exists(conn, "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND conname = $2", 2,
					 p);
}

IndexState
catalog_index_state_on(PGconn *conn, const char *qtable, const char *name)
{
	const char *params[2] = {qtable, name};
	char *valid = db_value(conn,
						   "SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i "
						   "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
						   "WHERE i.indrelid = $1::regclass AND c.relname = $2",
						   2, params);
	IndexState st = valid == NULL ? INDEX_MISSING : valid[0] == 't' ? INDEX_VALID : INDEX_INVALID;

	free(valid);
	return st;
}

bool
catalog_trigger_exists(const Plan *plan, const char *name)
{
	const char *p[2] = {plan->q_table, name};

	return db_exists(plan->conn, "SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2", 2,
					 p);
}

char *
catalog_column_dependents(const Plan *plan, const char *column, const char *except_schemas)
{
	return catalog_dependents(plan->conn, plan->q_table, column, true, except_schemas);
}

char *
catalog_dependents(PGconn *conn, const char *qtable, const char *column, bool include_keys, const char *except_schemas)
{
	const char *p[4] = {qtable, column, include_keys ? "t" : "f", except_schemas ? except_schemas : "[]"};

	return db_value(
		conn,
		"WITH col AS (SELECT attrelid, attnum FROM pg_catalog.pg_attribute "
		"             WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped), "
		"deps AS ("
		" SELECT CASE WHEN r.rulename = '_RETURN' THEN 'view ' ELSE 'rule ' END "
		"        || r.ev_class::regclass::text "
		"        || CASE WHEN r.rulename = '_RETURN' THEN '' ELSE ' ' || quote_ident(r.rulename) END AS what "
		" FROM pg_catalog.pg_depend d JOIN col ON d.refobjid = col.attrelid AND d.refobjsubid = col.attnum "
		" JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
		" WHERE NOT (r.rulename = '_RETURN' AND (SELECT n.nspname FROM pg_catalog.pg_class v "
		"   JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace WHERE v.oid = r.ev_class) "
		"   IN (SELECT pg_catalog.jsonb_array_elements_text($4::jsonb))) "
		" UNION "
		" SELECT 'foreign key ' || quote_ident(c.conname) || ' of table ' || c.conrelid::regclass::text "
		" FROM pg_catalog.pg_constraint c JOIN col ON c.confrelid = col.attrelid "
		" WHERE c.contype = 'f' AND col.attnum = ANY (c.confkey) AND $3::boolean "
		" UNION "
		" SELECT 'policy ' || quote_ident(pol.polname) || ' on ' || pol.polrelid::regclass::text "
		" FROM pg_catalog.pg_depend d JOIN col ON d.refobjid = col.attrelid AND d.refobjsubid = col.attnum "
		" JOIN pg_catalog.pg_policy pol ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = pol.oid "
		" UNION "
		" SELECT 'primary key ' || quote_ident(c.conname) "
		" FROM pg_catalog.pg_constraint c JOIN col ON c.conrelid = col.attrelid "
		" WHERE c.contype = 'p' AND col.attnum = ANY (c.conkey) AND $3::boolean) "
		"SELECT string_agg(what, ', ' ORDER BY what) FROM deps",
		4, p);
}

char *
catalog_tables_not_owned(const Plan *plan, bool with_children)
{
	char *also = plan_extra_tables(plan);
	const char *params[3] = {plan->q_table, with_children ? "t" : "f", also};
	char *tables = db_value(
		plan->conn,
		"SELECT string_agg(pg_catalog.format('%s (owner %s)', c.oid::pg_catalog.regclass, "
		"pg_catalog.pg_get_userbyid(c.relowner)), ', ' ORDER BY c.oid::pg_catalog.regclass::text) "
		"FROM pg_catalog.pg_class c WHERE (c.oid = $1::pg_catalog.regclass OR ($2::bool AND c.oid IN ("
		"  SELECT f.conrelid FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' "
		"  AND f.confrelid = $1::pg_catalog.regclass UNION ALL "
		"  SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(x->>0) || '.' || pg_catalog.quote_ident(x->>1)) "
		"  FROM pg_catalog.json_array_elements($3::pg_catalog.json) x))) "
		"AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')",
		3, params);

	free(also);
	return tables;
}

bool
catalog_same_type(const Plan *plan, const char *existing, const char *wanted)
{
	const char *params[2] = {existing, wanted};
	char *eq = db_value(plan->conn,
						"SELECT pg_catalog.format_type($1::pg_catalog.regtype, NULL) = "
						"pg_catalog.format_type($2::pg_catalog.regtype, NULL)",
						2, params);
	bool same = eq && eq[0] == 't';

	free(eq);
	return same;
}

char *
catalog_canonical_type(PGconn *conn, const char *type)
{
	const char *params[1] = {type};
	PGresult *res = db_query_answer(conn, "SELECT pg_catalog.to_regtype($1)::pg_catalog.text", 1, params);
	char *name = NULL;

	if (db_ok(res) && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		name = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return name;
}
