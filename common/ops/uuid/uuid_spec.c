/*
 * uuid_spec.c: what a convert_to_uuid says in a plan (the key column, whether
 * views on it are recreated around the swap, the columns that hold the key
 * without a foreign key: "also_convert" and "not_references") and its check
 * against the catalog before phase1: the column is there and not uuid
 * already, unless this plan's own swap made it so, and each listed column
 * exists; and what it adds to phase3's status.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/plan_check.h"
#include "engine/registry.h"
#include "ops/uuid/uuid.h"

static const char *const fk_actions[] = {"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT", NULL};

/* An "on_delete" or "on_update" of an also_convert entry, upper case; "NO ACTION" when missing (malloc'd). */
static char *
read_action(PlanReader *r, json_t *obj, const char *where, const char *key)
{
	char *action = plan_read_string(r, obj, where, key, false);

	if (action == NULL)
		return xstrdup("NO ACTION");
	for (char *c = action; *c; c++)
		*c = (char) toupper((unsigned char) *c);
	for (int i = 0; fk_actions[i]; i++)
		if (strcmp(action, fk_actions[i]) == 0)
			return action;
	plan_read_fail(r, where, "\"%s\" must be one of NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT", key);
	free(action);
	return xstrdup("NO ACTION");
}

/*
 * The list KEY of OBJ, [{"table": ..., "column": ..., "schema": ...}, ...]
 * (also_convert: with "add_foreign_key", "on_delete", "on_update"), into
 * *N entries (malloc'd); a column listed twice is refused.
 */
static ColumnRef *
read_refs(PlanReader *r, json_t *obj, const char *where, const char *key, int *n)
{
	static const char *const also_keys[] = {"schema",    "table",     "column",  "add_foreign_key",
											"on_delete", "on_update", "comment", NULL};
	static const char *const not_keys[] = {"schema", "table", "column", "comment", NULL};
	bool also = strcmp(key, "also_convert") == 0;
	json_t *list = json_object_get(obj, key);
	ColumnRef *refs;

	*n = 0;
	if (list == NULL)
		return NULL;
	if (!json_is_array(list))
	{
		plan_read_fail(r, where, "\"%s\" must be an array of {\"table\": ..., \"column\": ...}", key);
		return NULL;
	}
	refs = xcalloc(json_array_size(list) + 1, sizeof(ColumnRef));
	for (size_t i = 0; i < json_array_size(list) && r->ok; i++)
	{
		json_t *e = json_array_get(list, i);
		ColumnRef *c = &refs[(*n)++];
		char at[128];

		snprintf(at, sizeof at, "%s.%s[%zu]", where, key, i);
		if (!json_is_object(e))
		{
			plan_read_fail(r, at, "must be an object");
			break;
		}
		plan_read_check_keys(r, e, at, also ? also_keys : not_keys);
		c->schema = plan_read_ident(r, e, at, "schema", false);
		c->table = plan_read_ident(r, e, at, "table", true);
		c->column = plan_read_ident(r, e, at, "column", true);
		if (!also)
			continue;
		c->add_foreign_key = plan_read_bool(r, e, at, "add_foreign_key", false);
		if (!c->add_foreign_key && (json_object_get(e, "on_delete") || json_object_get(e, "on_update")))
			plan_read_fail(r, at, "\"on_delete\" and \"on_update\" need \"add_foreign_key\": true");
		c->on_delete = read_action(r, e, at, "on_delete");
		c->on_update = read_action(r, e, at, "on_update");
	}
	return refs;
}

/* Whether A and B name one column as the plan says it (a missing schema is the plan's). */
static bool
same_ref(const ColumnRef *a, const ColumnRef *b)
{
	bool same_schema =
		(a->schema == NULL && b->schema == NULL) || (a->schema && b->schema && strcmp(a->schema, b->schema) == 0);

	return same_schema && a->table && b->table && a->column && b->column && strcmp(a->table, b->table) == 0
		&& strcmp(a->column, b->column) == 0;
}

/* A column in both lists, or twice in one: refused. */
static void
refuse_listed_twice(PlanReader *r, const Op *op, const char *where)
{
	const UuidSpec *spec = uuid_spec(op);
	const ColumnRef *all[2] = {spec->also_convert, spec->not_references};
	const int n[2] = {spec->n_also_convert, spec->n_not_references};
	static const char *const name[2] = {"also_convert", "not_references"};

	for (int la = 0; la < 2; la++)
		for (int i = 0; i < n[la]; i++)
			for (int lb = la; lb < 2; lb++)
				for (int j = la == lb ? i + 1 : 0; j < n[lb]; j++)
					if (same_ref(&all[la][i], &all[lb][j]))
					{
						plan_read_fail(r, where, "column \"%s\" of table \"%s\" is listed in %s and in %s",
									   all[la][i].column, all[la][i].table, name[la], name[lb]);
						return;
					}
}

const UuidSpec *
uuid_spec(const Op *op)
{
	return op->data;
}

/* Free N column references and the array. */
static void
free_refs(ColumnRef *refs, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(refs[i].schema), free(refs[i].table), free(refs[i].column);
		free(refs[i].on_delete), free(refs[i].on_update);
	}
	free(refs);
}

static void
uuid_free(void *data)
{
	UuidSpec *spec = data;

	if (spec == NULL)
		return;
	free_refs(spec->also_convert, spec->n_also_convert);
	free_refs(spec->not_references, spec->n_not_references);
	free(spec);
}

static void
uuid_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	UuidSpec *spec = op->data = xcalloc(1, sizeof(UuidSpec));

	op->column = plan_read_ident(r, obj, where, "column", true);
	spec->recreate_views = plan_read_bool(r, obj, where, "recreate_views", false);
	spec->also_convert = read_refs(r, obj, where, "also_convert", &spec->n_also_convert);
	spec->not_references = read_refs(r, obj, where, "not_references", &spec->n_not_references);
	if (r->ok)
		refuse_listed_twice(r, op, where);
	if (op->column && strlen(op->column) > PLAN_MAX_IDENT - 7)
		plan_read_fail(r, where, "\"column\" must leave room for the suffix \"_legacy\" (%d bytes at most)",
					   PLAN_MAX_IDENT - 7);
}

/* Whether NAME is in SEEN, a JSON array of strings. */
static bool
listed_before(json_t *seen, const char *name)
{
	size_t k;
	json_t *v;

	json_array_foreach(seen, k, v)
	{
		if (strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

/*
 * Each column of LIST (REFS, N of them) exists; one of also_convert is
 * neither the key nor a column with a foreign key already.  Each resolved
 * "<table>.<column>" is appended to SEEN (a JSON array); one seen before,
 * in either list, is refused.  Returns the problems logged.
 */
static int
check_refs(Run *run, const Op *op, const ColumnRef *refs, int n, const char *list, json_t *seen)
{
	const Plan *plan = run->plan;
	int problems = 0;

	for (int i = 0; i < n; i++)
	{
		const ColumnRef *c = &refs[i];
		const char *params[5] = {c->schema ? c->schema : plan->schema, c->table, c->column, plan->q_table, plan->key};
		PGresult *res = db_query(
			run->conn,
			"SELECT s.r::text AS rel, EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = s.r "
			"  AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped) AS has_column, "
			" (SELECT f.conname FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_attribute a "
			"  ON a.attrelid = f.conrelid AND a.attnum = ANY (f.conkey) WHERE f.conrelid = s.r AND f.contype = 'f' "
			"  AND a.attname = $3 ORDER BY 1 LIMIT 1) AS fk, "
			" coalesce(s.r = $4::regclass AND $3 = $5, false) AS is_key "
			"FROM (SELECT pg_catalog.to_regclass(quote_ident($1) || '.' || quote_ident($2)) AS r) s",
			5, params);
		const char *rel = db_field(res, 0, "rel");
		char *name = rel ? str_printf("%s.%s", rel, c->column) : NULL;

		if (rel == NULL)
			log_error("step %d (%s): %s[%d]: table \"%s\".\"%s\" does not exist", op->index + 1, op->label, list, i,
					  params[0], c->table);
		else if (!db_field_true(res, 0, "has_column"))
			log_error("step %d (%s): %s[%d]: table %s has no column \"%s\"", op->index + 1, op->label, list, i, rel,
					  c->column);
		else if (db_field_true(res, 0, "is_key"))
			log_error("step %d (%s): %s[%d]: %s is the key the operation converts", op->index + 1, op->label, list, i,
					  name);
		else if (strcmp(list, "also_convert") == 0 && db_field(res, 0, "fk"))
			log_error("step %d (%s): %s[%d]: %s has the foreign key \"%s\" already: a column with a foreign "
					  "key to the key is converted without being listed, and one to another table is not a "
					  "reference to the key",
					  op->index + 1, op->label, list, i, name, db_field(res, 0, "fk"));
		else if (listed_before(seen, name))
			log_error("step %d (%s): %s is listed twice in also_convert and not_references", op->index + 1, op->label,
					  name);
		else
		{
			json_array_append_new(seen, json_string(name));
			problems--; /* none: the one counted below is taken back */
		}
		problems++;
		free(name);
		PQclear(res);
	}
	return problems;
}

static int
uuid_check_plan(Run *run, const Op *op)
{
	const Plan *plan = run->plan;
	int problems = plan_check_column(plan, op, op->column, "column");
	json_t *seen = json_array();

	problems += check_refs(run, op, uuid_spec(op)->also_convert, uuid_spec(op)->n_also_convert, "also_convert", seen);
	problems +=
		check_refs(run, op, uuid_spec(op)->not_references, uuid_spec(op)->n_not_references, "not_references", seen);
	json_decref(seen);

	/* already uuid, and not by this plan's own swap */
	if (plan->key_type && strcmp(plan->key_type, "uuid") == 0 && strcmp(op->column, plan->key) == 0
		&& !(mlog_state_exists(run->conn) && registry_has(run->conn, plan, "uuid_pk", op->column)))
	{
		log_error("step %d (%s): %s.%s is already of type uuid: nothing to convert", op->index + 1, op->label,
				  plan->q_table, plan->q_key);
		problems++;
	}
	return problems;
}

/* status of phase3: which of its steps the conversion reached ("swapped", "finalized") */
static void
uuid_status(Run *run, const Op *op, int phase, json_t *obj)
{
	const char *params[1] = {run->plan->name};
	char *reached;

	(void) op;
	if (phase != 3)
		return;
	reached = db_value(run->conn,
					   "SELECT string_agg(replace(kind, 'uuid_', ''), ', ' ORDER BY kind DESC) "
					   "FROM migration_backup.phasemig_objects WHERE plan = $1 "
					   "AND kind IN ('uuid_swapped', 'uuid_finalized')",
					   1, params);
	if (reached)
		json_object_set_new(obj, "reached", json_string(reached));
	free(reached);
}

/* also_convert's tables: it writes and alters them like the tables whose foreign keys point at the key. */
static void
uuid_extra_tables(const Op *op, const Plan *plan, json_t *list)
{
	const UuidSpec *spec = op->data;

	for (int k = 0; k < spec->n_also_convert; k++)
	{
		const ColumnRef *c = &spec->also_convert[k];

		json_array_append_new(list, json_pack("[ss]", c->schema ? c->schema : plan->schema, c->table));
	}
}

/* Every table it converted (the key's and each referencing one's): each row was rewritten by the fill. */
static void
uuid_rewritten_tables(Run *run, const Op *op, json_t *list)
{
	UuidJob job;

	if (!uuid_job_recorded(run, op) || !uuid_job_load(&job, run, op, NULL))
		return;
	for (int i = 0; i < job.n; i++)
		json_array_append_new(list, json_string(job.t[i].table));
	uuid_job_free(&job);
}

/* It reads the key and adds its shadow and, at the swap, its legacy column. */
static void
uuid_uses(const Op *op, PlanUses *u)
{
	plan_uses_add(u, PLAN_READS, op->column);
	plan_uses_add_suffixed(u, PLAN_ADDS, op->column, "_uuid");
	plan_uses_add_suffixed(u, PLAN_ADDS, op->column, "_legacy");
}

const OpType op_type_convert_to_uuid = {
	.name = "convert_to_uuid",
	.keys = (const char *const[]){"column", "recreate_views", "also_convert", "not_references", NULL},
	.read = uuid_read,
	.free = uuid_free,
	.extra_tables = uuid_extra_tables,
	.rewritten_tables = uuid_rewritten_tables,
	.check_plan = uuid_check_plan,
	.uses = uuid_uses,
	.one_per_plan = true, /* its triggers, map and indexes are named after the plan */
	.handlers = &op_convert_to_uuid,
	.apply_drops = "swaps the key and every column referencing it with its uuid shadow, and the keys, "
				   "foreign keys and indexes with their uuid copies (the text values stay in <column>_legacy)",
	.finalize_drops = "drops the <column>_legacy columns and their triggers (their values saved in "
					  "migration_backup first; a rollback restores them)",
	.status = uuid_status,
	.alters_referencing_tables = true,
	.options = CLI_ON_INVALID | CLI_DISCARD_GENERATED,
};
