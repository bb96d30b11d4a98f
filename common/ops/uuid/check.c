/*
 * check.c: convert_to_uuid's phase3 pre-flight.  Before the swap every row
 * must have its shadow, and the shadow must still say what its original says
 * (a write the triggers did not see would otherwise become the truth); no
 * child may point at a missing parent, no two keys may be one uuid, and
 * nothing but views the job recreates may depend on a converted column.
 * The passes over the tables, the costly part, run one table per --jobs
 * connection (count_targets); the findings are made alone, in order.
 */
#include "engine/registry.h"
#include "ops/uuid/uuid.h"
#include "ops/versions.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/jobs.h"

/* One row check of a target: what it finds, and its condition over the target's row c. */
typedef struct RowCheck
{
	const char *check;
	char *cond;
} RowCheck;

#define MAX_ROW_CHECKS 4

/* Rows of target T matching COND (over its columns, unqualified), with sample keys. */
static long long
target_rows_where(Run *run, Findings *f, const char *check, const UuidTarget *t, const char *from, const char *cond)
{
	StrBuf sql;
	long long n;

	sb_init(&sql);
	sb_printf(&sql, "SELECT (SELECT count(*) FROM %s WHERE %s), ", from, cond);
	sb_printf(&sql, "(SELECT string_agg(k, " FINDINGS_SEP ") FROM (SELECT c.%s::text AS k ", t->q_key);
	sb_printf(&sql, "FROM %s WHERE %s ORDER BY 1 LIMIT %d) s)", from, cond, SAMPLE_LIMIT);
	n = findings_query_keys(run, f, check, t->regname, sql.data);
	sb_free(&sql);
	return n;
}

/*
 * Target T's row checks counted, and the key's duplicates, in one pass over
 * its table: what check_target reports from.  Computed for every target
 * before any is reported, one target per task on --jobs connections
 * (count_task), so it never exits: a failed statement is told and kept.
 */
typedef struct TargetCounts
{
	RowCheck checks[MAX_ROW_CHECKS];
	int n;
	char *from;  /* what the checks read */
	char *extra; /* one more aggregate of the pass (the key's duplicates), or NULL */
	long long counts[MAX_ROW_CHECKS];
	long long extra_count;
	bool ok;
} TargetCounts;

typedef struct CountJobs
{
	UuidJob *job;
	TargetCounts *tc; /* one per target */
} CountJobs;

/* jobs.h's JobTaskFn: target TASK's pass, on RUN's connection (a worker's or the run's own). */
static int
count_task(Run *run, void *ctx, int task)
{
	TargetCounts *c = &((CountJobs *) ctx)->tc[task];
	StrBuf sb;
	PGresult *res;

	/* column i counts checks[i]; the last, "extra" */
	sb_init(&sb);
	sb_append(&sb, "SELECT ");
	for (int i = 0; i < c->n; i++)
		sb_printf(&sb, "count(*) FILTER (WHERE %s), ", c->checks[i].cond);
	sb_printf(&sb, "%s AS extra FROM %s", c->extra ? c->extra : "0", c->from);
	res = db_query_try(run->conn, sb.data, 0, NULL);
	c->ok = db_ok(res) && PQntuples(res) == 1;
	if (c->ok)
	{
		for (int i = 0; i < c->n; i++)
			c->counts[i] = atoll(PQgetvalue(res, 0, i));
		c->extra_count = atoll(PQgetvalue(res, 0, c->n));
	}
	else
		db_report(res, run->conn, sb.data);
	PQclear(res);
	sb_free(&sb);
	return c->ok ? EXIT_DONE : EXIT_FAILED;
}

/*
 * The row checks of target i into CHECKS; returns how many.  A shadow that is
 * set but no longer says what its original says is a write the triggers did
 * not see (session_replication_role = replica, triggers disabled), which the
 * swap would otherwise make the truth.
 */
static int
row_checks(const UuidJob *job, int i, RowCheck *checks)
{
	const UuidTarget *t = &job->t[i];
	const UuidTarget *k = &job->t[0];
	int n = 0;

	checks[n++] = (RowCheck){"not converted (shadow NULL, original not)",
							 str_printf("c.%s IS NOT NULL AND c.%s IS NULL", t->q_col, t->q_shadow)};
	if (i == 0)
	{
		/* m: the key's row in the map, if any (check_target joins it); tu: the text as uuid */
		char *tu = uuid_text_as_uuid_sql(job, "c", t->q_col, t->q_shadow);

		checks[n++] = (RowCheck){
			"shadow differs from its original",
			str_printf("c.%s IS NOT NULL AND c.%s IS DISTINCT FROM coalesce(m.new, %s)", t->q_shadow, t->q_shadow, tu)};
		checks[n++] =
			(RowCheck){"invalid uuid", str_printf("c.%s IS NOT NULL AND m.old IS NULL AND %s IS NULL", t->q_col, tu)};
		free(tu);
	}
	else
	{
		/* p: the parent by the original key; ps: a parent with that shadow (both at most one row) */
		StrBuf differs;

		sb_init(&differs);
		sb_printf(&differs, "c.%s IS NOT NULL AND (c.%s IS NULL OR ", t->q_shadow, t->q_col);
		sb_printf(&differs, "(p.%s IS NOT NULL AND p.%s IS DISTINCT FROM c.%s))", k->q_col, k->q_shadow, t->q_shadow);
		checks[n++] = (RowCheck){"shadow differs from its original", sb_steal(&differs)};
		checks[n++] = (RowCheck){"orphan", str_printf("c.%s IS NOT NULL AND ps.v IS NULL", t->q_shadow)};
	}
	return n;
}

/*
 * What the row checks of child T read: its rows c, each with its parent p by
 * the original key and ps, a parent with its shadow.  Joins, hashed or
 * merged: the shadows have no index before phase3 apply builds them, and a
 * probe per child row of an unindexed parent would be quadratic.
 */
static char *
child_from(const UuidJob *job, const UuidTarget *t)
{
	const UuidTarget *k = &job->t[0];
	StrBuf from;

	sb_init(&from);
	sb_printf(&from, "%s c LEFT JOIN %s p ON p.%s = c.%s ", t->table, k->table, k->q_col, t->q_col);
	sb_printf(&from, "LEFT JOIN (SELECT DISTINCT %s AS v FROM %s WHERE %s IS NOT NULL) ps ", k->q_shadow, k->table,
			  k->q_shadow);
	sb_printf(&from, "ON ps.v = c.%s", t->q_shadow);
	return sb_steal(&from);
}

/* Target i's row checks and (the key) its duplicates into C, for count_task. */
static void
plan_counts(const UuidJob *job, int i, TargetCounts *c)
{
	const UuidTarget *t = &job->t[i];

	c->n = row_checks(job, i, c->checks);
	if (i == 0)
	{
		c->extra = str_printf("count(c.%s) - count(DISTINCT c.%s)", t->q_shadow, t->q_shadow);
		/* the map joined (hashed: it holds only regenerated keys), not probed per row; old is its key */
		c->from = str_printf("%s c LEFT JOIN %s m ON m.old = c.%s::text", t->table, job->map, t->q_col);
	}
	else
		c->from = child_from(job, t);
}

/*
 * Target i's findings from its counts: the samples, by a second pass, only
 * for a check that found rows; the key's equal uuids when its pass counted
 * duplicates.  Frees what plan_counts made.  Returns the rows found.
 */
static long long
report_target(UuidJob *job, Findings *f, int i, TargetCounts *c)
{
	const UuidTarget *t = &job->t[i];
	long long problems = 0;

	for (int k = 0; k < c->n; k++)
	{
		if (c->counts[k] > 0)
			problems += target_rows_where(job->run, f, c->checks[k].check, t, c->from, c->checks[k].cond);
		free(c->checks[k].cond);
	}
	if (i == 0 && c->extra_count > 0)
		problems += uuid_find_equal_keys(job, f, "duplicate", t->q_shadow);
	free(c->extra), free(c->from);
	return problems;
}

/*
 * Every target's pass (its table read once for all its row checks), on
 * --jobs connections at once, largest table first; report_target then
 * reports each, alone and in the job's order.  A failed pass fails the run,
 * as a failed statement of the checks always has.  Malloc'd, one per target.
 */
static TargetCounts *
count_targets(UuidJob *job)
{
	CountJobs cj = {.job = job, .tc = xcalloc((size_t) job->n, sizeof *cj.tc)};
	const char **tables = xcalloc((size_t) job->n, sizeof *tables);
	int rc;

	for (int i = 0; i < job->n; i++)
	{
		plan_counts(job, i, &cj.tc[i]);
		tables[i] = job->t[i].table;
	}
	rc = jobs_run_tables(job->run, tables, job->n, job->run->jobs, count_task, &cj);
	free(tables);
	if (rc != EXIT_DONE)
		log_exit(rc);
	return cj.tc;
}

/*
 * What depends on target i's column: anything, when views are not recreated;
 * else what is not a view (a rule or policy still refuses).
 */
static long long
check_dependents(UuidJob *job, Findings *f, int i, bool views_recreated)
{
	const UuidTarget *t = &job->t[i];
	char *except = versions_except_schemas(job->run->plan);
	char *deps = catalog_dependents(job->run->conn, t->table, t->column, false, except);
	bool refuses = deps && (!views_recreated || strstr(deps, "rule ") || strstr(deps, "policy "));

	if (refuses)
	{
		findings_add(f, "dependent_object", t->regname, 1, deps);
		findings_hint(f, f->n - 1,
					  "set \"recreate_views\": true in the plan to have views re-created around the swap; drop a "
					  "rule or policy, and re-create it after phase3 apply (and again after a rollback)");
	}
	free(deps), free(except);
	return refuses ? 1 : 0;
}

/* Views that cannot be recreated: materialized ones, and those other views depend on. */
static long long
check_views(UuidJob *job, Findings *f)
{
	char *blocked = NULL;
	json_t *views = uuid_dependent_views(job, &blocked);
	long long problems = 0;

	if (blocked)
	{
		findings_add(f, "dependent_object", "views that cannot be recreated", 1, blocked);
		findings_hint(f, f->n - 1,
					  "drop those views (save their definitions first), run phase3 apply, then re-create them on "
					  "the new columns; after a rollback, re-create them as they were");
		problems++;
	}
	free(blocked);
	json_decref(views);
	return problems;
}

/*
 * Nothing to check once swapped.  1. columns that hold the key without a
 * foreign key (implicit.c); 2. each target's rows (every table's pass first,
 * on --jobs connections; then the findings of each table in the order of
 * its checks); 3. what depends on the columns, the views recreated around
 * the swap apart.
 */
long long
uuid_check(Run *run, const Op *op, Findings *f)
{
	UuidJob job;
	TargetCounts *tc;
	long long problems = 0;
	bool recreate_views = uuid_spec(op)->recreate_views;

	if (!uuid_job_recorded(run, op))
	{
		findings_add(f, "not prepared", op->column, 1, "phase1 and phase2 have not run for this column");
		return 1;
	}
	if (!uuid_job_load(&job, run, op, NULL))
		return 1;
	if (job.swapped)
	{
		uuid_job_free(&job);
		return 0;
	}
	problems += uuid_check_references(&job, f);
	tc = count_targets(&job);
	for (int i = 0; i < job.n; i++)
	{
		problems += report_target(&job, f, i, &tc[i]);
		if (!recreate_views)
			problems += check_dependents(&job, f, i, false);
	}
	free(tc);
	if (recreate_views)
	{
		problems += check_views(&job, f);
		for (int i = 0; i < job.n; i++)
			problems += check_dependents(&job, f, i, true);
	}
	uuid_job_free(&job);
	return problems;
}
