/*
 * fill_shadows.c: convert_to_uuid's phase2 and its rollback.  phase2 sorts the key's
 * values (canonical, accepted, invalid), refuses invalid values and orphans
 * unless told to regenerate invalid keys, and fills the shadows in keyset
 * batches, the key first and its children after.  Its rollback empties
 * every shadow again, as phase1 left them; the batches that do it
 * (uuid_undo_batches) also serve finalize's undo.
 */
#include "engine/registry.h"
#include "ops/uuid/uuid.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/keyset.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/fill.h"

/* The key's text read as uuid, or NULL (malloc'd). */
static char *
key_as_uuid(const UuidJob *job)
{
	return str_printf("%s(%s::text)", job->try_fn, job->t[0].q_col);
}

/*
 * How the key's values sort, into META; returns the invalid ones and sets
 * *same_uuid when two keys are one uuid.  One pass: each key parsed once
 * (OFFSET 0 keeps the subquery from being flattened into three calls).
 */
static long long
count_key_values(UuidJob *job, json_t *meta, bool *same_uuid)
{
	const UuidTarget *k = &job->t[0];
	char *u = key_as_uuid(job);
	StrBuf sql;
	PGresult *res;
	long long invalid;

	sb_init(&sql);
	sb_append(&sql,
			  "SELECT count(*) FILTER (WHERE u::text = v) AS canonical, "
			  "count(*) FILTER (WHERE u::text <> v) AS not_canonical, ");
	sb_printf(&sql,
			  "count(*) FILTER (WHERE u IS NULL AND v IS NOT NULL AND NOT EXISTS "
			  "(SELECT 1 FROM %s m WHERE m.old = v)) AS invalid, ",
			  job->map);
	sb_append(&sql, "count(u) - count(DISTINCT u) AS same_uuid ");
	sb_printf(&sql, "FROM (SELECT %s::text AS v, %s AS u FROM %s OFFSET 0) s", k->q_col, u, k->table);
	res = db_query(job->run->conn, sql.data, 0, NULL);
	invalid = atoll(db_field(res, 0, "invalid"));
	*same_uuid = atoll(db_field(res, 0, "same_uuid")) > 0;
	log_info("%s.%s: %s canonical, %s accepted but not canonical (stored canonical), %lld invalid", k->table, k->q_col,
			 db_field(res, 0, "canonical"), db_field(res, 0, "not_canonical"), invalid);
	json_object_set_new(meta, "canonical", json_integer(atoll(db_field(res, 0, "canonical"))));
	json_object_set_new(meta, "not_canonical", json_integer(atoll(db_field(res, 0, "not_canonical"))));
	json_object_set_new(meta, "invalid", json_integer(invalid));
	json_object_set_new(meta, "orphans", json_integer(0));
	PQclear(res);
	sb_free(&sql);
	free(u);
	return invalid;
}

/* Child i's values no parent has, with samples (key and value); returns them. */
static long long
find_orphans(UuidJob *job, Findings *f, int i)
{
	const UuidTarget *t = &job->t[i];
	StrBuf cond, sql;
	long long n;
	int from;

	sb_init(&cond);
	sb_printf(&cond, "c.%s IS NOT NULL AND NOT EXISTS ", t->q_col);
	uuid_append_parent(&cond, job, NULL, "c", t->q_col);
	sb_init(&sql);
	sb_printf(&sql, "SELECT (SELECT count(*) FROM %s c WHERE %s), ", t->table, cond.data);
	sb_append(&sql,
			  "(SELECT string_agg(format('%s (value %s)', quote_literal(k), quote_literal(v)), " FINDINGS_SEP
			  ") FROM ");
	sb_printf(&sql, "(SELECT c.%s::text AS k, c.%s::text AS v ", t->q_key, t->q_col);
	sb_printf(&sql, "FROM %s c WHERE %s ORDER BY 1 LIMIT %d) s)", t->table, cond.data, SAMPLE_LIMIT);
	from = f->n;
	n = findings_query(job->run, f, "orphan", t->regname, sql.data);
	findings_hint(f, from,
				  "these child rows point at no parent row (the samples are the child's key and its value): delete "
				  "them, or add their parents, then run phase2 apply again; --on-invalid=regenerate does not lift "
				  "orphans");
	sb_free(&cond), sb_free(&sql);
	return n;
}

/* Sort the key's values; find orphans and keys that would collide.  Returns problems found. */
static long long
classify(UuidJob *job, Findings *f, json_t *meta)
{
	const UuidTarget *k = &job->t[0];
	long long problems = 0;
	bool same_uuid;
	long long invalid = count_key_values(job, meta, &same_uuid);

	if (invalid > 0 && !job->opts->regenerate_invalid)
	{
		char *cond = uuid_invalid_sql(job, NULL, k->q_col);

		int from = f->n;

		problems += findings_rows_where(job->run, f, "invalid uuid", k->regname, cond);
		findings_hint(f, from,
					  "correct those keys (and the child rows that reference them) by hand, or run phase2 apply "
					  "--on-invalid=regenerate: each gets a new random uuid that every child follows");
		free(cond);
	}
	if (same_uuid)
	{
		char *u = key_as_uuid(job);

		problems += uuid_find_equal_keys(job, f, "keys equal as uuid", u);
		free(u);
	}
	for (int i = 1; i < job->n; i++)
	{
		long long n = find_orphans(job, f, i);

		if (n > 0)
			json_object_set_new(meta, "orphans",
								json_integer(n + json_integer_value(json_object_get(meta, "orphans"))));
		problems += n;
	}
	return problems;
}

/* Refuse, before any write, invalid values (unless regenerated) and orphans: EXIT_REFUSED, or EXIT_DONE. */
static int
refuse_bad_values(UuidJob *job, json_t *meta)
{
	const Options *opts = job->opts;
	Findings f;
	int rc = EXIT_DONE;

	findings_init(&f);
	if (classify(job, &f, meta) > 0)
	{
		findings_print(&f);
		log_error("phase2 stopped before writing anything");
		if (json_integer_value(json_object_get(meta, "invalid")) > 0 && !opts->regenerate_invalid)
			log_hint("fix those keys, or give each a new random uuid with --on-invalid=regenerate "
					 "(their children follow)");
		json_object_set_new(meta, "findings", findings_json(&f));
		job->run->op_message = xstrdup("invalid values or orphans");
		rc = EXIT_REFUSED;
	}
	findings_free(&f);
	return rc;
}

/* A new random uuid for each invalid key, kept in the map (children follow their parent). */
static void
regenerate_invalid(UuidJob *job, json_t *meta)
{
	const UuidTarget *k = &job->t[0];
	char *u = key_as_uuid(job);
	char *sql = str_printf("INSERT INTO %s (old, new) SELECT %s::text, gen_random_uuid() FROM %s "
						   "WHERE %s IS NULL ON CONFLICT (old) DO NOTHING",
						   job->map, k->q_col, k->table, u);
	long long regenerated = db_exec_rows(job->run->conn, sql);

	log_info("regenerated %lld invalid keys (old -> new in %s)", regenerated, job->map);
	json_object_set_new(meta, "regenerated", json_integer(regenerated));
	free(sql), free(u);
}

/*
 * The batch statement filling target T's shadow (keyset.h): the value
 * computed once per row, on the locked row.  The batch's keys are every key
 * of the table between its first and its last (no filter), so the update
 * finds its rows by one scan of that key range, as the keyset loop does,
 * not by a probe per key; the join to the batch keeps it to the batch's
 * rows (bounding the scan keeps the join from hashing the whole table).
 * ORDER BY ... LIMIT 1, not min()/max(): a key type may have no min().
 * A child's value is computed from its own text the way its
 * parent's was (the same text, since the foreign key holds): no lookup of
 * the parent per row; phase3's check still compares every child with it.
 * Malloc'd: the columns and the steps.
 */
static KeysetBatch
fill_batch(const UuidJob *job, const UuidTarget *t)
{
	char *value = uuid_value_sql(job, "t", t->q_col);
	char *columns = str_printf(", %s AS v", value);
	StrBuf steps;

	sb_init(&steps);
	sb_printf(&steps, "f AS (UPDATE %s t SET %s = b.v FROM b ", t->table, t->q_shadow);
	sb_printf(&steps, "WHERE t.%s = b.key AND t.%s >= (SELECT key FROM b ORDER BY key LIMIT 1) ", t->q_key, t->q_key);
	sb_printf(&steps, "AND t.%s <= (SELECT key FROM b ORDER BY key DESC LIMIT 1) ", t->q_key);
	sb_printf(&steps, "AND t.%s IS DISTINCT FROM b.v RETURNING 1)", t->q_shadow);
	free(value);
	return (KeysetBatch){.table = t->table,
						 .key = t->q_key,
						 .columns = columns,
						 .lock = true,
						 .steps = sb_steal(&steps),
						 .changed = "f"};
}

/*
 * Fill the shadows of every target in keyset batches (fill.h): each table,
 * or each of its key ranges with --jobs, with its own migration_log row.
 */
static int
fill_targets(UuidJob *job, json_t *meta)
{
	FillTable *tables = xcalloc((size_t) job->n, sizeof *tables);
	char **labels = xcalloc((size_t) job->n, sizeof *labels);
	int rc;

	for (int i = 0; i < job->n; i++)
	{
		labels[i] = str_printf("fill %s", job->t[i].regname);
		/*
		 * the fill writes the shadow only: the triggers, one way for phasemig, would leave it (job.c);
		 * no index has the shadow before phase3, so its updates can be HOT (fill.h)
		 */
		tables[i] = (FillTable){
			.label = labels[i], .batch = fill_batch(job, &job->t[i]), .quiet_triggers = true, .hot_updates = true};
	}
	rc = fill_tables(job->run, tables, job->n, job->opts);
	for (int i = 0; i < job->n; i++)
	{
		FillTable *t = &tables[i];

		json_t *m = json_pack("{s:I, s:I, s:f, s:f, s:I}", "rows_filled", (json_int_t) t->changed, "batches",
							  (json_int_t) t->batches, "seconds", t->seconds, "rows_per_second",
							  t->seconds > 0 ? t->rows_done / t->seconds : 0.0, "rows", (json_int_t) t->rows_done);

		if (t->batch_cap > 0)
			json_object_set_new(m, "batch_cap", json_integer(t->batch_cap));
		json_object_set_new(meta, job->t[i].regname, m);
		free(labels[i]);
		free((char *) t->batch.columns); /* fill_batch's */
		free((char *) t->batch.steps);
	}
	free(tables), free(labels);
	return rc;
}

/* phase2 apply: 1. refuse bad values, 2. regenerate invalid keys if told to, 3. fill the shadows. */
int
uuid_fill(UuidJob *job)
{
	json_t *meta = json_object();
	int rc = refuse_bad_values(job, meta);

	if (rc == EXIT_DONE && job->opts->regenerate_invalid)
		regenerate_invalid(job, meta);
	/* the key's shadow and each child's, in batches with checkpoints (--jobs: at once) */
	if (rc == EXIT_DONE)
		rc = fill_targets(job, meta);
	job->run->op_metadata = json_dumps(meta, JSON_COMPACT);
	json_decref(meta);
	return rc;
}

int
uuid_undo_batches(UuidJob *job, int i, const char *label, const char *column, const char *value, const char *cond)
{
	const UuidTarget *t = &job->t[i];
	long long rows_total;
	char *count = str_printf("SELECT count(*) FROM %s t WHERE %s", t->table, cond);
	StrBuf steps;
	KeysetBatch k = {.table = t->table, .key = t->q_key, .filter = cond, .lock = true, .changed = "f"};
	int rc;

	/* the rows it will walk, for status's progress and time left */
	/* (a dry run may not have the column yet: an undone finalize adds it back first) */
	rows_total = dryrun_on() ? -1 : db_count(job->run->conn, count, 0, NULL);
	sb_init(&steps);
	sb_printf(&steps, "f AS (UPDATE %s t SET %s = %s ", t->table, column, value);
	sb_printf(&steps, "FROM b WHERE t.%s = b.key AND (%s) RETURNING 1)", t->q_key, cond);
	k.steps = steps.data;
	rc = ops_undo_batches(job->run, job->opts, label, &k, rows_total);
	free(count);
	sb_free(&steps);
	return rc;
}

/*
 * phase2 rollback, 1: the regenerated keys stay in the map (a uuid handed to
 * a row stays its own, DESIGN.md invariant 3) unless told to forget them;
 * then the forward triggers give every row the application writes its text
 * as uuid.
 */
int
uuid_discard_regenerated(UuidJob *job)
{
	char *sql;

	if (!job->opts->discard_generated_uids)
		return EXIT_DONE;
	sql = str_printf("DELETE FROM %s", job->map);
	log_info("--discard-generated-uids: forgetting the regenerated keys in %s", job->map);
	db_exec(job->run->conn, sql);
	free(sql);
	return EXIT_DONE;
}

/*
 * phase2 rollback, 2: the rows already there, in resumable batches, the key
 * first: each shadow back to NULL, as phase1 left the rows the application
 * has not written since (the table's checksum is phase1's again).  The
 * triggers keep to one way for phasemig's sessions (job.c), so they neither
 * fill what the batches empty nor empty the original; a row the application
 * writes gets its shadow from them again, and phase2 apply fills the others.
 */
int
uuid_reset_shadows(UuidJob *job)
{
	int rc = EXIT_DONE;

	for (int i = 0; i < job->n && rc == EXIT_DONE; i++)
	{
		UuidTarget *t = &job->t[i];
		char *label = str_printf("reset shadow %s", t->regname);
		char *cond = str_printf("t.%s IS NOT NULL", t->q_shadow);

		rc = uuid_undo_batches(job, i, label, t->q_shadow, "NULL", cond);
		free(label), free(cond);
	}
	return rc;
}
