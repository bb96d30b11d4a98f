/*
 * plan_check.c: see plan_check.h.  Each operation checks what it needs
 * (OpType.check_plan) with the helpers here: a column in the catalog or
 * added by an earlier add_column, an index name that is free.
 */
#include "engine/plan_check.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/operation.h"

const Op *
plan_check_added_earlier(const Plan *plan, int before, const char *column)
{
	const Op *found = NULL;

	for (int i = 0; i < before; i++)
		if (plan->ops[i].kind->adds_column && strcmp(plan->ops[i].column, column) == 0)
			found = &plan->ops[i];
	return found;
}

int
plan_check_column(const Plan *plan, const Op *op, const char *column, const char *role)
{
	if (column == NULL || catalog_column_exists(plan, column) || plan_check_added_earlier(plan, op->index, column))
		return 0;
	log_error("step %d (%s): %s \"%s\" is not a column of %s, and no add_column before it adds it", op->index + 1,
			  op->label, role, column, plan->q_table);
	return 1;
}

int
plan_check_name_free(Run *run, const Op *op, const char *name, char *const *columns, int n_columns, bool unique)
{
	const Plan *plan = run->plan;
	json_t *cols = json_array();
	char *jcols, *why;

	for (int i = 0; i < n_columns; i++)
		json_array_append_new(cols, json_string(columns[i]));
	jcols = json_dumps(cols, JSON_COMPACT);
	{
		const char *params[5] = {plan->schema, name, plan->q_table, unique ? "t" : "f", jcols};

		why = db_value(
			run->conn,
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

		if (op->kind->check_plan)
			problems += op->kind->check_plan(run, op);
		else
			problems += plan_check_column(plan, op, op->column, "column");
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
		uuid = uuid || plan->ops[i].kind->alters_referencing_tables;
	tables = catalog_tables_not_owned(plan, uuid);
	if (tables != NULL)
	{
		log_error("role \"%s\" may not alter %s; nothing was created", run->role ? run->role : PQuser(run->conn),
				  tables);
		if (run->role)
			log_hint("phasemig runs as \"%s\", the owner of %s: grant it each of these owners' roles "
					 "(GRANT owner TO \"%s\")",
					 run->role, plan->q_table, run->role);
		else
			log_hint("run phasemig as the owner of the tables to migrate (or a member of that role)");
		free(tables);
		return EXIT_BAD_INPUT;
	}
	/* 2. the state phasemig creates on its first run */
	missing =
		db_value(run->conn,
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
		log_error("role \"%s\" lacks %s; nothing was created", run->role ? run->role : PQuser(run->conn), missing);
		if (run->role)
			log_hint("grant it to \"%s\": phasemig runs as the owner of %s, whoever connects", run->role,
					 plan->q_table);
		else
			log_hint("grant it, or run phasemig as a role that has it");
		free(missing);
		return EXIT_BAD_INPUT;
	}
	free(missing);
	return EXIT_DONE;
}
