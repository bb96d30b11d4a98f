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
 * The two sides of target i as its trigger sees them: before the swap the
 * original text column and its uuid shadow, after it the legacy text column
 * and the uuid column under the original name.  The column the application
 * reads by its old name (the real one) is the text before the swap, the
 * uuid after it.
 */
typedef struct TriggerSides
{
	const char *text; /* quoted */
	const char *uuid; /* quoted */
	const char *real; /* unquoted name of the real column: the original name */
} TriggerSides;

static TriggerSides
target_sides(const UuidTarget *t, bool swapped)
{
	return (TriggerSides){
		.text = swapped ? t->q_legacy : t->q_col, .uuid = swapped ? t->q_col : t->q_shadow, .real = t->column};
}

/*
 * Text to uuid, of NEW's text side: the key, a regenerated uuid, else the
 * text as uuid, else NULL; a child, its parent's uuid (found by the parent's
 * text), else the same as the key.
 */
static void
append_to_uuid(StrBuf *sb, const UuidJob *job, int i, bool swapped)
{
	const TriggerSides s = target_sides(&job->t[i], swapped);
	const TriggerSides k = target_sides(&job->t[0], swapped);

	if (i == 0)
	{
		sb_append(sb, "coalesce(");
		uuid_append_choices(sb, job, "NEW", s.text);
		sb_append(sb, ")");
		return;
	}
	sb_printf(sb, "CASE WHEN NEW.%s IS NULL THEN NULL ELSE coalesce(", s.text);
	sb_printf(sb, "(SELECT p.%s FROM %s p WHERE p.%s = NEW.%s), ", k.uuid, job->t[0].table, k.text, s.text);
	uuid_append_choices(sb, job, "NEW", s.text);
	sb_append(sb, ") END");
}

/*
 * Uuid to text, of NEW's uuid side: the key, the text the map regenerated
 * it for, else its canonical text; a child, its parent's text exactly (so
 * the text foreign key holds), else the same as the key.  Before the swap the
 * parent is looked up by its text first (the primary key's index): its
 * regenerated text, its canonical text, and only then by its uuid shadow,
 * which has no index until phase3 builds the mirrors (a parent whose text is
 * uuid text in another spelling, or no parent at all).
 */
static void
append_to_text(StrBuf *sb, const UuidJob *job, int i, bool swapped)
{
	const TriggerSides s = target_sides(&job->t[i], swapped);
	const TriggerSides k = target_sides(&job->t[0], swapped);
	const char *table = job->t[0].table;

	sb_printf(sb, "CASE WHEN NEW.%s IS NULL THEN NULL ELSE coalesce(", s.uuid);
	if (i > 0 && swapped)
		sb_printf(sb, "(SELECT p.%s FROM %s p WHERE p.%s = NEW.%s), ", k.text, table, k.uuid, s.uuid);
	else if (i > 0)
		sb_printf(sb,
				  "(SELECT p.%s FROM %s p WHERE p.%s = coalesce((SELECT m.old FROM %s m WHERE m.new = NEW.%s), "
				  "NEW.%s::text)), (SELECT p.%s FROM %s p WHERE p.%s = NEW.%s LIMIT 1), ",
				  k.text, table, k.text, job->map, s.uuid, s.uuid, k.text, table, k.uuid, s.uuid);
	sb_printf(sb, "(SELECT m.old FROM %s m WHERE m.new = NEW.%s), NEW.%s::text) END", job->map, s.uuid, s.uuid);
}

/*
 * The body of target i's trigger function, BEFORE ROW on INSERT and on
 * UPDATE of either side, so a row written with one side only gets the
 * other before the NOT NULL checks.  A side is "given" when an INSERT sets
 * it, or an UPDATE changes it:
 *   - the text only: the uuid from it;
 *   - the uuid only: the text from it, unless the text already stands for
 *     that uuid (a non-canonical or regenerated key keeps its text);
 *   - both, and they disagree: an error (SQLSTATE 23514), except on an
 *     INSERT where the real column has a default (it may be the default's
 *     value): the other side wins;
 *   - neither (an UPDATE that sets a side to its value): the side that is
 *     not real follows the real one, as the one-way trigger did.
 * After the swap, a text that stands for no uuid cannot be written
 * (SQLSTATE 22P02).  phasemig's own sessions (phasemig.session = on: the
 * fill, the resets and restores of the rollbacks) get the one-way trigger
 * of old: the side that is not real follows the real one when that changes,
 * and nothing else, so emptying a shadow never empties its original.
 */
static char *
trigger_body(const UuidJob *job, int i, bool swapped)
{
	const UuidTarget *t = &job->t[i];
	const TriggerSides s = target_sides(t, swapped);
	/* the side that is not real, following the real one */
	const char *follower = swapped ? s.text : s.uuid;
	StrBuf sb, to_uuid, to_text;
	char *real_lit = sql_literal(s.real);
	char *col_lit = str_printf("%s.%s", t->table, t->q_col);
	char *where_lit = sql_literal(col_lit);

	/* in parentheses: PL/pgSQL ends an IF's condition at the first THEN outside them */
	sb_init(&to_uuid);
	sb_append(&to_uuid, "(");
	append_to_uuid(&to_uuid, job, i, swapped);
	sb_append(&to_uuid, ")");
	sb_init(&to_text);
	sb_append(&to_text, "(");
	append_to_text(&to_text, job, i, swapped);
	sb_append(&to_text, ")");
	sb_init(&sb);
	sb_append(&sb, "DECLARE t_in boolean; u_in boolean; v uuid; BEGIN ");
	sb_printf(&sb,
			  "IF TG_OP = 'INSERT' THEN t_in := NEW.%s IS NOT NULL; u_in := NEW.%s IS NOT NULL; "
			  "ELSE t_in := NEW.%s IS DISTINCT FROM OLD.%s; u_in := NEW.%s IS DISTINCT FROM OLD.%s; END IF; ",
			  s.text, s.uuid, s.text, s.text, s.uuid, s.uuid);
	/* phasemig's own writes: one way, as before */
	sb_printf(&sb,
			  "IF pg_catalog.current_setting('phasemig.session', true) = 'on' THEN "
			  "IF TG_OP = 'INSERT' OR %s THEN NEW.%s := %s; END IF; RETURN NEW; END IF; ",
			  swapped ? "u_in" : "t_in", follower, swapped ? to_text.data : to_uuid.data);
	sb_printf(&sb, "IF t_in THEN v := %s; END IF; ", to_uuid.data);
	/* both given */
	sb_printf(&sb, "IF t_in AND u_in AND NEW.%s IS DISTINCT FROM v THEN ", s.uuid);
	sb_append(&sb,
			  "IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = TG_RELID ");
	sb_printf(&sb, "AND a.attname = %s AND a.atthasdef) THEN ", real_lit);
	/* before the swap the uuid wins (the text is the default's), after it the text */
	if (swapped)
		sb_append(&sb, "u_in := false; ");
	else
		sb_printf(&sb, "NEW.%s := %s; RETURN NEW; ", s.text, to_text.data);
	sb_append(&sb,
			  "ELSE RAISE EXCEPTION USING ERRCODE = '23514', MESSAGE = format("
			  "'phasemig: %s is written as %L and as uuid %L, which disagree', ");
	sb_printf(&sb, "%s, NEW.%s, NEW.%s), ", where_lit, s.text, s.uuid);
	sb_append(&sb, "HINT = 'write one side only (the other follows), or both the same key'; END IF; END IF; ");
	/* the text given (alone, or winning): the uuid from it */
	sb_append(&sb, "IF t_in AND NOT u_in THEN ");
	if (swapped)
	{
		sb_printf(&sb, "IF v IS NULL AND NEW.%s IS NOT NULL THEN ", s.text);
		sb_append(&sb,
				  "RAISE EXCEPTION USING ERRCODE = '22P02', MESSAGE = format("
				  "'phasemig: %s is now a uuid, and %L stands for none', ");
		sb_printf(&sb, "%s, NEW.%s), ", where_lit, s.text);
		sb_append(&sb, "HINT = 'after the swap only uuid text, or a key phase2 regenerated, can be written'; END IF; ");
	}
	sb_printf(&sb, "NEW.%s := v; ", s.uuid);
	/*
	 * the uuid given: the text from it (an INSERT's text is NULL), unless
	 * the text stands for that uuid already
	 */
	sb_append(&sb, "ELSIF u_in AND NOT t_in THEN ");
	sb_printf(&sb, "IF TG_OP = 'INSERT' THEN NEW.%s := %s; ", s.text, to_text.data);
	sb_printf(&sb, "ELSIF NEW.%s IS DISTINCT FROM %s THEN NEW.%s := %s; END IF; ", s.uuid, to_uuid.data, s.text,
			  to_text.data);
	/* neither: the follower from the real column, where they disagree */
	sb_append(&sb, "ELSIF NOT t_in AND NOT u_in THEN ");
	if (swapped)
		sb_printf(&sb, "IF NEW.%s IS DISTINCT FROM %s THEN NEW.%s := %s; END IF; ", s.uuid, to_uuid.data, s.text,
				  to_text.data);
	else
		sb_printf(&sb, "NEW.%s := %s; ", s.uuid, to_uuid.data);
	sb_append(&sb, "END IF; RETURN NEW; END");
	sb_free(&to_uuid), sb_free(&to_text);
	free(real_lit), free(col_lit), free(where_lit);
	return sb_steal(&sb);
}

void
uuid_trigger_sql(const UuidJob *job, int i, bool reverse, char **fn, char **trigger)
{
	const UuidTarget *t = &job->t[i];
	const TriggerSides s = target_sides(t, reverse);
	const char *name = t->fn[reverse];
	char *body = trigger_body(job, i, reverse);

	*fn = str_printf("CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$ %s $fn$", name, body);
	*trigger = str_printf("CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE OF %s, %s ON %s "
						  "FOR EACH ROW " OPS_TRIGGER_WHEN " EXECUTE FUNCTION %s()",
						  t->trigger[reverse], s.text, s.uuid, t->table, name);
	free(body);
}

char *
uuid_drop_trigger_sql(const UuidJob *job, int i, bool reverse)
{
	return str_printf("DROP TRIGGER IF EXISTS %s ON %s", job->t[i].trigger[reverse], job->t[i].table);
}
