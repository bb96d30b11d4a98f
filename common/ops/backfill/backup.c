/*
 * backup.c: the backup table, which keeps per row and filled column the
 * value before (original_N) and the value phasemig wrote (written_N), and
 * the restore that puts originals back in keyset batches.  The table is
 * created in phase1, with the trigger that writes it, and dropped by
 * phase1's rollback; phase2's and phase1's rollbacks restore from it, with
 * --jobs N its first pass in N key ranges on N connections.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/batch.h"
#include "engine/jobs.h"
#include "engine/registry.h"
#include "ops/backfill/backfill.h"

/* False (logged) for a backup table an earlier phasemig wrote: originals only, no written_N. */
static bool
backup_layout_ok(Run *run, const BackfillSql *n)
{
	if (db_exists(run->conn,
				  "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) "
				  "AND attname = 'written_1' AND NOT attisdropped",
				  1, (const char *[]){n->backup}))
		return true;
	log_error("backup table %s has the layout of an earlier phasemig (no written_1 column)", n->backup);
	log_hint("roll back phase2 with the phasemig version that applied it, then carry on with this one");
	return false;
}

/*
 * The backup table: key as text (so it is compared in whatever type the
 * plan's key has now, see restore_sql), then original_N / written_N of each
 * filled column in its own type, taken from the table WITH NO DATA.
 */
int
bf_ensure_backup_table(Run *run, const BackfillSql *n, int phase)
{
	const Plan *p = run->plan;
	StrBuf create;
	char *pk, *def, *reg;
	int rc;

	if (bf_table_exists(run, n->backup))
		return backup_layout_ok(run, n) ? EXIT_DONE : EXIT_FAILED;
	sb_init(&create);
	sb_printf(&create, "CREATE TABLE %s AS SELECT t.%s::text AS key", n->backup, p->q_key);
	for (int i = 0; i < n->n_set; i++)
		sb_printf(&create, ", t.%s AS original_%d, t.%s AS written_%d", n->q_set[i], i + 1, n->q_set[i], i + 1);
	sb_append(&create, ", 'batch'::text AS saved_by, now() AS saved_at");
	sb_printf(&create, " FROM %s t WITH NO DATA", p->q_table);
	pk = str_printf("ALTER TABLE %s ADD PRIMARY KEY (key)", n->backup);
	def = str_printf("ALTER TABLE %s ALTER COLUMN saved_at SET DEFAULT now()", n->backup);
	reg = registry_add_sql(p, phase, "backup_table", "backfill");
	log_info("creating %s for the values phasemig overwrites", n->backup);
	rc = ops_ddl(run, create.data, (const char *[]){create.data, pk, def, reg}, 4);
	sb_free(&create);
	free(pk);
	free(def);
	free(reg);
	return rc;
}

/*
 * One restore batch: take the next keys out of the backup table and put each
 * original back where the column still holds what phasemig wrote (a value the
 * application wrote since stays).  The key is compared in the table's
 * current key type, cast on the backup's side so the table's index is used.
 */
static char *
restore_sql(Run *run, const BackfillSql *n, bool first, const char *upper)
{
	const Plan *p = run->plan;
	StrBuf steps;
	char *sql;

	sb_init(&steps);
	sb_printf(&steps, "u AS (UPDATE %s t SET ", p->q_table);
	for (int i = 1; i <= n->n_set; i++)
	{
		const char *q = n->q_set[i - 1];

		sb_printf(&steps, "%s%s = CASE WHEN t.%s IS NOT DISTINCT FROM b.written_%d THEN b.original_%d ELSE t.%s END",
				  i > 1 ? ", " : "", q, q, i, i, q);
	}
	sb_printf(&steps, " FROM b WHERE t.%s = b.key::%s AND (", p->q_key, p->key_type);
	for (int i = 1; i <= n->n_set; i++)
		sb_printf(&steps, "%s(t.%s IS NOT DISTINCT FROM b.written_%d AND b.original_%d IS DISTINCT FROM b.written_%d)",
				  i > 1 ? " OR " : "", n->q_set[i - 1], i, i, i);
	sb_append(&steps, ") RETURNING 1)");
	sql = keyset_batch_sql(
		&(KeysetBatch){
			.table = n->backup, .key = "key", .upper = upper, .take = true, .steps = steps.data, .changed = "u"},
		first);
	sb_free(&steps);
	return sql;
}

/* The first pass's key ranges (restore_in_ranges), one batch loop each. */
typedef struct Ranges
{
	BatchLoop *b;
	char **sql; /* two per range */
	int n;
} Ranges;

/* jobs.h's JobTaskFn: range TASK's batches on RUN's connection (a worker's: batch_loop never exits). */
static int
restore_range(Run *run, void *ctx, int task)
{
	return batch_loop(run, &((Ranges *) ctx)->b[task]);
}

/*
 * The first pass with --jobs JOBS: the backup's keys in JOBS ranges of
 * about equal size (ntile), each drained by its own batch loop on its own
 * connection.  The batches take their rows out of the backup, so a run
 * stopped part way leaves exactly what is left to restore: no checkpoint
 * rows (entry 0), and the next pass, on one connection, finds the rest.
 */
static int
restore_in_ranges(Run *run, const BackfillSql *n, const Options *opts, int jobs, long long *restored)
{
	PGresult *res = jobs_key_ranges(run, n->backup, "key", NULL, jobs);
	Ranges r;
	long long total = 0;
	int rc;

	r.n = PQntuples(res);
	r.b = xcalloc((size_t) r.n + 1, sizeof *r.b);
	r.sql = xcalloc((size_t) (2 * r.n) + 1, sizeof *r.sql);
	for (int i = 0; i < r.n; i++)
	{
		char *upper = i < r.n - 1 ? sql_literal(PQgetvalue(res, i, 1)) : NULL;

		r.sql[2 * i] = restore_sql(run, n, true, upper);
		r.sql[2 * i + 1] = restore_sql(run, n, false, upper);
		r.b[i] = (BatchLoop){.what = "restoring", .sql_first = r.sql[2 * i], .sql_next = r.sql[2 * i + 1]};
		r.b[i].last_key = i > 0 ? xstrdup(PQgetvalue(res, i - 1, 1)) : NULL;
		r.b[i].rows_total = atoll(PQgetvalue(res, i, 0));
		total += r.b[i].rows_total;
		batch_use_options(&r.b[i], opts, run->plan);
		free(upper);
	}
	PQclear(res);
	log_info("restoring %lld rows in %d key ranges on %d connections", total, r.n, jobs < r.n ? jobs : r.n);
	/* a lost connection is opened once more, for the run's end to record it */
	rc = jobs_run_batches(run, r.n, jobs < r.n ? jobs : r.n, restore_range, &r, total, 0);
	for (int i = 0; i < r.n; i++)
	{
		*restored += r.b[i].changed;
		free(r.b[i].last_key), free(r.sql[2 * i]), free(r.sql[2 * i + 1]);
	}
	free(r.b), free(r.sql);
	return rc;
}

/*
 * Put back every saved original and empty the backup table in batches (the
 * trigger may still write to it).  Run again while rows remain, for the
 * few a trigger saved behind the batches.  Returns an exit code.
 */
int
bf_restore_backup(Run *run, const BackfillSql *n, const Options *opts)
{
	char *first = restore_sql(run, n, true, NULL);
	char *next = restore_sql(run, n, false, NULL);
	int jobs = opts && opts->jobs > 1 && !dryrun_on() ? opts->jobs : 1;
	char *count = str_printf("SELECT count(*) FROM %s", n->backup);
	long long restored = 0;
	int rc = backup_layout_ok(run, n) ? EXIT_DONE : EXIT_FAILED;

	/* (a dry run drains nothing: one pass prints its statement) */
	for (int round = 0; rc == EXIT_DONE && !(dryrun_on() && round > 0) && db_count(run->conn, count, 0, NULL) > 0;
		 round++)
	{
		BatchLoop b = {.what = "restoring", .sql_first = first, .sql_next = next, .entry = run->op_entry};

		if (round == 10)
		{
			log_error("%s still holds rows after %d passes", n->backup, round);
			log_hint("run the rollback again");
			rc = EXIT_FAILED;
			break;
		}
		batch_use_options(&b, opts, run->plan);
		/* rows of the backup to walk: status shows the step's progress while it runs */
		b.rows_total = db_count(run->conn, count, 0, NULL);
		mlog_set_progress(run, run->op_entry, b.rows_total, 0, NULL);
		if (round == 0)
			log_info("restoring the original values from %s", n->backup);
		/* --jobs: the first pass in key ranges, when each has two batches or more; the rest on one connection */
		if (round == 0 && jobs > 1 && b.rows_total / jobs >= 2LL * b.batch_size)
		{
			rc = restore_in_ranges(run, n, opts, jobs, &restored);
			continue;
		}
		rc = batch_run(run, &b);
		restored += b.changed;
		free(b.last_key);
	}
	if (rc == EXIT_DONE)
		log_info("restored %lld rows", restored);
	run->op_rows = restored;
	free(first);
	free(next);
	free(count);
	return rc;
}

char *
bf_written_value_sql(Run *run, const char *column, char **join)
{
	char *sql = NULL;

	*join = NULL;
	for (int k = 0; k < run->plan->n_ops && sql == NULL; k++)
	{
		const Op *op = &run->plan->ops[k];
		const BackfillSpec *spec;
		BackfillSql n;

		if (op->kind != &op_type_backfill_from_mapping)
			continue;
		spec = bf_spec(op);
		bf_sql_init(&n, run, op);
		for (int i = 0; i < spec->n_set && sql == NULL; i++)
			if (strcmp(spec->set[i].column, column) == 0 && bf_table_exists(run, n.backup) && backup_layout_ok(run, &n))
			{
				/* the backup's primary key is the key as text: one hash or index join for every column */
				*join = str_printf("LEFT JOIN %s b ON b.key = t.%s::text", n.backup, run->plan->q_key);
				sql = str_printf("b.written_%d", i + 1);
			}
		bf_sql_free(&n);
	}
	return sql;
}
