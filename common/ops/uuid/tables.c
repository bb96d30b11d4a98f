/*
 * tables.c: convert_to_uuid's phase3 work that holds no lock blocking the
 * application, one table per task, on --jobs connections at once, largest
 * table first (engine/jobs.h's jobs_run_tables): before the swap, each
 * table's indexes on its shadow (built CONCURRENTLY) and its shadow's NOT
 * NULL CHECK added NOT VALID and validated; after the swap (and the swap
 * back), its foreign keys validated.  What takes a lock that blocks writes
 * (SET NOT NULL, the swap) stays on the run's own connection, after these,
 * in the order it always had (swap.c).
 *
 * A task runs on a worker's connection (its Run is the worker's copy) and
 * never exits: every statement it runs returns its failure (ops.c's index
 * builds and CHECKs, ddl.h), and between two of them it stops when another
 * task failed (batch_abandoned): a run that fails leaves each table as a
 * single connection would have left it part way, which the next run, with
 * or without --jobs, takes from there (an INVALID index is rebuilt, a CHECK
 * already there validated).
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "engine/batch.h"
#include "engine/jobs.h"

/* The job's distinct tables, the key's table first (each a pointer into the job's targets). */
typedef struct Tables
{
	UuidJob *job;
	const char **q; /* quoted, schema-qualified */
	int n;
	bool validate; /* the foreign keys (after a swap) rather than what comes before the swap */
} Tables;

static void
tables_of(Tables *ts, UuidJob *job, bool validate)
{
	ts->job = job;
	ts->validate = validate;
	ts->q = xcalloc((size_t) job->n + 1, sizeof *ts->q);
	ts->n = 0;
	for (int i = 0; i < job->n; i++)
	{
		bool seen = false;

		for (int k = 0; k < ts->n && !seen; k++)
			seen = strcmp(ts->q[k], job->t[i].table) == 0;
		if (!seen)
			ts->q[ts->n++] = job->t[i].table;
	}
}

/* The connections to use: --jobs, 1 for a handler without options (the pre-flight). */
static int
jobs_of(const UuidJob *job)
{
	return job->opts ? job->opts->jobs : 1;
}

/* Another task failed: this one stops here, at its boundary between two statements. */
static bool
told_to_stop(int *rc)
{
	if (*rc == EXIT_DONE && batch_abandoned())
		*rc = EXIT_FAILED;
	return *rc != EXIT_DONE;
}

/*
 * Before the swap, on table QTABLE: (1) the key's unique index on its
 * shadow and its unique index on the text key under its legacy name (the
 * key's table only), (2) every mirror on this table, (3) the NOT NULL CHECK
 * of each shadow that must be NOT NULL, validated.
 */
static int
prepare_table(Run *run, const UuidJob *job, const char *qtable)
{
	int rc = EXIT_DONE;

	if (strcmp(qtable, job->t[0].table) == 0)
	{
		rc = ops_build_index_on(run, qtable, job->pk.mirror, job->t[0].q_shadow, true);
		if (!told_to_stop(&rc))
			rc = ops_build_index_on(run, qtable, job->pk.legacy, job->t[0].q_col, true);
	}
	for (int i = 0; i < job->n_ix && !told_to_stop(&rc); i++)
	{
		const UuidIndex *x = &job->ix[i];

		if (strcmp(x->table, qtable) == 0)
			rc = ops_build_index_on(run, qtable, x->names.mirror, x->columns, x->unique);
	}
	for (int i = 0; i < job->n && !told_to_stop(&rc); i++)
	{
		bool already;

		if (strcmp(job->t[i].table, qtable) == 0 && (i == 0 || job->t[i].not_null))
			rc = ops_prepare_not_null_on(run, qtable, job->t[i].shadow, &already);
	}
	return rc;
}

/* Whether target T's foreign key is there, asked on RUN's connection; -1 when the question failed. */
static int
constraint_there(Run *run, const UuidTarget *t)
{
	const char *params[2] = {t->table, t->constraint};
	long long n;
	DbFailure why;

	if (!db_count_try(run->conn,
					  "SELECT count(*) FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND conname = $2",
					  2, params, &n, &why))
		return -1;
	return n > 0;
}

/*
 * After the swap (or the swap back), on table QTABLE: each foreign key of
 * its targets validated in its own transaction (SHARE UPDATE EXCLUSIVE); one
 * the application left NOT VALID stays so, and one the swap adds is skipped
 * where it is not there (the swap back dropped it).
 */
static int
validate_table(Run *run, const UuidJob *job, const char *qtable)
{
	int rc = EXIT_DONE;

	for (int i = 1; i < job->n && !told_to_stop(&rc); i++)
	{
		const UuidTarget *t = &job->t[i];
		int there;

		if (strcmp(t->table, qtable) != 0 || t->constraint == NULL || !t->fk_validated)
			continue;
		if (t->fk_added && (there = constraint_there(run, t)) <= 0)
		{
			rc = there < 0 ? EXIT_FAILED : EXIT_DONE;
			continue;
		}
		log_info("validating foreign key %s of %s", t->q_constraint, t->table);
		rc = ops_validate(run, t->table, t->q_constraint);
	}
	return rc;
}

/* jobs.h's JobTaskFn: table TASK's work on RUN, a worker's connection or the run's own. */
static int
table_task(Run *run, void *ctx, int task)
{
	Tables *ts = ctx;

	return ts->validate ? validate_table(run, ts->job, ts->q[task]) : prepare_table(run, ts->job, ts->q[task]);
}

static int
run_tables(UuidJob *job, bool validate)
{
	Tables ts;
	int rc;

	tables_of(&ts, job, validate);
	rc = jobs_run_tables(job->run, ts.q, ts.n, jobs_of(job), table_task, &ts);
	free(ts.q);
	return rc;
}

int
uuid_prepare_tables(UuidJob *job)
{
	return run_tables(job, false);
}

int
uuid_validate_foreign_keys(UuidJob *job)
{
	return run_tables(job, true);
}
