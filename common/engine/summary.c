/*
 * summary.c: a plan and a run as JSON, for scripts/rehearse and other tools
 * that drive the phases: "phaseN plan --plan FILE --json" and
 * "phaseN status --run RUN_ID --json" print them.
 */
#include "engine/summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "engine/operation.h"

/* Whether an operation of the plan needs a mapping (phase2 --mapping), or converts the key to uuid. */
static void
plan_traits(const Plan *plan, bool *needs_mapping, bool *converts_key)
{
	*needs_mapping = *converts_key = false;
	for (int i = 0; i < plan->n_ops; i++)
	{
		*needs_mapping |= plan->ops[i].kind->needs_mapping;
		*converts_key |= plan->ops[i].kind->alters_referencing_tables;
	}
}

/* One operation: its op, label and column, then what its type adds (OpType.describe), on PLAN_OBJ too. */
static json_t *
op_object(const Op *op, json_t *plan_obj)
{
	json_t *obj = json_pack("{s:s, s:s}", "op", op->kind->name, "label", op->label);

	json_object_set_new(obj, "column", op->column ? json_string(op->column) : json_null());
	if (op->kind->describe)
		op->kind->describe(op, obj, plan_obj);
	return obj;
}

json_t *
summary_plan(const Plan *plan)
{
	json_t *obj = json_object();
	json_t *ops = json_array();
	bool needs_mapping, converts_key;

	json_object_set_new(obj, "plan", json_string(plan->name));
	json_object_set_new(obj, "file", json_string(plan->path));
	json_object_set_new(obj, "description", plan->description ? json_string(plan->description) : json_null());
	json_object_set_new(obj, "schema", json_string(plan->schema));
	json_object_set_new(obj, "table", json_string(plan->table));
	json_object_set_new(obj, "key", json_string(plan->key));
	/* an operation that sets a uid column names it (OpType.describe, below) */
	json_object_set_new(obj, "uid_column", json_null());
	/* phase2 apply needs --mapping; phase3 has a finalize step */
	plan_traits(plan, &needs_mapping, &converts_key);
	json_object_set_new(obj, "needs_mapping", json_boolean(needs_mapping));
	json_object_set_new(obj, "converts_to_uuid", json_boolean(converts_key));
	json_object_set_new(obj, "settings",
						json_pack("{s:i, s:i, s:i}", "lock_timeout_ms", plan->lock_timeout_ms, "batch_size",
								  plan->batch_size, "ddl_attempts", plan->ddl_attempts));
	for (int i = 0; i < plan->n_ops; i++)
		json_array_append_new(ops, op_object(&plan->ops[i], obj));
	json_object_set_new(obj, "operations", ops);
	json_object_set_new(obj, "trusted_triggers", json_array());
	for (int i = 0; i < plan->n_trusted_triggers; i++)
		json_array_append_new(json_object_get(obj, "trusted_triggers"),
							  json_pack("{s:s, s:s, s:s}", "schema", plan->trusted_triggers[i].schema, "table",
										plan->trusted_triggers[i].table, "trigger", plan->trusted_triggers[i].trigger));
	return obj;
}

static void
print_plan_text(const json_t *obj)
{
	size_t i;
	json_t *op;

	printf("plan %s: table %s.%s, key %s\n", json_string_value(json_object_get(obj, "plan")),
		   json_string_value(json_object_get(obj, "schema")), json_string_value(json_object_get(obj, "table")),
		   json_string_value(json_object_get(obj, "key")));
	if (json_is_string(json_object_get(obj, "uid_column")))
		printf("uid column %s (phase2 apply needs --mapping)\n", json_string_value(json_object_get(obj, "uid_column")));
	json_array_foreach(json_object_get(obj, "operations"), i, op)
		printf("  %zu. %s\n", i + 1, json_string_value(json_object_get(op, "label")));
	json_array_foreach(json_object_get(obj, "trusted_triggers"), i, op)
		printf("trusted trigger %s on %s.%s\n", json_string_value(json_object_get(op, "trigger")),
			   json_string_value(json_object_get(op, "schema")), json_string_value(json_object_get(op, "table")));
}

int
summary_print_plan(const char *path, bool as_json)
{
	Plan *plan = plan_load(path);
	json_t *obj;

	if (plan == NULL)
		return EXIT_BAD_INPUT;
	obj = summary_plan(plan);
	if (as_json)
	{
		char *s = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(s);
		free(s);
	}
	else
		print_plan_text(obj);
	json_decref(obj);
	plan_free(plan);
	return EXIT_DONE;
}

/*
 * One row: the run's phase-level row (apply, check, rollback, finalize) and,
 * over its steps, the rows done (the batch loops' own rows when there are
 * any, not also the steps holding them), the longest DDL lock hold with its
 * wait, the longest DDL, the retries, the findings and conflicts, the steps.
 */
static const char run_sql[] =
	"WITH l AS (SELECT *, operation NOT IN ('apply', 'check', 'rollback', 'finalize') AS is_step "
	"  FROM public.migration_log WHERE run_id = $1::uuid AND plan = $2), "
	"p AS (SELECT * FROM l WHERE NOT is_step ORDER BY id LIMIT 1), "
	"s AS (SELECT coalesce(CASE WHEN bool_or(rows_total IS NOT NULL) FILTER (WHERE is_step) "
	"    THEN sum(rows_done) FILTER (WHERE is_step AND rows_total IS NOT NULL) "
	"    ELSE sum(rows_done) FILTER (WHERE is_step) END, 0) AS rows_done, "
	"  max((metadata->>'ddl_longest_attempt_ms')::numeric) AS lock_ms, "
	"  max((metadata->>'ddl_longest_ms')::numeric) AS ddl_ms, "
	"  coalesce(sum((metadata->>'ddl_retries')::int), 0) AS retries, "
	"  coalesce((SELECT jsonb_agg(f) FROM l, jsonb_array_elements(coalesce(l.metadata->'findings', '[]') "
	"    || coalesce(l.metadata->'conflicts', '[]')) f), '[]') AS findings, "
	"  coalesce(jsonb_agg(jsonb_build_object('operation', operation, 'status', status, "
	"    'seconds', round(extract(epoch FROM finished_at - started_at)::numeric, 3), "
	"    'rows_done', rows_done, 'rows_total', rows_total, 'metadata', metadata) ORDER BY id) "
	"    FILTER (WHERE is_step), '[]') AS steps "
	"  FROM l) "
	"SELECT jsonb_build_object('run_id', $1, 'plan', $2, 'phase', (SELECT phase FROM p), "
	"  'subcommand', (SELECT operation FROM p), 'status', (SELECT status FROM p), "
	"  'started_at', (SELECT " DB_ISO_UTC(
		"started_at") " FROM p), "
					  "  'finished_at', (SELECT " DB_ISO_UTC(
						  "finished_at") " FROM p), "
										 "  'message', (SELECT message FROM p), 'rows', rows_done, "
										 "  'ddl_longest_attempt_ms', round(lock_ms, 1), 'ddl_longest_ms', round(ddl_ms, 1), 'ddl_retries', retries, "
										 "  'findings', findings, 'steps', steps)::text FROM s";

json_t *
summary_run(Run *run, const char *run_id)
{
	const char *params[2] = {run_id, run->plan->name};
	json_t *obj;
	char *text;

	if (!mlog_state_exists(run->conn))
		return json_pack("{s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:i, s:n, s:n, s:i, s:[], s:[]}", "run_id", run_id,
						 "plan", run->plan->name, "phase", "subcommand", "status", "started_at", "finished_at",
						 "message", "rows", 0, "ddl_longest_attempt_ms", "ddl_longest_ms", "ddl_retries", 0, "findings",
						 "steps");
	text = db_value(run->conn, run_sql, 2, params);
	if (text == NULL)
		return NULL;
	obj = json_loads(text, JSON_DECODE_ANY, NULL);
	free(text);
	if (obj)
	{
		/* jsonb sorts its keys: put them back in the order above */
		static const char *const keys[] = {
			"run_id",         "plan",        "phase",    "subcommand", "status",
			"started_at",     "finished_at", "message",  "rows",       "ddl_longest_attempt_ms",
			"ddl_longest_ms", "ddl_retries", "findings", "steps",      NULL};
		json_t *ordered = json_object();

		for (int i = 0; keys[i]; i++)
			json_object_set(ordered, keys[i], json_object_get(obj, keys[i]));
		json_decref(obj);
		obj = ordered;
	}
	return obj;
}
