/*
 * op_uuid.c: convert_to_uuid, phases 1 and 2.  The key column (varchar UUID
 * text) and every foreign key column pointing at it get a uuid shadow column,
 * kept filled by triggers for every row the application writes; phase2 sorts
 * the values (canonical, accepted, invalid), refuses invalid values and
 * orphans unless told to regenerate invalid keys, and fills the shadows in
 * keyset batches, the key first and its children after.
 */
#include "ops/uuid/uuid.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/batch.h"
#include "engine/catalog.h"
#include "core/db.h"
#include "engine/fill.h"
#include "core/log.h"
#include "core/strbuf.h"

/* PostgreSQL's uuid input: hex in groups of 4, optional hyphens between groups, optional braces */
#define UUID_TEXT_RE "^(\\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\\}|[0-9a-f]{4}(-?[0-9a-f]{4}){7})$"

static char *
trunc63(char *s)
{
	if (strlen(s) > 63)
		s[63] = '\0';
	return s;
}

static void
target_names(UuidTarget *t, PGconn *conn)
{
	t->shadow = trunc63(str_printf("%s_uuid", t->column));
	t->legacy = trunc63(str_printf("%s_legacy", t->column));
	t->q_col = db_ident(conn, t->column);
	t->q_shadow = db_ident(conn, t->shadow);
	t->q_legacy = db_ident(conn, t->legacy);
}

bool
uuid_is_registered(const UuidJob *job, const char *kind)
{
	return mlog_is_registered(job->run->conn, job->run->plan, kind, job->op->column);
}

char *
uuid_fn_name(const UuidJob *job, const char *direction, int i)
{
	char *what = str_printf("uuid_%s:%d", direction, i);
	char *name = plan_backup_table(job->run->plan, what);

	free(what);
	return name;
}

/*
 * One trigger per converted column, named by its plan and target number: a
 * table can hold several (a self-referencing key, two foreign keys to the
 * same table, foreign keys converted by two plans).
 */
char *
uuid_trigger_name(const UuidJob *job, int i, bool reverse)
{
	char *what = str_printf("uuid_%s_%d", reverse ? "rev" : "fwd", job->t[i].index);
	char *name = ops_object_name(job->run->plan, what);
	char *quoted = db_ident(job->run->conn, name);

	free(what), free(name);
	return quoted;
}

static char *
json_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

bool
uuid_job_load(UuidJob *job, Run *run, const Op *op)
{
	const Plan *p = run->plan;
	const char *params[1] = {p->name};
	PGresult *res;

	memset(job, 0, sizeof *job);
	job->run = run;
	job->op = op;
	job->map = plan_backup_table(p, "uuid_map");
	job->try_fn = plan_backup_table(p, "try_uuid");
	job->legacy_backup = plan_backup_table(p, "uuid_legacy");
	res = db_query(run->conn, "SELECT kind, detail::text FROM migration_backup.phasemig_objects WHERE plan = $1 "
				   "AND kind IN ('uuid_target', 'uuid_index', 'uuid_pk') ORDER BY kind, (detail->>'index')::int, name",
				   1, params);
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *kind = PQgetvalue(res, r, 0);
		json_t *d = json_loads(PQgetvalue(res, r, 1), 0, NULL);

		if (d == NULL)
			continue;
		if (strcmp(kind, "uuid_target") == 0)
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
			t->regname = str_printf("%s.%s", t->table, t->column);
			target_names(t, run->conn);
		}
		else if (strcmp(kind, "uuid_index") == 0)
		{
			UuidIndex *x;

			job->ix = xrealloc(job->ix, (size_t) (job->n_ix + 1) * sizeof(UuidIndex));
			x = &job->ix[job->n_ix++];
			x->table = json_str(d, "table");
			x->name = json_str(d, "name");
			x->mirror = json_str(d, "mirror");
			x->legacy = json_str(d, "legacy");
			x->columns = json_str(d, "columns");
			x->legacy_columns = json_str(d, "legacy_columns");
			x->unique = json_is_true(json_object_get(d, "unique"));
			x->constraint = json_str(d, "constraint");
		}
		else
		{
			job->pk_name = json_str(d, "name");
			job->pk_mirror = json_str(d, "mirror");
			job->pk_legacy = json_str(d, "legacy");
		}
		json_decref(d);
	}
	PQclear(res);
	if (job->n == 0 || job->pk_name == NULL)
	{
		log_error("convert_to_uuid of column \"%s\": phase1 has not recorded its columns", op->column);
		return false;
	}
	return true;
}

void
uuid_job_free(UuidJob *job)
{
	for (int i = 0; i < job->n; i++)
	{
		UuidTarget *t = &job->t[i];

		free(t->table), free(t->column), free(t->q_col), free(t->q_shadow), free(t->q_legacy);
		free(t->shadow), free(t->legacy), free(t->q_key), free(t->constraint), free(t->fk_def);
		free(t->regname);
	}
	for (int i = 0; i < job->n_ix; i++)
	{
		UuidIndex *x = &job->ix[i];

		free(x->table), free(x->name), free(x->mirror), free(x->legacy), free(x->columns);
		free(x->legacy_columns), free(x->constraint);
	}
	free(job->t), free(job->ix), free(job->pk_name), free(job->pk_mirror), free(job->pk_legacy);
	free(job->map), free(job->try_fn), free(job->legacy_backup);
}

void
uuid_trigger_sql(const UuidJob *job, int i, bool reverse, char **fn, char **trigger)
{
	const UuidTarget *t = &job->t[i];
	const UuidTarget *key = &job->t[0];
	char *name = uuid_fn_name(job, reverse ? "rev" : "fwd", i);
	char *body;

	if (!reverse && i == 0)
		/* the key: a regenerated uuid, else the text as uuid, else NULL (never fail the write) */
		body = str_printf("NEW.%s := coalesce((SELECT m.new FROM %s m WHERE m.old = NEW.%s::text), %s(NEW.%s::text));",
						  t->q_shadow, job->map, t->q_col, job->try_fn, t->q_col);
	else if (!reverse)
		/* a child: whatever its parent's shadow is */
		body = str_printf("NEW.%s := CASE WHEN NEW.%s IS NULL THEN NULL ELSE coalesce("
						  "(SELECT p.%s FROM %s p WHERE p.%s = NEW.%s), "
						  "(SELECT m.new FROM %s m WHERE m.old = NEW.%s::text), %s(NEW.%s::text)) END;",
						  t->q_shadow, t->q_col, key->q_shadow, key->table, key->q_col, t->q_col,
						  job->map, t->q_col, job->try_fn, t->q_col);
	else if (i == 0)
		body = str_printf("NEW.%s := NEW.%s::text;", t->q_legacy, t->q_col);
	else
		/* a child's legacy value is exactly its parent's, so the varchar foreign key holds on rollback */
		body = str_printf("NEW.%s := CASE WHEN NEW.%s IS NULL THEN NULL ELSE coalesce("
						  "(SELECT p.%s FROM %s p WHERE p.%s = NEW.%s), NEW.%s::text) END;",
						  t->q_legacy, t->q_col, key->q_legacy, key->table, key->q_col, t->q_col, t->q_col);
	*fn = str_printf("CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$ BEGIN %s RETURN NEW; "
					 "END $fn$", name, body);
	{
		char *trig = uuid_trigger_name(job, i, reverse);

		*trigger = str_printf("CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE OF %s ON %s "
							  "FOR EACH ROW EXECUTE FUNCTION %s()", trig, t->q_col, t->table, name);
		free(trig);
	}
	free(name);
	free(body);
}

char *
uuid_drop_trigger_sql(const UuidJob *job, int i, bool reverse)
{
	char *trig = uuid_trigger_name(job, i, reverse);
	char *sql = str_printf("DROP TRIGGER IF EXISTS %s ON %s", trig, job->t[i].table);

	free(trig);
	return sql;
}

/* ---------- phase1 ---------- */

static void
register_detail(Run *run, const char *kind, const char *name, json_t *detail)
{
	char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	const char *params[4] = {run->plan->name, kind, name, text};

	db_execp(run->conn, "INSERT INTO migration_backup.phasemig_objects (plan, kind, name, phase, detail) "
			 "VALUES ($1, $2, $3, 1, $4::jsonb) ON CONFLICT (plan, kind, name) DO UPDATE SET detail = EXCLUDED.detail",
			 4, params);
	free(text);
	json_decref(detail);
}

/* The plan's name for the mirror ("uuid") or the legacy copy ("legacy") of INDEX (caller frees). */
static char *
index_name(const Plan *p, const char *side, const char *index)
{
	char *what = str_printf("%s_%s", side, index);
	char *name = ops_object_name(p, what);

	free(what);
	return name;
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
	PGresult *res = db_query(run->conn,
							 "SELECT o.plan, o.name FROM migration_backup.phasemig_objects m "
							 "JOIN migration_backup.phasemig_objects o ON o.kind = 'uuid_target' AND o.plan <> m.plan "
							 " AND o.detail->>'table' = m.detail->>'table' AND o.detail->>'column' = m.detail->>'column' "
							 "WHERE m.plan = $1 AND m.kind = 'uuid_target' ORDER BY 1, 2", 1, params);
	int rc = EXIT_DONE;

	for (int r = 0; r < PQntuples(res); r++)
	{
		log_error("convert_to_uuid: column %s is already converted by plan \"%s\"", PQgetvalue(res, r, 1),
				  PQgetvalue(res, r, 0));
		rc = EXIT_BAD_INPUT;
	}
	if (rc != EXIT_DONE)
		log_hint("finish or roll back plan \"%s\" first", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* Find the foreign keys and indexes in the catalog and record them; EXIT_BAD_INPUT if unsupported. */
static int
discover(Run *run, const Op *op)
{
	const Plan *p = run->plan;
	const char *kp[2] = {p->q_table, op->column};
	PGresult *res;
	int rc = EXIT_DONE;

	if (strcmp(op->column, p->key) != 0)
	{
		log_error("convert_to_uuid: column \"%s\" must be the plan's key \"%s\"", op->column, p->key);
		return EXIT_BAD_INPUT;
	}
	/* the primary key on exactly this column */
	res = db_query(run->conn,
				   "SELECT c.conname FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_attribute a "
				   "ON a.attrelid = c.conrelid AND a.attname = $2 WHERE c.conrelid = $1::regclass AND c.contype = 'p' "
				   "AND c.conkey = ARRAY[a.attnum]::int2[]", 2, kp);
	if (PQntuples(res) != 1)
	{
		log_error("convert_to_uuid: column \"%s\" is not the primary key of %s", op->column, p->q_table);
		PQclear(res);
		return EXIT_BAD_INPUT;
	}
	{
		char *pk = xstrdup(PQgetvalue(res, 0, 0));
		char *mirror = index_name(p, "uuid", pk);
		char *legacy = index_name(p, "legacy", pk);

		register_detail(run, "uuid_pk", op->column, json_pack("{s:s, s:s, s:s}", "name", pk, "mirror", mirror,
															  "legacy", legacy));
		free(pk), free(mirror), free(legacy);
	}
	PQclear(res);

	/* the key and every single-column foreign key pointing at it, with each table's primary key */
	res = db_query(run->conn,
				   "WITH k AS (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attname = $2), "
				   "t AS (SELECT 0 AS ord, $1::regclass AS rel, k.attnum, NULL::name AS conname, NULL::text AS def, "
				   "  NULL::bool AS validated FROM k "
				   "  UNION ALL SELECT row_number() OVER (ORDER BY c.conrelid::regclass::text, c.conname), c.conrelid, "
				   "  c.conkey[1], c.conname, "
				   "  CASE WHEN c.convalidated THEN pg_catalog.pg_get_constraintdef(c.oid) "
				   "  ELSE regexp_replace(pg_catalog.pg_get_constraintdef(c.oid), ' NOT VALID$', '') END, c.convalidated "
				   "  FROM pg_catalog.pg_constraint c, k WHERE c.contype = 'f' AND c.confrelid = $1::regclass "
				   "  AND c.confkey = ARRAY[k.attnum]::int2[] AND cardinality(c.conkey) = 1 AND c.conparentid = 0) "
				   "SELECT t.ord, t.rel::text, a.attname, (SELECT quote_ident(pa.attname) FROM pg_catalog.pg_index i "
				   "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.indrelid AND pa.attnum = i.indkey[0] "
				   "  WHERE i.indrelid = t.rel AND i.indisprimary AND i.indnkeyatts = 1), t.conname, t.def, a.attnotnull, "
				   "  pg_catalog.format_type(a.atttypid, NULL), "
				   "  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.rel AND i.indisprimary "
				   "          AND t.attnum = ANY (i.indkey) AND t.ord > 0 AND t.rel <> $1::regclass), "
				   "  (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.rel), "
				   "  t.validated "
				   "FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.rel AND a.attnum = t.attnum ORDER BY t.ord",
				   2, kp);
	for (int r = 0; r < PQntuples(res) && rc == EXIT_DONE; r++)
	{
		const char *type = PQgetvalue(res, r, 7);

		if (strcmp(type, "character varying") != 0 && strcmp(type, "text") != 0 && strcmp(type, "character") != 0)
		{
			log_error("convert_to_uuid: %s.%s is %s, not text", PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), type);
			rc = EXIT_BAD_INPUT;
		}
		else if (PQgetvalue(res, r, 9)[0] == 'p')
		{
			log_error("convert_to_uuid: %s is a partitioned table; not supported (indexes cannot be built "
					  "CONCURRENTLY on it)", PQgetvalue(res, r, 1));
			rc = EXIT_BAD_INPUT;
		}
		else if (PQgetisnull(res, r, 3))
		{
			log_error("convert_to_uuid: table %s has no single-column primary key to walk in batches",
					  PQgetvalue(res, r, 1));
			rc = EXIT_BAD_INPUT;
		}
		else if (PQgetvalue(res, r, 8)[0] == 't')
		{
			log_error("convert_to_uuid: %s.%s is part of its table's primary key; not supported",
					  PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
			rc = EXIT_BAD_INPUT;
		}
		else
		{
			json_t *d = json_pack("{s:i, s:s, s:s, s:s, s:b}", "index", atoi(PQgetvalue(res, r, 0)), "table",
								  PQgetvalue(res, r, 1), "column", PQgetvalue(res, r, 2), "key",
								  PQgetvalue(res, r, 3), "not_null", PQgetvalue(res, r, 6)[0] == 't');
			char *name = str_printf("%s.%s", PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));

			if (!PQgetisnull(res, r, 4))
			{
				json_object_set_new(d, "constraint", json_string(PQgetvalue(res, r, 4)));
				json_object_set_new(d, "def", json_string(PQgetvalue(res, r, 5)));
				json_object_set_new(d, "validated", json_boolean(PQgetvalue(res, r, 10)[0] == 't'));
			}
			register_detail(run, "uuid_target", name, d);
			free(name);
		}
	}
	PQclear(res);
	if (rc == EXIT_DONE)
		rc = refuse_shared_columns(run);
	if (rc != EXIT_DONE)
		return rc;
	{
		const char *params[1] = {p->name};
		long long multi = db_count(run->conn,
								   "SELECT count(*) FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.confrelid = "
								   "(SELECT (detail->>'table')::regclass FROM migration_backup.phasemig_objects WHERE plan = $1 "
								   " AND kind = 'uuid_target' AND detail->>'index' = '0') AND cardinality(c.conkey) > 1",
								   1, params);

		if (multi > 0)
		{
			log_error("convert_to_uuid: %lld multi-column foreign keys reference %s; not supported", multi, p->q_table);
			return EXIT_BAD_INPUT;
		}
	}
	/*
	 * every other index that includes a converted column gets a mirror on the
	 * shadow; an index holding two converted columns of one table (a
	 * self-referencing key, two foreign keys) is mirrored once, on both shadows
	 */
	res = db_query(run->conn,
				   "WITH tg AS (SELECT (detail->>'table')::regclass AS rel, detail->>'column' AS col "
				   "  FROM migration_backup.phasemig_objects WHERE plan = $1 AND kind = 'uuid_target'), "
				   "ix AS (SELECT DISTINCT i.indexrelid FROM tg JOIN pg_catalog.pg_attribute ca ON ca.attrelid = tg.rel "
				   "  AND ca.attname = tg.col JOIN pg_catalog.pg_index i ON i.indrelid = ca.attrelid "
				   "  AND ca.attnum = ANY (i.indkey) AND NOT i.indisprimary) "
				   "SELECT i.indrelid::regclass::text, ic.relname, i.indisunique, con.conname, "
				   " (SELECT string_agg(CASE WHEN EXISTS (SELECT 1 FROM tg WHERE tg.rel = i.indrelid AND tg.col = a.attname) "
				   "   THEN quote_ident(a.attname || '_uuid') ELSE quote_ident(a.attname) END, ', ' ORDER BY k.ord) "
				   "   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) "
				   "   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n), "
				   " (SELECT string_agg(CASE WHEN EXISTS (SELECT 1 FROM tg WHERE tg.rel = i.indrelid AND tg.col = a.attname) "
				   "   THEN quote_ident(a.attname || '_legacy') ELSE quote_ident(a.attname) END, ', ' ORDER BY k.ord) "
				   "   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) "
				   "   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n), "
				   " i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR i.indnkeyatts <> i.indnatts, "
				   " (SELECT string_agg(DISTINCT o.plan, ', ') FROM migration_backup.phasemig_objects o "
				   "   JOIN pg_catalog.pg_attribute oa ON oa.attrelid = i.indrelid AND oa.attnum = ANY (i.indkey) "
				   "   WHERE o.kind = 'uuid_target' AND o.plan <> $1 AND o.detail->>'table' = i.indrelid::regclass::text "
				   "   AND oa.attname IN (o.detail->>'column', (o.detail->>'column') || '_uuid', "
				   "   (o.detail->>'column') || '_legacy')) "
				   "FROM ix JOIN pg_catalog.pg_index i ON i.indexrelid = ix.indexrelid "
				   "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
				   "LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
				   " AND con.contype = 'u' "
				   "ORDER BY 1, 2",
				   1, (const char *[]) {p->name});
	for (int r = 0; r < PQntuples(res) && rc == EXIT_DONE; r++)
	{
		char *mirror, *legacy, *name;

		if (PQgetvalue(res, r, 6)[0] == 't')
		{
			log_error("convert_to_uuid: index \"%s\" on %s uses an expression, a predicate or INCLUDE columns; "
					  "not supported", PQgetvalue(res, r, 1), PQgetvalue(res, r, 0));
			rc = EXIT_BAD_INPUT;
			break;
		}
		if (!PQgetisnull(res, r, 7))
		{
			/* each plan would mirror it on its own shadow and rename it at its own swap */
			log_error("convert_to_uuid: index \"%s\" on %s also holds a column converted by plan \"%s\"; "
					  "not supported", PQgetvalue(res, r, 1), PQgetvalue(res, r, 0), PQgetvalue(res, r, 7));
			log_hint("finish or roll back plan \"%s\" first, or drop the index", PQgetvalue(res, r, 7));
			rc = EXIT_BAD_INPUT;
			break;
		}
		mirror = index_name(p, "uuid", PQgetvalue(res, r, 1));
		legacy = index_name(p, "legacy", PQgetvalue(res, r, 1));
		name = str_printf("%s.%s", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
		{
			json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "table", PQgetvalue(res, r, 0), "name",
								  PQgetvalue(res, r, 1), "mirror", mirror, "legacy", legacy, "columns",
								  PQgetvalue(res, r, 4), "legacy_columns", PQgetvalue(res, r, 5), "unique",
								  PQgetvalue(res, r, 2)[0] == 't');

			if (!PQgetisnull(res, r, 3))
				json_object_set_new(d, "constraint", json_string(PQgetvalue(res, r, 3)));
			register_detail(run, "uuid_index", name, d);
		}
		free(mirror), free(legacy), free(name);
	}
	PQclear(res);
	return rc;
}

/* The unique index that becomes the primary key, and every mirrored index. */
int
uuid_build_mirrors(UuidJob *job)
{
	int rc = ops_build_index_on(job->run, job->t[0].table, job->pk_mirror, job->t[0].q_shadow, true);

	for (int i = 0; i < job->n_ix && rc == EXIT_DONE; i++)
		rc = ops_build_index_on(job->run, job->ix[i].table, job->ix[i].mirror, job->ix[i].columns, job->ix[i].unique);
	return rc;
}

/* Forget what discover() recorded (a refused discovery, or a finished phase1 rollback). */
static void
forget_job(Run *run)
{
	const char *params[1] = {run->plan->name};

	db_execp(run->conn, "DELETE FROM migration_backup.phasemig_objects WHERE plan = $1 AND kind IN "
			 "('uuid_target', 'uuid_index', 'uuid_pk', 'uuid_shadows')", 1, params);
}

static int
uuid_apply1(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	int rc;

	(void) opts;
	/* 1. find the foreign keys (pg_constraint) and indexes, record them */
	if (!uuid_is_registered(&(UuidJob) {.run = run, .op = op}, "uuid_shadows"))
		if ((rc = discover(run, op)) != EXIT_DONE)
		{
			/* nothing was created: a rollback must not look for it */
			forget_job(run);
			return rc;
		}
	if (!uuid_job_load(&job, run, op))
		return EXIT_FAILED;
	log_info("converting %s.%s and %d foreign key column%s to uuid", run->plan->q_table, job.t[0].q_col, job.n - 1,
			 job.n == 2 ? "" : "s");
	for (int i = 1; i < job.n; i++)
		log_info("  %s.%s (foreign key \"%s\")", job.t[i].table, job.t[i].q_col, job.t[i].constraint);

	/* 2. the map of regenerated keys and the function that never fails on bad text */
	{
		char *map = str_printf("CREATE TABLE IF NOT EXISTS %s (old text PRIMARY KEY, new uuid NOT NULL UNIQUE, "
							   "created_at timestamptz NOT NULL DEFAULT now())", job.map);
		char *fn = str_printf("CREATE OR REPLACE FUNCTION %s(value text) RETURNS uuid LANGUAGE sql IMMUTABLE "
							  "PARALLEL SAFE AS $fn$ SELECT CASE WHEN value ~* '%s' THEN value::uuid END $fn$",
							  job.try_fn, UUID_TEXT_RE);
		const char *stmts[2] = {map, fn};

		rc = ops_ddl(run, "the uuid map", stmts, 2);
		free(map), free(fn);
	}
	/* 3. a shadow column and a forward trigger on each table, the key first */
	for (int i = 0; i < job.n && rc == EXIT_DONE; i++)
	{
		UuidTarget *t = &job.t[i];
		char *add = str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s uuid", t->table, t->q_shadow);
		char *fn, *trig;
		const char *stmts[3];

		uuid_trigger_sql(&job, i, false, &fn, &trig);
		stmts[0] = add, stmts[1] = fn, stmts[2] = trig;
		log_info("adding %s.%s and its trigger", t->table, t->q_shadow);
		rc = ops_ddl(run, add, stmts, 3);
		free(add), free(fn), free(trig);
	}
	if (rc == EXIT_DONE)
	{
		char *reg = mlog_register_sql(run->plan, 1, "uuid_shadows", op->column);

		db_exec(run->conn, reg);
		free(reg);
	}
	/*
	 * The indexes on the shadows are built by phase3 apply (its step 1,
	 * CONCURRENTLY, before the constraints that use them), once phase2 has
	 * filled the shadows: keeping them up to date row by row through the fill
	 * cost more than the fill itself (a keyset loop took 2.7 times as long
	 * with them in place, at 100,000 users); nothing before phase3 apply
	 * reads the shadows through an index.
	 */
	uuid_job_free(&job);
	return rc;
}

static int
uuid_rollback1(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	int rc = EXIT_DONE;

	if (!mlog_is_registered(run->conn, run->plan, "uuid_pk", op->column))
		return EXIT_DONE;
	if (!uuid_job_load(&job, run, op))
		return EXIT_FAILED;
	/* shadows, their triggers and functions; the mirror indexes go with the shadow columns */
	for (int i = job.n - 1; i >= 0 && rc == EXIT_DONE; i--)
	{
		char *trig = uuid_drop_trigger_sql(&job, i, false);
		char *fname = uuid_fn_name(&job, "fwd", i);
		char *fn = str_printf("DROP FUNCTION IF EXISTS %s()", fname);
		char *drop = str_printf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", job.t[i].table, job.t[i].q_shadow);
		const char *stmts[3] = {trig, fn, drop};

		log_info("dropping %s.%s", job.t[i].table, job.t[i].q_shadow);
		rc = ops_ddl(run, drop, stmts, 3);
		free(trig), free(fname), free(fn), free(drop);
	}
	if (rc == EXIT_DONE)
	{
		/*
		 * the regenerated keys survive the rollback, like migration_log: a
		 * uuid handed to a row stays its own if the job is applied again
		 */
		char *fn = str_printf("DROP FUNCTION IF EXISTS %s(text)", job.try_fn);
		char *map = str_printf("DROP TABLE IF EXISTS %s", job.map);
		const char *stmts[2] = {fn, map};

		if (opts->discard_generated_uids)
			log_info("--discard-generated-uids: forgetting the regenerated keys in %s", job.map);
		rc = ops_ddl(run, fn, stmts, opts->discard_generated_uids ? 2 : 1);
		if (rc == EXIT_DONE)
			forget_job(run);
		free(map), free(fn);
	}
	uuid_job_free(&job);
	return rc;
}

/* ---------- phase2 ---------- */

/* Sort the key's values; find orphans and keys that would collide.  Returns problems found. */
static long long
classify(UuidJob *job, Findings *f, json_t *meta, bool regenerate)
{
	Run *run = job->run;
	UuidTarget *k = &job->t[0];
	long long problems = 0;
	/*
	 * One pass: each key parsed once (OFFSET 0 keeps the subquery from being
	 * flattened into three calls), and whether two keys are the same uuid.
	 */
	char *sql = str_printf("SELECT count(*) FILTER (WHERE u::text = v), count(*) FILTER (WHERE u::text <> v), "
						   "count(*) FILTER (WHERE u IS NULL AND v IS NOT NULL AND NOT EXISTS "
						   "(SELECT 1 FROM %s m WHERE m.old = v)), count(u) - count(DISTINCT u) "
						   "FROM (SELECT %s::text AS v, %s(%s::text) AS u FROM %s OFFSET 0) s",
						   job->map, k->q_col, job->try_fn, k->q_col, k->table);
	PGresult *res = db_query(run->conn, sql, 0, NULL);
	long long invalid = atoll(PQgetvalue(res, 0, 2));
	bool same_uuid = atoll(PQgetvalue(res, 0, 3)) > 0;

	log_info("%s.%s: %s canonical, %s accepted but not canonical (stored canonical), %lld invalid", k->table, k->q_col,
			 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), invalid);
	json_object_set_new(meta, "canonical", json_integer(atoll(PQgetvalue(res, 0, 0))));
	json_object_set_new(meta, "not_canonical", json_integer(atoll(PQgetvalue(res, 0, 1))));
	json_object_set_new(meta, "invalid", json_integer(invalid));
	json_object_set_new(meta, "orphans", json_integer(0));
	PQclear(res);
	free(sql);
	if (invalid > 0 && !regenerate)
	{
		char *cond = str_printf("%s IS NOT NULL AND %s(%s::text) IS NULL AND NOT EXISTS (SELECT 1 FROM %s m WHERE m.old = %s::text)",
								k->q_col, job->try_fn, k->q_col, job->map, k->q_col);

		problems += findings_rows_where(run, f, "invalid uuid", k->regname, cond);
		free(cond);
	}
	if (same_uuid)
	{
		sql = str_printf("WITH d AS (SELECT %s(%s::text) AS u, string_agg(quote_literal(%s), ' and ' ORDER BY %s) AS keys "
						 "FROM %s WHERE %s(%s::text) IS NOT NULL GROUP BY 1 HAVING count(*) > 1) "
						 "SELECT (SELECT count(*) FROM d), (SELECT string_agg(keys, '; ') FROM (SELECT keys FROM d LIMIT 10) s)",
						 job->try_fn, k->q_col, k->q_col, k->q_col, k->table, job->try_fn, k->q_col);
		problems += findings_query(run, f, "keys equal as uuid", k->regname, sql);
		free(sql);
	}
	for (int i = 1; i < job->n; i++)
	{
		UuidTarget *t = &job->t[i];
		char *orphans = str_printf("SELECT (SELECT count(*) FROM %s c WHERE c.%s IS NOT NULL AND NOT EXISTS "
								   "(SELECT 1 FROM %s p WHERE p.%s = c.%s)), "
								   "(SELECT string_agg(format('%%s (value %%s)', quote_literal(k), quote_literal(v)), ', ') FROM "
								   "(SELECT c.%s::text AS k, c.%s::text AS v FROM %s c WHERE c.%s IS NOT NULL AND NOT EXISTS "
								   "(SELECT 1 FROM %s p WHERE p.%s = c.%s) ORDER BY 1 LIMIT 10) s)",
								   t->table, t->q_col, k->table, k->q_col, t->q_col, t->q_key, t->q_col, t->table,
								   t->q_col, k->table, k->q_col, t->q_col);
		long long n = findings_query(run, f, "orphan", t->regname, orphans);

		if (n > 0)
			json_object_set_new(meta, "orphans", json_integer(n + json_integer_value(json_object_get(meta, "orphans"))));
		problems += n;
		free(orphans);
	}
	return problems;
}

/*
 * The batch statement filling target T's shadow (keyset.h): the value
 * computed once per row, on the locked row; the update finds its rows by an
 * array of keys, an index probe each (a join to the batch could hash the
 * whole table).  A child's value is computed from its own text the way its
 * parent's was (the same text, since the foreign key holds): no lookup of
 * the parent per row; phase3's check still compares every child with it.
 * Malloc'd: the columns and the steps.
 */
static KeysetBatch
fill_batch(const UuidJob *job, const UuidTarget *t)
{
	char *columns = str_printf(", coalesce((SELECT m.new FROM %s m WHERE m.old = t.%s::text), %s(t.%s::text)) AS v",
							   job->map, t->q_col, job->try_fn, t->q_col);
	char *steps = str_printf("f AS (UPDATE %s t SET %s = b.v FROM b WHERE t.%s = b.key "
							 "AND t.%s = ANY (ARRAY(SELECT key FROM b)) AND t.%s IS DISTINCT FROM b.v RETURNING 1)",
							 t->table, t->q_shadow, t->q_key, t->q_key, t->q_shadow);

	return (KeysetBatch) {.table = t->table, .key = t->q_key, .columns = columns, .lock = true, .steps = steps,
						  .changed = "f"};
}

/*
 * Fill the shadows of every target in keyset batches (fill.h): each table,
 * or each of its key ranges with --jobs, with its own migration_log row.
 */
static int
fill_targets(UuidJob *job, const Options *opts, json_t *meta)
{
	FillTable *tables = xcalloc((size_t) job->n, sizeof *tables);
	char **labels = xcalloc((size_t) job->n, sizeof *labels);
	int rc;

	for (int i = 0; i < job->n; i++)
	{
		labels[i] = str_printf("fill %s", job->t[i].regname);
		tables[i] = (FillTable) {.label = labels[i], .batch = fill_batch(job, &job->t[i])};
	}
	rc = fill_tables(job->run, tables, job->n, opts);
	for (int i = 0; i < job->n; i++)
	{
		FillTable *t = &tables[i];

		json_object_set_new(meta, job->t[i].regname,
							json_pack("{s:I, s:I, s:f, s:f, s:I}", "rows_filled", (json_int_t) t->changed, "batches",
									  (json_int_t) t->batches, "seconds", t->seconds, "rows_per_second",
									  t->seconds > 0 ? t->rows_done / t->seconds : 0.0, "rows", (json_int_t) t->rows_done));
		free(labels[i]);
		free((char *) t->batch.columns);	/* fill_batch's */
		free((char *) t->batch.steps);
	}
	free(tables), free(labels);
	return rc;
}

static int
uuid_apply2(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	Findings f;
	json_t *meta = json_object();
	int rc = EXIT_DONE;

	if (!uuid_job_load(&job, run, op))
	{
		json_decref(meta);
		return EXIT_FAILED;
	}
	/* 1. sort the values, find orphans and collisions: refuse before any write */
	findings_init(&f);
	if (classify(&job, &f, meta, opts->regenerate_invalid) > 0)
	{
		findings_print(&f);
		log_error("phase2 stopped before writing anything");
		if (json_integer_value(json_object_get(meta, "invalid")) > 0 && !opts->regenerate_invalid)
			log_hint("fix those keys, or give each a new random uuid with --on-invalid=regenerate "
					 "(their children follow)");
		json_object_set_new(meta, "findings", findings_json(&f));
		run->op_message = xstrdup("invalid values or orphans");
		rc = EXIT_REFUSED;
	}
	findings_free(&f);
	/* 2. new random uuids for invalid keys, kept in the map (children follow their parent) */
	if (rc == EXIT_DONE && opts->regenerate_invalid)
	{
		UuidTarget *k = &job.t[0];
		char *sql = str_printf("INSERT INTO %s (old, new) SELECT %s::text, gen_random_uuid() FROM %s "
							   "WHERE %s(%s::text) IS NULL ON CONFLICT (old) DO NOTHING",
							   job.map, k->q_col, k->table, job.try_fn, k->q_col);
		PGresult *res = db_query(run->conn, sql, 0, NULL);

		log_info("regenerated %s invalid keys (old -> new in %s)", PQcmdTuples(res), job.map);
		json_object_set_new(meta, "regenerated", json_integer(atoll(PQcmdTuples(res))));
		PQclear(res);
		free(sql);
	}
	/* 3. fill the key's shadow and each child's, in batches with checkpoints (--jobs: at once) */
	if (rc == EXIT_DONE)
		rc = fill_targets(&job, opts, meta);
	run->op_metadata = json_dumps(meta, JSON_COMPACT);
	json_decref(meta);
	uuid_job_free(&job);
	return rc;
}

int
uuid_undo_batches(UuidJob *job, const Options *opts, int i, const char *label, const char *column,
				  const char *value, const char *cond)
{
	const UuidTarget *t = &job->t[i];
	BatchLoop b = {.what = label};
	char *sql[2];
	char *count = str_printf("SELECT count(*) FROM %s t WHERE %s", t->table, cond);
	int rc;

	/* the rows it will walk, for status's progress and time left */
	b.rows_total = db_count(job->run->conn, count, 0, NULL);
	free(count);

	{
		char *steps = str_printf("f AS (UPDATE %s t SET %s = %s FROM b WHERE t.%s = b.key AND (%s) RETURNING 1)",
								 t->table, column, value, t->q_key, cond);
		KeysetBatch k = {.table = t->table, .key = t->q_key, .filter = cond, .lock = true, .steps = steps,
						 .changed = "f"};

		/* [0] the first batch, [1] the next ones ($2: the previous batch's last key) */
		sql[0] = keyset_batch_sql(&k, true);
		sql[1] = keyset_batch_sql(&k, false);
		free(steps);
	}
	b.sql_first = sql[0];
	b.sql_next = sql[1];
	rc = ops_undo_batches(job->run, opts, label, &b);
	free(sql[0]), free(sql[1]);
	return rc;
}

static int
uuid_rollback2(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	int rc = EXIT_DONE;

	if (!mlog_is_registered(run->conn, run->plan, "uuid_pk", op->column))
		return EXIT_DONE;
	if (!uuid_job_load(&job, run, op))
		return EXIT_FAILED;
	/*
	 * 1. the regenerated keys stay in the map (a uuid handed to a row stays
	 * its own, DESIGN.md invariant 3) unless told to forget them; then the
	 * forward triggers give every row the application writes its text as uuid
	 */
	if (opts->discard_generated_uids)
	{
		char *sql = str_printf("DELETE FROM %s", job.map);

		log_info("--discard-generated-uids: forgetting the regenerated keys in %s", job.map);
		db_exec(run->conn, sql);
		free(sql);
	}
	/*
	 * 2. then the rows already there, in resumable batches: the key first,
	 * so a child written meanwhile copies a parent already put back; each
	 * shadow gets what the forward trigger would give it
	 */
	for (int i = 0; i < job.n && rc == EXIT_DONE; i++)
	{
		UuidTarget *t = &job.t[i];
		char *label = str_printf("reset shadow %s", t->regname);
		char *value = str_printf("coalesce((SELECT m.new FROM %s m WHERE m.old = t.%s::text), %s(t.%s::text))",
								 job.map, t->q_col, job.try_fn, t->q_col);
		char *cond = str_printf("t.%s IS DISTINCT FROM %s", t->q_shadow, value);

		rc = uuid_undo_batches(&job, opts, i, label, t->q_shadow, value, cond);
		free(label), free(value), free(cond);
	}
	uuid_job_free(&job);
	return rc;
}

const OpHandlers op_convert_to_uuid = {
	.apply = {[1] = uuid_apply1, [2] = uuid_apply2, [3] = uuid_swap},
	.rollback = {[1] = uuid_rollback1, [2] = uuid_rollback2, [3] = uuid_unswap},
	.check = uuid_check,
	.finalize = uuid_finalize,
};
