/*
 * report.c: what phase2 leaves for the operator: the rows without a match
 * (RUN-ID-unmatched.csv in the logs directory), the export's values it left empty
 * (RUN-ID-invalid-values.csv), the import file of the generated users,
 * and the summary in the log and in migration_log's metadata.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/backfill.h"
#include "ops/backfill/import_file.h"

/* Stream a query's CSV into PATH through COPY TO STDOUT; returns rows or -1. */
static long long
copy_out_to_file(Run *run, const char *sql, const char *path)
{
	FILE *fp = log_create_private_file(path);
	PGresult *res;
	char *line;
	int len;
	long long rows = -1;

	if (fp == NULL)
	{
		log_warning("could not write \"%s\"", path);
		return -1;
	}
	res = PQexec(run->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		db_report(res, run->conn, sql);
		PQclear(res);
		fclose(fp);
		return -1;
	}
	PQclear(res);
	while ((len = PQgetCopyData(run->conn, &line, 0)) > 0)
	{
		fwrite(line, 1, (size_t) len, fp);
		rows++;
		PQfreemem(line);
	}
	while ((res = PQgetResult(run->conn)) != NULL)
		PQclear(res);
	fclose(fp);
	return rows; /* the header line is not a row */
}

/* The rows still without a uid, listed in <logs>/RUN-ID-unmatched.csv; returns how many, or -1. */
static long long
write_unmatched(Run *run, const BackfillSql *n, const Options *opts)
{
	const Plan *p = run->plan;
	char *path = str_printf("%s/%s-unmatched.csv", opts->logs_dir, run->run_id);
	StrBuf sql;
	long long rows;

	sb_init(&sql);
	sb_printf(&sql, "COPY (SELECT t.%s AS key, t.%s AS match_value", p->q_key, n->q_match);
	if (n->q_email)
		sb_printf(&sql, ", t.%s", n->q_email);
	sb_printf(&sql, " FROM %s t WHERE t.%s IS NULL ORDER BY 1) TO STDOUT (FORMAT csv, HEADER)", p->q_table, n->q_uid);
	rows = copy_out_to_file(run, sql.data, path);
	if (rows > 0)
		log_warning("%lld rows have no match in the mapping; listed in %s", rows, path);
	else
		remove(path);
	sb_free(&sql);
	free(path);
	return rows;
}

/*
 * --skip-invalid-values: the export's values that do not fit, staged as NULL
 * by value_check_staging, listed in <logs>/RUN-ID-invalid-values.csv (the
 * localId, the element, the field and column, why; never the value).
 */
int
bf_write_skipped(Run *run, const Options *opts)
{
	char *path = str_printf("%s/%s-invalid-values.csv", opts->logs_dir, run->run_id);
	long long rows = copy_out_to_file(run,
									  "COPY (SELECT * FROM pg_temp.phasemig_skipped ORDER BY element, field) "
									  "TO STDOUT (FORMAT csv, HEADER)",
									  path);
	int rc = EXIT_DONE;

	if (rows < 0)
	{
		log_error("could not list the values left empty in \"%s\"; nothing was changed", path);
		rc = EXIT_FAILED;
	}
	else
		log_warning("%lld values of the export are left empty; listed in %s", rows, path);
	free(path);
	return rc;
}

/*
 * The lists the provider's import format keeps beside the files (users to
 * send a password reset, to enrol a second factor again), of the users this
 * run's files list: each written when it has any, its count in META.
 */
static void
write_lists(Run *run, const BackfillSql *n, const Options *opts, json_t *meta)
{
	const ImportFormat *format = n->prov->import;
	/* (a run id is a uuid phasemig made: nothing to quote) */
	char *which = str_printf("g.import_file = '%s'::uuid", run->run_id);
	char *users = format->users_sql(n->generated, which, run->plan->q_table, n->q_uid, n->q_email, opts);
	for (int i = 0; format->lists && format->lists[i].suffix; i++)
	{
		const ImportList *l = &format->lists[i];
		char *path = str_printf("%s/%s%s", opts->logs_dir, run->run_id, l->suffix);
		char *select = l->sql(users);
		char *copy = str_printf("COPY (%s) TO STDOUT (FORMAT csv, HEADER)", select);
		long long rows = copy_out_to_file(run, copy, path);

		if (rows > 0)
			log_warning("%lld %s; listed in %s", rows, l->what, path);
		else
			remove(path);
		json_object_set_new(meta, l->key, json_integer(rows > 0 ? rows : 0));
		free(copy);
		free(select);
		free(path);
	}
	free(users);
	free(which);
}

/*
 * KEY: VALUE (not stolen) into the run's phase-level metadata, beside what is
 * there (the pre-flight's findings): the apply's migration_log row, and the
 * "figures" of the hook's end event (engine/hook.c), have it.
 */
static void
add_to_phase_metadata(Run *run, const char *key, json_t *value)
{
	json_t *meta = run->phase_metadata ? json_loads(run->phase_metadata, 0, NULL) : NULL;

	if (!json_is_object(meta))
	{
		json_decref(meta);
		meta = json_object();
	}
	json_object_set(meta, key, value);
	free(run->phase_metadata);
	run->phase_metadata = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(meta);
}

/*
 * The import files of this run: the generated users no earlier file listed
 * and whose row holds their uid now (a user listed twice would have its
 * Firebase account, and the password it has now, overwritten), one file per
 * hash algorithm; then the provider's lists of them.  The files and the
 * lists go into META, and the files into the phase's metadata too.
 */
static int
write_import_file(Run *run, const BackfillSql *n, const Options *opts, json_t *meta)
{
	const ImportFormat *format = n->prov->import;
	const char *uid = n->prov->target_id;
	StrBuf mark;
	char *which = str_printf("g.%s IN (SELECT %s FROM pg_temp.phasemig_to_import)", uid, uid);
	char *users = format->users_sql(n->generated, which, run->plan->q_table, n->q_uid, n->q_email, opts);
	ImportFile f = {
		.logs_dir = opts->logs_dir, .ledger = n->import_files, .format = format, .uid_column = uid, .users_sql = users};
	int rc;

	sb_init(&mark);
	sb_printf(&mark, "WITH m AS (UPDATE %s g SET import_file = $1::uuid WHERE g.import_file IS NULL ", n->generated);
	sb_printf(&mark, "AND EXISTS (SELECT 1 FROM %s t WHERE t.%s = g.%s) ", run->plan->q_table, n->q_uid, uid);
	sb_printf(&mark, "RETURNING g.%s) ", uid);
	sb_printf(&mark, "INSERT INTO pg_temp.phasemig_to_import SELECT %s FROM m", uid);
	f.mark_sql = mark.data;
	/* (bf_generate_missing made the tables) */
	rc = import_file_write(run, &f);
	if (f.files)
	{
		add_to_phase_metadata(run, "import_files", f.files);
		json_object_set_new(meta, "import_files", f.files);
		if (rc == EXIT_DONE)
			write_lists(run, n, opts, meta);
	}
	sb_free(&mark);
	free(users);
	free(which);
	return rc;
}

/*
 * What is left and what to import: the unmatched rows and the import file
 * (when the fill succeeded), and the summary, whatever RC the fill ended
 * with.  Returns RC, or the import file's failure.
 */
int
bf_report(BackfillRun *s, int rc)
{
	Run *run = s->run;
	const FillTable *fill = &s->fill;
	long long unmatched;
	double rate = fill->seconds > 0 ? (double) (fill->rows_done) / fill->seconds : 0;
	json_t *meta;

	/* a dry run writes no file and no summary: it prints the import file's statements */
	json_t *files = json_object();

	if (dryrun_on())
	{
		if (rc == EXIT_DONE && s->opts->generate_missing)
			rc = write_import_file(run, &s->sql, s->opts, files);
		json_decref(files);
		return rc;
	}
	unmatched = rc == EXIT_DONE ? write_unmatched(run, &s->sql, s->opts) : -1;
	if (unmatched < 0)
		unmatched = 0;
	if (rc == EXIT_DONE && s->opts->generate_missing)
		rc = write_import_file(run, &s->sql, s->opts, files);
	meta = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:i}", "mapping_users", (json_int_t) s->loaded,
					 "rows_filled", (json_int_t) fill->changed, "unmatched", (json_int_t) unmatched, "generated",
					 (json_int_t) s->generated, "invalid_values_skipped", (json_int_t) s->skipped, "batches",
					 (json_int_t) fill->batches, "seconds", fill->seconds, "rows_per_second", rate, "longest_batch_ms",
					 fill->longest_batch_ms, "jobs", s->opts->jobs);
	/* the import files with their commands, and the provider's lists' counts */
	json_object_update(meta, files);
	json_decref(files);
	run->op_metadata = json_dumps(meta, JSON_COMPACT);
	run->op_rows = fill->rows_done;
	if (rc == EXIT_DONE)
		log_info("backfill done: %lld rows scanned, %lld filled, %lld without a match, %ld batches, %.1f s, "
				 "%.0f rows/s",
				 fill->rows_done, fill->changed, unmatched, fill->batches, fill->seconds, rate);
	json_decref(meta);
	return rc;
}

/*
 * --dry-run: what the fill would do, from the staged mapping's matches
 * (pg_temp.phasemig_matches): the rows without a uid, how many of them have
 * a match, and those that have none, with sample keys.
 */
int
bf_dry_run_report(BackfillRun *s)
{
	Run *run = s->run;
	const Plan *p = run->plan;
	char *sql =
		str_printf("SELECT count(*) AS rows, count(*) FILTER (WHERE t.%s IS NULL) AS empty, "
				   "count(*) FILTER (WHERE t.%s IS NULL AND m.k IS NOT NULL) AS matched, "
				   "(SELECT string_agg(k, ', ') FROM (SELECT t2.%s::text AS k FROM %s t2 WHERE t2.%s IS NULL "
				   "AND NOT EXISTS (SELECT 1 FROM pg_temp.phasemig_matches m2 WHERE m2.k = t2.%s::text) "
				   "ORDER BY 1 LIMIT 10) s) AS samples "
				   "FROM %s t LEFT JOIN (SELECT DISTINCT k FROM pg_temp.phasemig_matches) m ON m.k = t.%s::text",
				   s->sql.q_uid, s->sql.q_uid, p->q_key, p->q_table, s->sql.q_uid, p->q_key, p->q_table, p->q_key);
	PGresult *res = db_query(run->conn, sql, 0, NULL);
	long long empty = db_field_ll(res, 0, "empty"), matched = db_field_ll(res, 0, "matched");
	const char *samples = db_field(res, 0, "samples");
	StrBuf also;

	/* the files the provider's options name, read with the mapping: " (and the Clerk export)" */
	sb_init(&also);
	for (int i = 0; i < s->opts->n_added; i++)
		if (s->opts->added[i].option->file)
			sb_printf(&also, " (and the %s)", s->opts->added[i].option->file);
	dryrun_comment("the mapping%s was read, as a real run reads it, into this session's temporary tables "
				   "(pg_temp.phasemig_staging...) with COPY FROM STDIN, to check it and count what follows: a "
				   "temporary table is this session's alone and goes with it, so statements on one are run, "
				   "neither printed here nor logged by a real run",
				   also.data);
	sb_free(&also);
	dryrun_comment("%s: %lld users in the mapping; %lld of %lld rows have no %s yet: %lld would be filled from it",
				   s->op->label, s->loaded, empty, db_field_ll(res, 0, "rows"), s->sql.q_uid, matched);
	log_info("dry run: %lld of %lld rows without a uid would be filled from the mapping", matched, empty);
	if (empty > matched)
	{
		dryrun_comment("%lld rows have no match%s (first keys: %s)", empty - matched,
					   s->opts->generate_missing ? ": --generate-missing would give them new uids and write an "
												   "import file"
												 : ": they would stay empty, listed in RUN-ID-unmatched.csv",
					   samples ? samples : "");
		log_info("dry run: %lld rows have no match (first keys: %s)", empty - matched, samples ? samples : "");
	}
	PQclear(res);
	free(sql);
	return EXIT_DONE;
}
