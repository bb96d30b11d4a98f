/*
 * job.c: convert_to_uuid's job as phase1 recorded it in the object registry
 * (the key, its foreign key columns, the indexes mirrored on their shadows),
 * loaded once per handler with every name its phases use built at that time;
 * the registry records the job keeps; and the statements of its triggers.
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"

static const char *const direction[2] = {"fwd", "rev"};

const char *const uuid_job_kinds[] = {"uuid_target", "uuid_index", "uuid_pk", "uuid_shadows", NULL};

static char *
trunc63(char *s)
{
	if (strlen(s) > 63)
		s[63] = '\0';
	return s;
}

static char *
json_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* The quoted NAME, or NULL for none. */
static char *
ident_or_null(const char *name)
{
	return name ? sql_ident(name) : NULL;
}

/*
 * Target i's names: its shadow and legacy columns, and its trigger functions
 * and triggers, one per converted column, named by its plan and target number:
 * a table can hold several (a self-referencing key, two foreign keys to the
 * same table, foreign keys converted by two plans).
 */
static void
target_names(UuidJob *job, int i)
{
	UuidTarget *t = &job->t[i];
	const Plan *p = job->run->plan;

	t->shadow = trunc63(str_printf("%s_uuid", t->column));
	t->legacy = trunc63(str_printf("%s_legacy", t->column));
	t->q_col = sql_ident(t->column);
	t->q_shadow = sql_ident(t->shadow);
	t->q_legacy = sql_ident(t->legacy);
	t->q_constraint = ident_or_null(t->constraint);
	t->regname = str_printf("%s.%s", t->table, t->column);
	for (int d = 0; d < 2; d++)
	{
		char *fn = str_printf("uuid_%s:%d", direction[d], i);
		char *trigger = str_printf("uuid_%s_%d", direction[d], t->index);
		char *trigger_name = ops_object_name(p, trigger);

		t->fn[d] = plan_backup_table(p, fn);
		t->trigger[d] = sql_ident(trigger_name);
		free(fn), free(trigger), free(trigger_name);
	}
}

static void
load_target(UuidJob *job, json_t *d)
{
	UuidTarget *t;

	job->t = xrealloc(job->t, (size_t) (job->n + 1) * sizeof(UuidTarget));
	t = &job->t[job->n++];
	memset(t, 0, sizeof *t);
	t->index = (int) json_integer_value(json_object_get(d, "index"));
	t->table = json_str(d, "table");
	t->column = json_str(d, "column");
	t->q_key = json_str(d, "key");
	t->constraint = json_str(d, "constraint");
	t->fk_def = json_str(d, "def");
	t->fk_validated = !json_is_false(json_object_get(d, "validated"));
	t->not_null = json_is_true(json_object_get(d, "not_null"));
	t->fk_added = json_is_true(json_object_get(d, "added"));
	target_names(job, job->n - 1);
}

/* An index's names, from its record's name, mirror and legacy. */
static void
load_index_names(UuidIndexNames *names, json_t *d)
{
	names->name = json_str(d, "name");
	names->mirror = json_str(d, "mirror");
	names->legacy = json_str(d, "legacy");
	names->q_name = ident_or_null(names->name);
	names->q_mirror = ident_or_null(names->mirror);
	names->q_legacy = ident_or_null(names->legacy);
}

static void
free_index_names(UuidIndexNames *names)
{
	free(names->name), free(names->mirror), free(names->legacy);
	free(names->q_name), free(names->q_mirror), free(names->q_legacy);
}

static void
load_index(UuidJob *job, json_t *d)
{
	UuidIndex *x;

	job->ix = xrealloc(job->ix, (size_t) (job->n_ix + 1) * sizeof(UuidIndex));
	x = &job->ix[job->n_ix++];
	x->table = json_str(d, "table");
	load_index_names(&x->names, d);
	x->columns = json_str(d, "columns");
	x->legacy_columns = json_str(d, "legacy_columns");
	x->unique = json_is_true(json_object_get(d, "unique"));
	x->constraint = json_str(d, "constraint");
}

bool
uuid_job_recorded(Run *run, const Op *op)
{
	return registry_has(run->conn, run->plan, "uuid_pk", op->column);
}

bool
uuid_job_load(UuidJob *job, Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	const char *params[1] = {p->name};
	PGresult *res;

	memset(job, 0, sizeof *job);
	job->run = run;
	job->op = op;
	job->opts = opts;
	job->map = plan_backup_table(p, "uuid_map");
	job->try_fn = plan_backup_table(p, "try_uuid");
	job->legacy_backup = plan_backup_table(p, "uuid_legacy");
	res = db_query(run->conn,
				   "SELECT kind, detail::text AS detail FROM migration_backup.phasemig_objects "
				   "WHERE plan = $1 AND kind IN ('uuid_target', 'uuid_index', 'uuid_pk') "
				   "ORDER BY kind, (detail->>'index')::int, name",
				   1, params);
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *kind = db_field(res, r, "kind");
		json_t *d = json_loads(db_field(res, r, "detail"), 0, NULL);

		if (d == NULL)
			continue;
		if (strcmp(kind, "uuid_target") == 0)
			load_target(job, d);
		else if (strcmp(kind, "uuid_index") == 0)
			load_index(job, d);
		else
			load_index_names(&job->pk, d);
		json_decref(d);
	}
	PQclear(res);
	if (job->n == 0 || job->pk.name == NULL)
	{
		log_error("convert_to_uuid of column \"%s\": phase1 has not recorded its columns", op->column);
		uuid_job_free(job);
		return false;
	}
	job->swapped = uuid_is_registered(job, "uuid_swapped");
	job->finalized = uuid_is_registered(job, "uuid_finalized");
	return true;
}

void
uuid_job_free(UuidJob *job)
{
	for (int i = 0; i < job->n; i++)
	{
		UuidTarget *t = &job->t[i];

		free(t->table), free(t->column), free(t->q_col), free(t->q_shadow), free(t->q_legacy);
		free(t->shadow), free(t->legacy), free(t->q_key), free(t->constraint), free(t->q_constraint);
		free(t->fk_def), free(t->regname);
		for (int d = 0; d < 2; d++)
			free(t->fn[d]), free(t->trigger[d]);
	}
	for (int i = 0; i < job->n_ix; i++)
	{
		UuidIndex *x = &job->ix[i];

		free(x->table), free(x->columns), free(x->legacy_columns), free(x->constraint);
		free_index_names(&x->names);
	}
	free(job->t), free(job->ix);
	free_index_names(&job->pk);
	free(job->map), free(job->try_fn), free(job->legacy_backup);
	memset(job, 0, sizeof *job);
}

/* ---------- registry records ---------- */

bool
uuid_is_registered(const UuidJob *job, const char *kind)
{
	return registry_has(job->run->conn, job->run->plan, kind, job->op->column);
}

void
uuid_record(Run *run, int phase, const char *kind, const char *name, json_t *detail)
{
	char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);

	registry_set(run->conn, run->plan, phase, kind, name, text);
	free(text);
	json_decref(detail);
}

json_t *
uuid_recorded_detail(const UuidJob *job, const char *kind)
{
	char *text = registry_detail(job->run->conn, job->run->plan, kind, job->op->column);
	json_t *detail = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return detail;
}

/* ---------- triggers ---------- */

/*
 * The assignment of target i's trigger: forward, the shadow from the
 * original; reverse, the legacy column from the new one.
 */
static char *
trigger_body(const UuidJob *job, int i, bool reverse)
{
	const UuidTarget *t = &job->t[i];
	const UuidTarget *key = &job->t[0];
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb, "NEW.%s := ", reverse ? t->q_legacy : t->q_shadow);
	if (i == 0 && !reverse)
	{
		/* the key: a regenerated uuid, else the text as uuid, else NULL (never fail the write) */
		sb_append(&sb, "coalesce(");
		uuid_append_choices(&sb, job, "NEW", t->q_col);
		sb_append(&sb, ")");
	}
	else if (i == 0)
		sb_printf(&sb, "NEW.%s::text", t->q_col);
	else
	{
		/*
		 * a child: whatever its parent's shadow is; reverse, its parent's
		 * legacy value exactly, so the varchar foreign key holds on rollback
		 */
		sb_printf(&sb, "CASE WHEN NEW.%s IS NULL THEN NULL ELSE coalesce(", t->q_col);
		uuid_append_parent(&sb, job, reverse ? key->q_legacy : key->q_shadow, "NEW", t->q_col);
		sb_append(&sb, ", ");
		if (reverse)
			sb_printf(&sb, "NEW.%s::text", t->q_col);
		else
			uuid_append_choices(&sb, job, "NEW", t->q_col);
		sb_append(&sb, ") END");
	}
	sb_append(&sb, ";");
	return sb_steal(&sb);
}

void
uuid_trigger_sql(const UuidJob *job, int i, bool reverse, char **fn, char **trigger)
{
	const UuidTarget *t = &job->t[i];
	const char *name = t->fn[reverse];
	char *body = trigger_body(job, i, reverse);

	*fn = str_printf("CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$ BEGIN %s RETURN NEW; "
					 "END $fn$",
					 name, body);
	*trigger = str_printf("CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE OF %s ON %s "
						  "FOR EACH ROW EXECUTE FUNCTION %s()",
						  t->trigger[reverse], t->q_col, t->table, name);
	free(body);
}

char *
uuid_drop_trigger_sql(const UuidJob *job, int i, bool reverse)
{
	return str_printf("DROP TRIGGER IF EXISTS %s ON %s", job->t[i].trigger[reverse], job->t[i].table);
}
