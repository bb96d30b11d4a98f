/*
 * fill.c: phase2's fill of the plan's table in keyset batches (engine/fill.c
 * runs them, core/keyset.c shapes the statement): the lookups the batches
 * probe, the batch statement, and the sweep of a resumed run over the rows
 * before its resume point.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "ops/backfill/backfill.h"

/*
 * ", display_name, ...": the source columns the batches write, each once
 * (the profile holds only those: at 1M users the whole source outgrows
 * temp_buffers).
 */
static char *
profile_columns(const Op *op)
{
	const BackfillSpec *spec = bf_spec(op);
	const IdProvider *prov = spec->provider;
	StrBuf cols;

	sb_init(&cols);
	for (int i = 0; i < spec->n_set; i++)
	{
		const char *c = prov->field_column(spec->set[i].field);
		bool seen = strcmp(c, prov->target_id) == 0;

		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(c, prov->field_column(spec->set[j].field)) == 0;
		if (!seen)
			sb_printf(&cols, ", %s", c);
	}
	return sb_steal(&cols);
}

/*
 * The mapping resolved once, set-based, into three keyed tables the batches
 * probe by index instead of aggregating the source for every row:
 * by_source_id (every source id of the mapping, its uid when exactly one,
 * else NULL: an ambiguous id, and an id that is there at all stops the
 * email fallback), by_email (emails of users without a source id, the uid
 * when exactly one) and profile (the fields of each uid, a file's row
 * before a generated one).  The same rules as the sync trigger's.
 */
static void
build_lookups(Run *run, const Op *op, const BackfillSql *n)
{
	const char *create = strncmp(n->by_source_id, "pg_temp.", 8) == 0 ? "CREATE TEMP TABLE" : "CREATE UNLOGGED TABLE";
	const char *src = n->prov->source_id, *dst = n->prov->target_id;
	char *one_uid = str_printf("CASE WHEN count(DISTINCT %s) = 1 THEN min(%s) END AS uid", dst, dst);
	char *cols = profile_columns(op);

	bf_exec_free(run, str_printf("DROP TABLE IF EXISTS %s, %s, %s", n->by_source_id, n->by_email, n->profile));
	bf_exec_free(run,
				 str_printf("%s %s AS SELECT %s AS v, %s FROM %s WHERE %s IS NOT NULL GROUP BY %s", create,
							n->by_source_id, src, one_uid, n->source, src, src));
	bf_exec_free(run,
				 str_printf("%s %s AS SELECT email_norm AS v, %s FROM %s "
							"WHERE %s IS NULL AND email_norm IS NOT NULL GROUP BY email_norm",
							create, n->by_email, one_uid, n->source, src));
	bf_exec_free(run,
				 str_printf("%s %s AS SELECT DISTINCT ON (%s) %s%s FROM %s ORDER BY %s, origin", create, n->profile,
							dst, dst, cols, n->source, dst));
	bf_exec_free(run, str_printf("ALTER TABLE %s ADD PRIMARY KEY (v)", n->by_source_id));
	bf_exec_free(run, str_printf("ALTER TABLE %s ADD PRIMARY KEY (v)", n->by_email));
	bf_exec_free(run, str_printf("ALTER TABLE %s ADD PRIMARY KEY (%s)", n->profile, dst));
	bf_exec_free(run, str_printf("ANALYZE %s, %s, %s", n->by_source_id, n->by_email, n->profile));
	free(one_uid);
	free(cols);
}

/*
 * The columns of b beyond the key: the source's id (m), the normalised email
 * (e), whether the row needs a uid (todo), and the values the locked row
 * holds now (cN): the batch never reads the table twice.
 */
static char *
batch_columns(const BackfillSql *n)
{
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb, ", t.%s::text AS m", n->q_match);
	if (n->q_email)
		sb_printf(&sb, ", " BF_EMAIL_NORM("t.") " AS e", n->q_email);
	else
		sb_append(&sb, ", NULL::text AS e");
	sb_printf(&sb, ", t.%s IS NULL AS todo", n->q_uid);
	for (int i = 0; i < n->n_set; i++)
		sb_printf(&sb, ", t.%s AS c%d", n->q_set[i], i + 1);
	return sb_steal(&sb);
}

/*
 * The batch's work, as CTEs over b:
 *   u     the uid of each row that needs one, by the match rules of the
 *         trigger, resolved once by build_lookups: one index probe each
 *         (two when the source id is not in the mapping);
 *   r     that user's fields;
 *   w     per row the value before (oN) and the value to write (wN): what
 *         the row holds, else the user's field in the column's type;
 *   kept  both saved in the backup table;
 *   f     the columns filled.
 */
static char *
batch_steps(Run *run, const Op *op, const BackfillSql *n)
{
	const Plan *p = run->plan;
	const FieldMap *set = bf_spec(op)->set;
	StrBuf sb;

	sb_init(&sb);
	/*
	 * the email's probe only for a row whose source id the mapping lacks: as
	 * a join, the planner hashed the whole email lookup for every batch
	 */
	sb_append(&sb, "u AS (SELECT b.key, CASE WHEN c.v IS NOT NULL THEN c.uid ");
	sb_printf(&sb, "ELSE (SELECT e.uid FROM %s e WHERE e.v = b.e) END AS uid FROM b ", n->by_email);
	sb_printf(&sb, "LEFT JOIN %s c ON c.v = b.m WHERE b.todo), ", n->by_source_id);

	/* LIMIT 1 (the uid is the profile's key) keeps it a probe per row, never a hash of the whole profile */
	sb_printf(&sb, "r AS (SELECT u.key, s.* FROM u CROSS JOIN LATERAL (SELECT * FROM %s s WHERE s.%s = u.uid LIMIT 1) s), ",
			  n->profile, n->prov->target_id);

	sb_append(&sb, "w AS (SELECT b.key");
	for (int i = 0; i < n->n_set; i++)
	{
		char *type = catalog_column_type(p, set[i].column);

		sb_printf(&sb, ", b.c%d AS o%d", i + 1, i + 1);
		sb_printf(&sb, ", coalesce(b.c%d, r.%s::%s) AS w%d", i + 1, n->prov->field_column(set[i].field),
				  type ? type : "text", i + 1);
		free(type);
	}
	sb_append(&sb, " FROM b JOIN r ON r.key = b.key), ");

	sb_printf(&sb, "kept AS (INSERT INTO %s AS bk (key, %s, saved_by) ", n->backup, n->backup_columns);
	sb_append(&sb, "SELECT w.key::text");
	for (int i = 0; i < n->n_set; i++)
		sb_printf(&sb, ", w.o%d, w.w%d", i + 1, i + 1);
	sb_append(&sb, ", 'batch' FROM w ");
	sb_printf(&sb, "ON CONFLICT (key) DO UPDATE SET %s RETURNING 1), ", n->backup_upsert);

	sb_printf(&sb, "f AS (UPDATE %s t SET ", p->q_table);
	for (int i = 0; i < n->n_set; i++)
		sb_printf(&sb, "%s%s = w.w%d", i ? ", " : "", n->q_set[i], i + 1);
	sb_printf(&sb, " FROM w WHERE t.%s = w.key ", p->q_key);
	/* the keys as an array: an index probe each, never a hash of the whole table */
	sb_printf(&sb, "AND t.%s = ANY (ARRAY(SELECT key FROM w)) RETURNING 1)", p->q_key);
	return sb_steal(&sb);
}

/*
 * Build the lookups and the batch statement (kept in n->batch, for the sweep
 * too), then fill the table: find the mapping of each row of the next keyset
 * batch that has no uid yet, save original and written values, fill the
 * columns that are NULL.
 */
int
bf_fill(BackfillRun *s)
{
	Run *run = s->run;
	BackfillSql *n = &s->sql;

	if (s->opts->jobs <= 1)
		bf_use_session_lookups(n);
	/* a dry run prints --jobs's shared lookups; the session's temporary ones are for batches it does not run */
	if (!dryrun_on() || s->opts->jobs > 1)
		build_lookups(run, s->op, n);
	log_info("filling %s in batches of %d rows", n->q_uid, batch_size_of(s->opts, run->plan));
	n->batch_columns = batch_columns(n);
	n->batch_steps = batch_steps(run, s->op, n);
	n->batch = (KeysetBatch){.table = run->plan->q_table,
							 .key = run->plan->q_key,
							 .columns = n->batch_columns,
							 .lock = true,
							 .steps = n->batch_steps,
							 .changed = "f"};
	/*
	 * the batch writes a uid into rows without one, and neither the source id
	 * nor the email: the trigger would leave the row as written (trigger.c)
	 */
	s->fill = (FillTable){.label = s->op->label, .batch = n->batch, .entry = run->op_entry, .quiet_triggers = true};
	return fill_tables(run, &s->fill, 1, s->opts);
}

/*
 * A resumed run also fills the rows before its resume point that have a
 * match now (uids generated by this run, a mapping that grew): the batch
 * statement once more over the rows without a uid.
 */
int
bf_fill_before_resume_point(BackfillRun *s)
{
	Run *run = s->run;
	KeysetBatch rest = s->sql.batch;
	BatchLoop sweep = {.what = "backfill, rows before the resume point", .rows_total = -1, .quiet_triggers = true};
	char *only_empty = str_printf("t.%s IS NULL", s->sql.q_uid);
	char *first, *next;
	int rc;

	rest.filter = only_empty;
	first = keyset_batch_sql(&rest, true);
	next = keyset_batch_sql(&rest, false);
	sweep.sql_first = first;
	sweep.sql_next = next;
	batch_use_options(&sweep, s->opts, run->plan);
	log_info("filling the rows without a uid before the resume point");
	rc = batch_run(run, &sweep);
	s->fill.changed += sweep.changed;
	s->fill.batches += sweep.batches;
	s->fill.seconds += sweep.seconds;
	free(sweep.last_key);
	free(first);
	free(next);
	free(only_empty);
	return rc;
}
