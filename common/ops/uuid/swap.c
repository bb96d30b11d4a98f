/*
 * op_uuid_swap.c: convert_to_uuid, phase3.  The checks; the swap in one short
 * transaction (foreign keys and primary key dropped, each column renamed to
 * <name>_legacy and each shadow to <name>, primary key USING INDEX, foreign
 * keys back NOT VALID with their names and actions, reverse triggers keeping
 * the legacy columns filled) and one validation per foreign key; finalize,
 * which drops the legacy columns after saving them; and the exact undo of both.
 */
#include <jansson.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "engine/catalog.h"
#include "core/db.h"
#include "core/log.h"
#include "ops/uuid/uuid.h"
#include "core/strbuf.h"

typedef struct Stmts
{
	char **s;
	int n;
} Stmts;

static void
add(Stmts *st, char *sql)
{
	st->s = xrealloc(st->s, (size_t) (st->n + 1) * sizeof(char *));
	st->s[st->n++] = sql;
}

static int
run_stmts(Run *run, const char *what, Stmts *st)
{
	int rc = ops_ddl(run, what, (const char *const *) st->s, st->n);

	for (int i = 0; i < st->n; i++)
		free(st->s[i]);
	free(st->s);
	st->s = NULL;
	st->n = 0;
	return rc;
}

static char *
column_default(Run *run, const char *table, const char *column)
{
	const char *p[2] = {table, column};

	return db_value(run->conn, "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
					"JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
					"WHERE d.adrelid = $1::regclass AND a.attname = $2", 2, p);
}

/* A text default such as (gen_random_uuid())::text becomes gen_random_uuid(); others are cast. */
static char *
uuid_default(const char *text_default)
{
	regex_t re;
	regmatch_t m[2];
	char *out;

	regcomp(&re, "^\\((.*)\\)::(text|character varying)$", REG_EXTENDED);
	if (regexec(&re, text_default, 2, m, 0) == 0)
		out = str_printf("%.*s", (int) (m[1].rm_eo - m[1].rm_so), text_default + m[1].rm_so);
	else
		out = str_printf("(%s)::uuid", text_default);
	regfree(&re);
	return out;
}

/*
 * Views on any converted column, each with the statements that recreate it as
 * it is (options, owner, grants, comment), one JSON array.  A view other
 * views depend on, or a materialized view, is reported in *blocked instead.
 */
static json_t *
dependent_views(const UuidJob *job, char **blocked)
{
	Run *run = job->run;
	json_t *views = json_array();
	StrBuf tables;
	char *sql;
	PGresult *res;

	sb_init(&tables);
	for (int i = 0; i < job->n; i++)
	{
		char *lt = PQescapeLiteral(run->conn, job->t[i].table, strlen(job->t[i].table));
		char *lc = PQescapeLiteral(run->conn, job->t[i].column, strlen(job->t[i].column));

		sb_printf(&tables, "%s(%s::regclass, %s)", i ? ", " : "", lt, lc);
		PQfreemem(lt), PQfreemem(lc);
	}
	sql = str_printf(
		"WITH cols(rel, col) AS (VALUES %s), "
		"v AS (SELECT DISTINCT r.ev_class AS oid FROM cols JOIN pg_catalog.pg_attribute a ON a.attrelid = cols.rel "
		"  AND a.attname = cols.col JOIN pg_catalog.pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum "
		"  JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
		"  WHERE r.rulename = '_RETURN') "
		"SELECT v.oid::regclass::text, c.relkind, "
		" format('CREATE VIEW %%s%%s AS %%s', v.oid::regclass, coalesce(' WITH (' || array_to_string(c.reloptions, ', ') || ')', ''), "
		"   pg_catalog.pg_get_viewdef(v.oid)), "
		" format('ALTER VIEW %%s OWNER TO %%I', v.oid::regclass, pg_catalog.pg_get_userbyid(c.relowner)), "
		" (SELECT string_agg(format('GRANT %%s ON %%s TO %%s', g.privilege_type, v.oid::regclass, CASE WHEN g.grantee = 0 "
		"   THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END), '; ') "
		"   FROM aclexplode(c.relacl) g WHERE g.grantee <> c.relowner), "
		" (SELECT format('COMMENT ON VIEW %%s IS %%L', v.oid::regclass, description) FROM pg_catalog.pg_description "
		"   WHERE objoid = v.oid AND classoid = 'pg_catalog.pg_class'::regclass AND objsubid = 0), "
		" EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON d.objid = r.oid "
		"   AND d.classid = 'pg_catalog.pg_rewrite'::regclass WHERE d.refobjid = v.oid AND r.ev_class <> v.oid) "
		"FROM v JOIN pg_catalog.pg_class c ON c.oid = v.oid ORDER BY 1", tables.data);
	res = db_query(run->conn, sql, 0, NULL);
	*blocked = NULL;
	for (int r = 0; r < PQntuples(res); r++)
	{
		if (PQgetvalue(res, r, 1)[0] != 'v' || PQgetvalue(res, r, 6)[0] == 't')
		{
			char *prev = *blocked;

			*blocked = str_printf("%s%s%s (%s)", prev ? prev : "", prev ? ", " : "", PQgetvalue(res, r, 0),
								  PQgetvalue(res, r, 1)[0] != 'v' ? "materialized view" : "other views depend on it");
			free(prev);
			continue;
		}
		json_array_append_new(views, json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "name", PQgetvalue(res, r, 0),
											   "create", PQgetvalue(res, r, 2), "owner", PQgetvalue(res, r, 3),
											   "grants", PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4),
											   "comment", PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5)));
	}
	PQclear(res);
	free(sql);
	sb_free(&tables);
	return views;
}

/*
 * The swap's first statement: every table it alters, in one LOCK TABLE, the
 * plan's table first and the views last.  Taking them all before any ALTER
 * means the transaction waits (under lock_timeout) only here, holding nothing
 * it has changed; and the key table before its children is the order in which
 * the application locks them when it inserts a user and then its rows.  Were
 * the ALTERs left to lock table by table, the first DROP CONSTRAINT would hold
 * a child while waiting for the users table, and an application transaction
 * holding users and then writing to that child would deadlock with it.
 */
/*
 * No order avoids every deadlock, though: an application transaction that
 * wrote a child and then queues behind the swap's request for users is
 * waiting on the swap, which once it has users waits on that child.  The
 * server aborts whichever of the two runs its deadlock check first, and the
 * application, waiting longer, would be the one.  So the LOCK as a whole
 * waits less than deadlock_timeout (each table its share): an application
 * transaction queued behind it checks only after the swap has its locks or
 * has given up, and the swap retries, never the application.
 */
static void
add_lock_tables(Stmts *st, const UuidJob *job, json_t *views)
{
	StrBuf list;
	size_t i;
	json_t *v;
	int tables = 0;
	long long deadlock_ms = db_count(job->run->conn, "SELECT setting::bigint FROM pg_catalog.pg_settings "
									 "WHERE name = 'deadlock_timeout'", 0, NULL);
	long long per_table;

	sb_init(&list);
	for (int t = 0; t < job->n; t++)
	{
		bool seen = false;

		for (int u = 0; u < t && !seen; u++)
			seen = strcmp(job->t[u].table, job->t[t].table) == 0;
		if (!seen)
			sb_printf(&list, "%s%s", tables++ ? ", " : "", job->t[t].table);
	}
	json_array_foreach(views, i, v)
	{
		sb_printf(&list, ", %s", json_string_value(json_object_get(v, "name")));
		tables++;
	}
	per_table = (deadlock_ms - 100) / tables;
	if (per_table > db_get_retry()->lock_timeout_ms)
		per_table = db_get_retry()->lock_timeout_ms;
	if (per_table < 20)
		per_table = 20;
	add(st, str_printf("SET LOCAL lock_timeout = %lld", per_table));
	add(st, str_printf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", list.data));
	sb_free(&list);
}

static void
add_view_drops(Stmts *st, json_t *views)
{
	size_t i;
	json_t *v;

	json_array_foreach(views, i, v)
		add(st, str_printf("DROP VIEW %s", json_string_value(json_object_get(v, "name"))));
}

static void
add_view_creates(Stmts *st, json_t *views)
{
	size_t i;
	json_t *v;
	static const char *const keys[] = {"create", "owner", "grants", "comment", NULL};

	json_array_foreach(views, i, v)
		for (int k = 0; keys[k]; k++)
			if (json_is_string(json_object_get(v, keys[k])))
				add(st, xstrdup(json_string_value(json_object_get(v, keys[k]))));
}

static bool
swapped(const UuidJob *job)
{
	return uuid_is_registered(job, "uuid_swapped");
}

/* ---------- checks ---------- */

/* Rows of target T matching COND (over its columns, unqualified), with sample keys. */
static long long
target_rows_where(Run *run, Findings *f, const char *check, const UuidTarget *t, const char *from, const char *cond)
{
	char *sql = str_printf("SELECT (SELECT count(*) FROM %s WHERE %s), (SELECT string_agg(quote_literal(k), ', ') "
						   "FROM (SELECT c.%s::text AS k FROM %s WHERE %s ORDER BY 1 LIMIT %d) s)",
						   from, cond, t->q_key, from, cond, SAMPLE_LIMIT);
	long long n = findings_query(run, f, check, t->regname, sql);

	free(sql);
	return n;
}

/* One row check of a target: what it finds, and its condition over the target's row c. */
typedef struct RowCheck
{
	const char *check;
	char *cond;
} RowCheck;

#define MAX_ROW_CHECKS 4

/*
 * Every row check of target T in one pass over its table (EXTRA, if not
 * NULL, is one more aggregate of that pass, returned in *extra); the samples
 * are read, by a second pass, only for a check that found rows.  Frees the
 * conditions.  Returns the rows found.
 */
static long long
target_checks(Run *run, Findings *f, const UuidTarget *t, const char *from, RowCheck *checks, int n,
			  const char *extra, long long *extra_out)
{
	StrBuf sb;
	PGresult *res;
	long long problems = 0;

	sb_init(&sb);
	sb_append(&sb, "SELECT ");
	for (int i = 0; i < n; i++)
		sb_printf(&sb, "%scount(*) FILTER (WHERE %s)", i ? ", " : "", checks[i].cond);
	sb_printf(&sb, ", %s FROM %s", extra ? extra : "0", from);
	res = db_query(run->conn, sb.data, 0, NULL);
	for (int i = 0; i < n; i++)
	{
		if (atoll(PQgetvalue(res, 0, i)) > 0)
			problems += target_rows_where(run, f, checks[i].check, t, from, checks[i].cond);
		free(checks[i].cond);
	}
	if (extra_out)
		*extra_out = atoll(PQgetvalue(res, 0, n));
	PQclear(res);
	sb_free(&sb);
	return problems;
}

long long
uuid_check(Run *run, const Op *op, Findings *f)
{
	UuidJob job;
	long long problems = 0;
	UuidTarget *k;

	if (!mlog_is_registered(run->conn, run->plan, "uuid_pk", op->column))
	{
		findings_add(f, "not prepared", op->column, 1, "phase1 and phase2 have not run for this column");
		return 1;
	}
	if (!uuid_job_load(&job, run, op))
		return 1;
	if (swapped(&job))
	{
		uuid_job_free(&job);
		return 0;
	}
	k = &job.t[0];
	/* each table read once for all its row checks; the key's duplicates counted in the same pass */
	for (int i = 0; i < job.n; i++)
	{
		UuidTarget *t = &job.t[i];
		RowCheck checks[MAX_ROW_CHECKS];
		int n = 0;
		long long duplicates = 0;

		checks[n++] = (RowCheck) {"not converted (shadow NULL, original not)",
			str_printf("c.%s IS NOT NULL AND c.%s IS NULL", t->q_col, t->q_shadow)};
		/*
		 * a shadow that is set but no longer says what its original says: a
		 * write the triggers did not see (session_replication_role = replica,
		 * triggers disabled), which the swap would otherwise make the truth
		 */
		if (i == 0)
		{
			checks[n++] = (RowCheck) {"shadow differs from its original",
				str_printf("c.%s IS NOT NULL AND c.%s IS DISTINCT FROM coalesce((SELECT m.new FROM %s m "
						   "WHERE m.old = c.%s::text), %s(c.%s::text))",
						   t->q_shadow, t->q_shadow, job.map, t->q_col, job.try_fn, t->q_col)};
			checks[n++] = (RowCheck) {"invalid uuid",
				str_printf("c.%s IS NOT NULL AND %s(c.%s::text) IS NULL AND NOT EXISTS (SELECT 1 FROM %s m "
						   "WHERE m.old = c.%s::text)", t->q_col, job.try_fn, t->q_col, job.map, t->q_col)};
		}
		else
		{
			/* p: the parent by the original key; ps: a parent with that shadow (both at most one row) */
			checks[n++] = (RowCheck) {"shadow differs from its original",
				str_printf("c.%s IS NOT NULL AND (c.%s IS NULL OR (p.%s IS NOT NULL AND p.%s IS DISTINCT FROM c.%s))",
						   t->q_shadow, t->q_col, k->q_col, k->q_shadow, t->q_shadow)};
			checks[n++] = (RowCheck) {"orphan", str_printf("c.%s IS NOT NULL AND ps.v IS NULL", t->q_shadow)};
		}
		if (i == 0)
		{
			char *extra = str_printf("count(c.%s) - count(DISTINCT c.%s)", t->q_shadow, t->q_shadow);
			char *from = str_printf("%s c", t->table);

			problems += target_checks(run, f, t, from, checks, n, extra, &duplicates);
			free(extra), free(from);
		}
		else
		{
			/*
			 * joins, hashed or merged: the shadows have no index before
			 * phase3 apply builds them, and a probe per child row of an
			 * unindexed parent would be quadratic
			 */
			char *from = str_printf("%s c LEFT JOIN %s p ON p.%s = c.%s LEFT JOIN (SELECT DISTINCT %s AS v FROM %s "
									"WHERE %s IS NOT NULL) ps ON ps.v = c.%s",
									t->table, k->table, k->q_col, t->q_col, k->q_shadow, k->table, k->q_shadow,
									t->q_shadow);

			problems += target_checks(run, f, t, from, checks, n, NULL, NULL);
			free(from);
		}
		if (duplicates > 0)
		{
			char *sql = str_printf("WITH d AS (SELECT %s AS u, string_agg(quote_literal(%s), ' and ' ORDER BY %s) AS keys "
								   "FROM %s WHERE %s IS NOT NULL GROUP BY 1 HAVING count(*) > 1) "
								   "SELECT (SELECT count(*) FROM d), (SELECT string_agg(keys, '; ') FROM (SELECT keys FROM d LIMIT 10) s)",
								   k->q_shadow, k->q_col, k->q_col, k->table, k->q_shadow);

			problems += findings_query(run, f, "duplicate", k->regname, sql);
			free(sql);
		}
		if (!op->recreate_views)
		{
			char *deps = catalog_dependents(run->conn, t->table, t->column, false);

			if (deps)
			{
				findings_add(f, "dependent_object", t->regname, 1, deps);
				problems++;
			}
			free(deps);
		}
	}
	if (op->recreate_views)
	{
		char *blocked = NULL;
		json_t *views = dependent_views(&job, &blocked);

		if (blocked)
		{
			findings_add(f, "dependent_object", "views that cannot be recreated", 1, blocked);
			problems++;
		}
		free(blocked);
		json_decref(views);
		for (int i = 0; i < job.n; i++)
		{
			char *deps = catalog_dependents(run->conn, job.t[i].table, job.t[i].column, false);

			/* only views are recreated: a rule or policy still refuses */
			if (deps && (strstr(deps, "rule ") || strstr(deps, "policy ")))
			{
				findings_add(f, "dependent_object", job.t[i].regname, 1, deps);
				problems++;
			}
			free(deps);
		}
	}
	uuid_job_free(&job);
	return problems;
}

/* ---------- the swap and its undo ---------- */

static void
add_foreign_keys(Stmts *st, const UuidJob *job, bool drop)
{
	for (int i = 1; i < job->n; i++)
	{
		const UuidTarget *t = &job->t[i];
		char *qc = db_ident(job->run->conn, t->constraint);

		add(st, drop ? str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", t->table, qc)
			: str_printf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", t->table, qc, t->fk_def));
		free(qc);
	}
}

static int
validate_foreign_keys(Run *run, const UuidJob *job)
{
	int rc = EXIT_DONE;

	for (int i = 1; i < job->n && rc == EXIT_DONE; i++)
	{
		char *qc;

		/* one the application left NOT VALID stays so */
		if (!job->t[i].fk_validated)
			continue;
		qc = db_ident(run->conn, job->t[i].constraint);
		log_info("validating foreign key %s of %s", qc, job->t[i].table);
		rc = ops_validate(run, job->t[i].table, qc);
		free(qc);
	}
	return rc;
}

/* Rename the original indexes to their legacy names and the mirrors to the original names, or back. */
static void
add_index_renames(Stmts *st, const UuidJob *job, bool forward)
{
	Run *run = job->run;

	for (int i = 0; i < job->n_ix; i++)
	{
		const UuidIndex *x = &job->ix[i];
		char *qname = db_ident(run->conn, x->name);
		char *qlegacy = db_ident(run->conn, x->legacy);
		char *qmirror = db_ident(run->conn, x->mirror);

		if (x->constraint && forward)
		{
			add(st, str_printf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", x->table, qname, qlegacy));
			add(st, str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", x->table, qname, qmirror));
		}
		else if (x->constraint)
		{
			add(st, str_printf("ALTER TABLE %s DROP CONSTRAINT %s", x->table, qname));
			add(st, str_printf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", x->table, qlegacy, qname));
		}
		else
		{
			char *iname = ops_qualified_index(run, x->table, x->name);
			char *imirror = ops_qualified_index(run, x->table, forward ? x->mirror : x->legacy);

			if (forward)
			{
				add(st, str_printf("ALTER INDEX %s RENAME TO %s", iname, qlegacy));
				add(st, str_printf("ALTER INDEX %s RENAME TO %s", imirror, qname));
			}
			else
			{
				add(st, str_printf("ALTER INDEX %s RENAME TO %s", iname, qmirror));
				add(st, str_printf("ALTER INDEX %s RENAME TO %s", imirror, qname));
			}
			free(iname), free(imirror);
		}
		free(qname), free(qlegacy), free(qmirror);
	}
}

/*
 * What the swap and the swap back both do first, in their one transaction:
 * lock every table, drop the views saved around it, the foreign keys, the
 * triggers of the side being left and the primary key, and trade the index
 * names (forward: originals become legacy, mirrors take their names).
 */
static void
add_swap_teardown(Stmts *st, const UuidJob *job, json_t *views, bool forward)
{
	char *qpk = db_ident(job->run->conn, job->pk_name);

	add_lock_tables(st, job, views);
	add_view_drops(st, views);
	add_foreign_keys(st, job, true);
	for (int i = 0; i < job->n; i++)
		add(st, uuid_drop_trigger_sql(job, i, !forward));
	add(st, str_printf("ALTER TABLE %s DROP CONSTRAINT %s", job->t[0].table, qpk));
	add_index_renames(st, job, forward);
	free(qpk);
}

/*
 * And what both do last, once the columns are renamed: the primary key back
 * with its name on the index of the side now in use, the foreign keys NOT
 * VALID with their names and actions, the triggers that keep the other side
 * filled, and the saved views.
 */
static void
add_swap_rebuild(Stmts *st, const UuidJob *job, json_t *views, bool forward)
{
	char *qpk = db_ident(job->run->conn, job->pk_name);
	char *qindex = db_ident(job->run->conn, forward ? job->pk_mirror : job->pk_legacy);

	add(st, str_printf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s", job->t[0].table, qpk, qindex));
	add_foreign_keys(st, job, false);
	for (int i = 0; i < job->n; i++)
	{
		char *fn, *trig;

		uuid_trigger_sql(job, i, forward, &fn, &trig);
		add(st, fn);
		add(st, trig);
	}
	add_view_creates(st, views);
	free(qpk), free(qindex);
}

int
uuid_swap(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	Stmts st = {0};
	int rc = EXIT_DONE;
	json_t *views = NULL;

	(void) opts;
	if (!uuid_job_load(&job, run, op))
		return EXIT_FAILED;
	if (swapped(&job))
	{
		/* a run that stopped after the swap committed may have left foreign keys to validate */
		log_info("%s is already native uuid", job.t[0].regname);
		rc = validate_foreign_keys(run, &job);
		uuid_job_free(&job);
		return rc;
	}
	/* 1. the indexes the swap adopts (rebuilt if a rollback dropped them) */
	rc = uuid_build_mirrors(&job);
	/* 2. NOT NULL on the shadows through validated CHECKs, before the exclusive locks */
	for (int i = 0; i < job.n && rc == EXIT_DONE; i++)
		if (i == 0 || job.t[i].not_null)
			rc = ops_enforce_not_null_on(run, job.t[i].table, job.t[i].shadow);
	if (rc != EXIT_DONE)
		goto done;

	/* 3. the swap, in one transaction under lock_timeout with retry */
	if (op->recreate_views)
	{
		char *blocked = NULL;

		views = dependent_views(&job, &blocked);
		free(blocked);
		if (json_array_size(views) > 0)
		{
			char *text = json_dumps(views, JSON_COMPACT);
			const char *params[3] = {run->plan->name, op->column, text};

			/* the definitions as they were, for the rollback */
			db_execp(run->conn, "INSERT INTO migration_backup.phasemig_objects (plan, kind, name, phase, detail) "
					 "VALUES ($1, 'uuid_views', $2, 3, $3::jsonb) ON CONFLICT (plan, kind, name) DO UPDATE "
					 "SET detail = EXCLUDED.detail", 3, params);
			free(text);
			log_info("recreating %zu dependent views around the swap", json_array_size(views));
		}
	}
	add_swap_teardown(&st, &job, views, true);
	for (int i = 0; i < job.n; i++)
	{
		UuidTarget *t = &job.t[i];
		char *def = column_default(run, t->table, t->column);

		add(&st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_col, t->q_legacy));
		add(&st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_shadow, t->q_col));
		if (def)
		{
			char *conv = uuid_default(def);

			add(&st, str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t->table, t->q_col, conv));
			free(conv);
		}
		free(def);
	}
	add_swap_rebuild(&st, &job, views, true);
	add(&st, mlog_register_sql(run->plan, 3, "uuid_swapped", op->column));
	log_info("swapping %d columns to uuid in one transaction", job.n);
	db_ddl_stats_reset();
	rc = run_stmts(run, "the swap", &st);
	if (rc == EXIT_DONE)
	{
		log_info("swap committed; its locks were held %.0f ms", db_ddl_stats().longest_attempt_ms);
		/* 4. each foreign key validated in its own transaction (SHARE UPDATE EXCLUSIVE) */
		rc = validate_foreign_keys(run, &job);
	}
done:
	json_decref(views);
	uuid_job_free(&job);
	return rc;
}

static int uuid_unfinalize(Run *run, UuidJob *job, const Options *opts);

static int
drop_reverse_functions(Run *run, const UuidJob *job)
{
	Stmts st = {0};

	for (int i = 0; i < job->n; i++)
	{
		char *name = uuid_fn_name(job, "rev", i);

		add(&st, str_printf("DROP FUNCTION IF EXISTS %s()", name));
		free(name);
	}
	return run_stmts(run, "dropping reverse trigger functions", &st);
}

int
uuid_unswap(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	Stmts st = {0};
	int rc = EXIT_DONE;
	UuidTarget *k;
	json_t *views = NULL;

	if (!mlog_is_registered(run->conn, run->plan, "uuid_pk", op->column))
		return EXIT_DONE;
	if (!uuid_job_load(&job, run, op))
		return EXIT_FAILED;
	k = &job.t[0];
	if (uuid_is_registered(&job, "uuid_finalized") && (rc = uuid_unfinalize(run, &job, opts)) != EXIT_DONE)
		goto done;
	if (!swapped(&job))
	{
		/*
		 * An apply that stopped before the swap may have set NOT NULL (or left
		 * its CHECK) on shadows; a swap back that stopped after its commit
		 * may have left foreign keys to validate and reverse functions.
		 */
		for (int i = 0; i < job.n; i++)
		{
			char *check = ops_not_null_check_name(run->plan, job.t[i].shadow);
			char *qcheck = db_ident(run->conn, check);

			add(&st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", job.t[i].table, job.t[i].q_shadow));
			add(&st, str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", job.t[i].table, qcheck));
			free(check), free(qcheck);
		}
		rc = run_stmts(run, "dropping NOT NULL of the shadows", &st);
		if (rc == EXIT_DONE)
			rc = validate_foreign_keys(run, &job);
		if (rc == EXIT_DONE)
			rc = drop_reverse_functions(run, &job);
		goto done;
	}
	/* 1. a unique index on the legacy key, to become the primary key again */
	if ((rc = ops_build_index_on(run, k->table, job.pk_legacy, k->q_legacy, true)) != EXIT_DONE)
		goto done;
	/* 2. the swap backwards, in one transaction; saved views are recreated as they were */
	{
		const char *params[2] = {run->plan->name, op->column};
		char *text = db_value(run->conn, "SELECT detail::text FROM migration_backup.phasemig_objects WHERE plan = $1 "
							  "AND kind = 'uuid_views' AND name = $2", 2, params);

		views = text ? json_loads(text, 0, NULL) : NULL;
		free(text);
	}
	add_swap_teardown(&st, &job, views, false);
	for (int i = 0; i < job.n; i++)
	{
		UuidTarget *t = &job.t[i];

		add(&st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", t->table, t->q_col));
		add(&st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t->table, t->q_col));
		add(&st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_col, t->q_shadow));
		add(&st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_legacy, t->q_col));
	}
	add_swap_rebuild(&st, &job, views, false);
	{
		const char *params[2] = {run->plan->name, op->column};
		char *lit_plan = PQescapeLiteral(run->conn, params[0], strlen(params[0]));
		char *lit_col = PQescapeLiteral(run->conn, params[1], strlen(params[1]));

		add(&st, str_printf("DELETE FROM migration_backup.phasemig_objects WHERE plan = %s AND kind IN "
							"('uuid_swapped', 'uuid_views') AND name = %s", lit_plan, lit_col));
		PQfreemem(lit_plan), PQfreemem(lit_col);
	}
	log_info("swapping %d columns back to text in one transaction", job.n);
	if ((rc = run_stmts(run, "the swap back", &st)) != EXIT_DONE)
		goto done;
	/* 3. foreign keys validated one by one; the reverse functions are not needed any more */
	rc = validate_foreign_keys(run, &job);
	if (rc == EXIT_DONE)
		rc = drop_reverse_functions(run, &job);
done:
	json_decref(views);
	uuid_job_free(&job);
	return rc;
}

/* ---------- finalize and its undo ---------- */

int
uuid_finalize(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	Stmts st = {0};
	int rc = EXIT_DONE;
	UuidTarget *k;
	json_t *cols = json_array();

	(void) opts;
	if (!uuid_job_load(&job, run, op))
		return EXIT_FAILED;
	if (uuid_is_registered(&job, "uuid_finalized"))
	{
		log_info("already finalized");
		goto done;
	}
	if (!swapped(&job))
	{
		log_error("phase3 apply has not swapped %s yet; nothing to finalize", job.t[0].regname);
		rc = EXIT_FAILED;
		goto done;
	}
	k = &job.t[0];
	/* 1. every legacy value into migration_backup (a child's legacy value is its parent's) */
	{
		char *create = str_printf("CREATE TABLE IF NOT EXISTS %s (new uuid PRIMARY KEY, legacy text NOT NULL)",
								  job.legacy_backup);
		char *copy = str_printf("INSERT INTO %s (new, legacy) SELECT %s, %s::text FROM %s "
								"ON CONFLICT (new) DO UPDATE SET legacy = EXCLUDED.legacy",
								job.legacy_backup, k->q_col, k->q_legacy, k->table);

		db_exec(run->conn, create);
		log_info("saving the legacy keys into %s", job.legacy_backup);
		db_exec(run->conn, copy);
		free(create), free(copy);
	}
	/* 2. drop the reverse triggers and the legacy columns, recording their definitions */
	add_lock_tables(&st, &job, NULL);
	for (int i = 0; i < job.n; i++)
	{
		UuidTarget *t = &job.t[i];
		const char *p[2] = {t->table, t->legacy};
		PGresult *res = db_query(run->conn, "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
								 "pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attribute a "
								 "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
								 "WHERE a.attrelid = $1::regclass AND a.attname = $2", 2, p);
		json_t *c = json_pack("{s:s, s:b}", "type", PQgetvalue(res, 0, 0), "not_null", PQgetvalue(res, 0, 1)[0] == 't');

		if (!PQgetisnull(res, 0, 2))
			json_object_set_new(c, "default", json_string(PQgetvalue(res, 0, 2)));
		json_array_append_new(cols, c);
		PQclear(res);
		add(&st, uuid_drop_trigger_sql(&job, i, true));
		add(&st, str_printf("ALTER TABLE %s DROP COLUMN %s", t->table, t->q_legacy));
	}
	{
		char *detail = json_dumps(cols, JSON_COMPACT);
		char *lit = PQescapeLiteral(run->conn, detail, strlen(detail));
		char *lp = PQescapeLiteral(run->conn, run->plan->name, strlen(run->plan->name));
		char *lc = PQescapeLiteral(run->conn, op->column, strlen(op->column));

		add(&st, str_printf("INSERT INTO migration_backup.phasemig_objects (plan, kind, name, phase, detail) "
							"VALUES (%s, 'uuid_finalized', %s, 3, %s::jsonb)", lp, lc, lit));
		PQfreemem(lit), PQfreemem(lp), PQfreemem(lc);
		free(detail);
	}
	log_info("dropping the %d legacy columns", job.n);
	rc = run_stmts(run, "dropping the legacy columns", &st);
done:
	json_decref(cols);
	uuid_job_free(&job);
	return rc;
}

static int
uuid_unfinalize(Run *run, UuidJob *job, const Options *opts)
{
	const char *params[2] = {run->plan->name, job->op->column};
	char *detail = db_value(run->conn, "SELECT detail::text FROM migration_backup.phasemig_objects WHERE plan = $1 "
							"AND kind = 'uuid_finalized' AND name = $2", 2, params);
	json_t *cols = detail ? json_loads(detail, 0, NULL) : NULL;
	UuidTarget *k = &job->t[0];
	Stmts st = {0};
	int rc = EXIT_DONE;

	free(detail);
	if (!json_is_array(cols) || (int) json_array_size(cols) != job->n)
	{
		log_error("the record of the finalized legacy columns is missing or damaged");
		json_decref(cols);
		return EXIT_FAILED;
	}
	/*
	 * 1. the legacy columns back, nullable, with the reverse triggers in the
	 * same transaction: every row the application writes from then on gets
	 * its legacy value at once
	 */
	add_lock_tables(&st, job, NULL);
	for (int i = 0; i < job->n; i++)
		add(&st, str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", job->t[i].table, job->t[i].q_legacy,
							json_string_value(json_object_get(json_array_get(cols, (size_t) i), "type"))));
	for (int i = 0; i < job->n; i++)
	{
		char *fn, *trig;

		uuid_trigger_sql(job, i, true, &fn, &trig);
		add(&st, fn);
		add(&st, trig);
	}
	if ((rc = run_stmts(run, "adding the legacy columns back", &st)) != EXIT_DONE)
		goto done;
	/*
	 * 2. the legacy values of the rows already there, in resumable batches
	 * that lock only the rows they fill: the keys from the backup (a user
	 * written since finalize has none: its text is its uuid), then each
	 * child's from its parent, once every parent has its value
	 */
	{
		char *value = str_printf("coalesce((SELECT l.legacy FROM %s l WHERE l.new = t.%s), t.%s::text)",
								 job->legacy_backup, k->q_col, k->q_col);
		char *cond = str_printf("t.%s IS NULL", k->q_legacy);
		char *label = str_printf("restore legacy %s", k->regname);

		log_info("restoring the legacy keys from %s", job->legacy_backup);
		rc = uuid_undo_batches(job, opts, 0, label, k->q_legacy, value, cond);
		free(value), free(cond), free(label);
	}
	for (int i = 1; i < job->n && rc == EXIT_DONE; i++)
	{
		UuidTarget *t = &job->t[i];
		char *value = str_printf("(SELECT p.%s FROM %s p WHERE p.%s = t.%s)", k->q_legacy, k->table, k->q_col,
								 t->q_col);
		char *cond = str_printf("t.%s IS NOT NULL AND t.%s IS DISTINCT FROM %s", t->q_col, t->q_legacy, value);
		char *label = str_printf("restore legacy %s", t->regname);

		rc = uuid_undo_batches(job, opts, i, label, t->q_legacy, value, cond);
		free(value), free(cond), free(label);
	}
	/* 3. defaults, NOT NULL, the legacy indexes and constraints */
	for (int i = 0; i < job->n && rc == EXIT_DONE; i++)
	{
		json_t *c = json_array_get(cols, (size_t) i);

		if (json_is_string(json_object_get(c, "default")))
		{
			add(&st, str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", job->t[i].table, job->t[i].q_legacy,
								json_string_value(json_object_get(c, "default"))));
			rc = run_stmts(run, "restoring a default", &st);
		}
		if (rc == EXIT_DONE && json_is_true(json_object_get(c, "not_null")))
			rc = ops_enforce_not_null_on(run, job->t[i].table, job->t[i].legacy);
	}
	for (int i = 0; i < job->n_ix && rc == EXIT_DONE; i++)
	{
		UuidIndex *x = &job->ix[i];

		rc = ops_build_index_on(run, x->table, x->legacy, x->legacy_columns, x->unique);
		if (rc == EXIT_DONE && x->constraint)
		{
			char *q = db_ident(run->conn, x->legacy);
			const char *p[2] = {x->table, x->legacy};

			if (!db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass "
						   "AND conname = $2", 2, p))
			{
				add(&st, str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", x->table, q, q));
				rc = run_stmts(run, "restoring a legacy unique constraint", &st);
			}
			free(q);
		}
	}
	if (rc == EXIT_DONE)
	{
		char *lp = PQescapeLiteral(run->conn, params[0], strlen(params[0]));
		char *lc = PQescapeLiteral(run->conn, params[1], strlen(params[1]));

		add(&st, str_printf("DELETE FROM migration_backup.phasemig_objects WHERE plan = %s AND kind = 'uuid_finalized' "
							"AND name = %s", lp, lc));
		add(&st, str_printf("DROP TABLE IF EXISTS %s", job->legacy_backup));
		PQfreemem(lp), PQfreemem(lc);
		rc = run_stmts(run, "forgetting the finalize", &st);
	}
done:
	json_decref(cols);
	return rc;
}
