/*
 * plan_check.c: see plan_check.h.  Each operation lists the columns, types
 * and names it needs; they are looked up in the catalog, or among the columns
 * earlier add_column operations add.
 */
#include "engine/plan_check.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/catalog.h"
#include "core/db.h"
#include "core/log.h"
#include "ops/backfill/mapping.h"
#include "core/strbuf.h"

/* The add_column before position BEFORE that adds COLUMN, or NULL. */
static const Op *
added_earlier(const Plan *plan, int before, const char *column)
{
	const Op *found = NULL;

	for (int i = 0; i < before; i++)
		if (plan->ops[i].kind == OP_ADD_COLUMN && strcmp(plan->ops[i].column, column) == 0)
			found = &plan->ops[i];
	return found;
}

/* One column an operation needs; returns 1 when it is missing. */
static int
need_column(const Plan *plan, const Op *op, const char *column, const char *role)
{
	if (column == NULL || catalog_column_exists(plan, column) || added_earlier(plan, op->index, column))
		return 0;
	log_error("step %d (%s): %s \"%s\" is not a column of %s, and no add_column before it adds it", op->index + 1,
			  op->label, role, column, plan->q_table);
	return 1;
}

/* TYPE as the server names it (regtype's output, typmod dropped); NULL when it is no type. */
static char *
canonical_type(PGconn *conn, const char *type)
{
	const char *params[1] = {type};
	PGresult *res = db_query_try(conn, "SELECT pg_catalog.to_regtype($1)::pg_catalog.text", 1, params);
	char *name = NULL;

	if (db_ok(res) && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		name = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return name;
}

/* An add_column whose column exists with another type (plan_bind checked the type is one); returns 1 then. */
static int
clashing_type(Run *run, const Op *op)
{
	char *type = catalog_column_type(run->plan, op->column);
	int problem = type != NULL && !catalog_same_type(run->plan, type, op->type);

	if (problem)
		log_error("step %d (%s): column \"%s\" of %s already exists with type %s, the plan says %s", op->index + 1,
				  op->label, op->column, run->plan->q_table, type, op->type);
	free(type);
	return problem;
}

/*
 * A backfill's "set" column whose type the field's values cannot be cast to
 * (the batches write r.field::type): a boolean into a date, say.  Returns 1
 * then.  A column that is missing is need_column's to report.
 */
static int
uncastable_field(Run *run, const Op *op, const FieldMap *set)
{
	const Plan *plan = run->plan;
	const Op *adder = added_earlier(plan, op->index, set->column);
	char *type = adder ? xstrdup(adder->type) : catalog_column_type(plan, set->column);
	char *target = type ? canonical_type(run->conn, type) : NULL;
	const char *staged = mapping_field_type(set->field);
	int problem = 0;

	if (target && staged)
	{
		char *sql = str_printf("SELECT CAST(NULL::%s AS %s)", staged, target);
		PGresult *res = db_query_try(run->conn, sql, 0, NULL);

		if (!db_ok(res))
		{
			log_error("step %d (%s): column \"%s\" is of type %s: the field \"%s\" (%s) cannot be written to it",
					  op->index + 1, op->label, set->column, type, set->field, staged);
			problem = 1;
		}
		PQclear(res);
		free(sql);
	}
	free(type);
	free(target);
	return problem;
}

/*
 * An index (or unique constraint) NAME the operation would create, where a
 * relation of that name already exists in the plan's schema that is not this
 * very index: phasemig would otherwise take it for its own finished work.
 * Returns 1 then.
 */
static int
name_taken(Run *run, const Op *op, const char *name, char *const *columns, int n_columns, bool unique)
{
	const Plan *plan = run->plan;
	json_t *cols = json_array();
	char *jcols, *why;

	for (int i = 0; i < n_columns; i++)
		json_array_append_new(cols, json_string(columns[i]));
	jcols = json_dumps(cols, JSON_COMPACT);
	{
		const char *params[5] = {plan->schema, name, plan->q_table, unique ? "t" : "f", jcols};

		why = db_value(run->conn,
					   "SELECT CASE WHEN c.relkind NOT IN ('i', 'I') "
					   "  THEN pg_catalog.format('%s is a relation of kind %s, not an index', c.oid::pg_catalog.regclass, "
					   "       c.relkind) "
					   "WHEN i.indrelid <> $3::pg_catalog.regclass "
					   "  THEN pg_catalog.format('index %s is on table %s', c.oid::pg_catalog.regclass, "
					   "       i.indrelid::pg_catalog.regclass) "
					   "WHEN i.indisunique <> $4::boolean OR i.indpred IS NOT NULL OR i.indexprs IS NOT NULL "
					   "  OR ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) "
					   "     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) "
					   "     IS DISTINCT FROM ARRAY(SELECT pg_catalog.json_array_elements_text($5::json)) "
					   "     OR pg_catalog.cardinality(i.indkey::int2[]) <> pg_catalog.json_array_length($5::json) "
					   "  THEN pg_catalog.format('index %s exists with another definition: %s', "
					   "       c.oid::pg_catalog.regclass, pg_catalog.pg_get_indexdef(c.oid)) END "
					   "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					   "LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid "
					   "WHERE n.nspname = $1 AND c.relname = $2",
					   5, params);
	}
	if (why)
		log_error("step %d (%s): the name \"%s\" is taken: %s", op->index + 1, op->label, name, why);
	json_decref(cols);
	free(jcols);
	free(why);
	return why != NULL;
}

int
plan_check_catalog(Run *run)
{
	const Plan *plan = run->plan;
	int problems = 0;

	for (int i = 0; i < plan->n_ops; i++)
	{
		const Op *op = &plan->ops[i];

		switch (op->kind)
		{
			case OP_ADD_COLUMN:
				problems += clashing_type(run, op);
				break;
			case OP_CREATE_INDEX:
				for (int c = 0; c < op->n_columns; c++)
					problems += need_column(plan, op, op->columns[c], "indexed column");
				problems += name_taken(run, op, op->name, op->columns, op->n_columns, op->unique);
				break;
			case OP_ADD_UNIQUE:
				{
					char *column = op->column;

					problems += need_column(plan, op, op->column, "column");
					problems += name_taken(run, op, op->name, &column, 1, true);
				}
				break;
			case OP_BACKFILL_FROM_MAPPING:
				problems += need_column(plan, op, op->match_column, "match_column");
				problems += need_column(plan, op, op->email_column, "email_column");
				for (int s = 0; s < op->n_set; s++)
				{
					problems += need_column(plan, op, op->set[s].column, "filled column");
					problems += uncastable_field(run, op, &op->set[s]);
				}
				break;
			case OP_CONVERT_TO_UUID:
				problems += need_column(plan, op, op->column, "column");
				/* already uuid, and not by this plan's own swap */
				if (plan->key_type && strcmp(plan->key_type, "uuid") == 0 && strcmp(op->column, plan->key) == 0
					&& !(mlog_state_exists(run->conn) && mlog_is_registered(run->conn, plan, "uuid_pk", op->column)))
				{
					log_error("step %d (%s): %s.%s is already of type uuid: nothing to convert", op->index + 1,
							  op->label, plan->q_table, plan->q_key);
					problems++;
				}
				break;
			default:
				problems += need_column(plan, op, op->column, "column");
				break;
		}
	}
	if (problems > 0)
		log_error("the plan does not match table %s: %d problem%s; nothing was created or changed", plan->q_table,
				  problems, problems == 1 ? "" : "s");
	return problems > 0 ? EXIT_BAD_INPUT : EXIT_DONE;
}

int
plan_check_rights(Run *run)
{
	const Plan *plan = run->plan;
	bool uuid = false;
	char *tables, *missing;

	/* 1. every table the plan alters, the uuid job's referencing tables too */
	for (int i = 0; i < plan->n_ops; i++)
		uuid = uuid || plan->ops[i].kind == OP_CONVERT_TO_UUID;
	tables = catalog_tables_not_owned(plan, uuid);
	if (tables != NULL)
	{
		log_error("role \"%s\" may not alter %s; nothing was created", PQuser(run->conn), tables);
		log_hint("run phasemig as the owner of the tables to migrate (or a member of that role)");
		free(tables);
		return EXIT_BAD_INPUT;
	}
	/* 2. the state phasemig creates on its first run */
	missing = db_value(run->conn,
					   "SELECT pg_catalog.concat_ws(' and ', "
					   "CASE WHEN pg_catalog.to_regclass('public.migration_log') IS NULL "
					   " AND NOT pg_catalog.has_schema_privilege('public', 'CREATE') "
					   " THEN 'CREATE on schema public (for public.migration_log)' END, "
					   "CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'migration_backup') "
					   " AND NOT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') "
					   " THEN 'CREATE on database ' || pg_catalog.quote_ident(pg_catalog.current_database()) "
					   "      || ' (for schema migration_backup)' END)",
					   0, NULL);
	if (missing != NULL && missing[0] != '\0')
	{
		log_error("role \"%s\" lacks %s; nothing was created", PQuser(run->conn), missing);
		log_hint("grant it, or run phasemig as a role that has it");
		free(missing);
		return EXIT_BAD_INPUT;
	}
	free(missing);
	return EXIT_DONE;
}
