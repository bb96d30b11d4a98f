/*
 * match.c: phase2's inputs, read into temporary staging tables, checked
 * before anything is written (values that do not fit their column, then
 * the conflicts between the mapping and the table); only then does
 * source.c make them the plan's source table, which the trigger and the
 * batches read.
 */
#include <jansson.h>
#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/backfill.h"
#include "ops/backfill/value_check.h"

/*
 * Read the mapping into pg_temp.phasemig_staging, and the files the
 * provider's options name (IdProvider.load_options), with the uids phasemig
 * generated before: a user given one keeps it, whatever was rolled back
 * since.
 */
int
bf_stage_inputs(BackfillRun *s)
{
	Run *run = s->run;
	const Options *opts = s->opts;
	const IdProvider *prov = s->sql.prov;
	int rc;

	log_info("loading the mapping from \"%s\"", opts->mapping);
	if ((rc = prov->load_mapping(run->conn, opts->mapping, &s->loaded)) != EXIT_DONE)
		return rc;
	log_info("read %lld users from the mapping", s->loaded);
	if ((rc = prov->load_options(run, opts, bf_spec(s->op)->claims, bf_spec(s->op)->n_claims)) != EXIT_DONE)
		return rc;
	if ((rc = bf_adopt_source_generated(run, &s->sql)) != EXIT_DONE)
		return rc;
	if (bf_table_exists(run, s->sql.generated))
		bf_exec_free(run,
					 str_printf("INSERT INTO pg_temp.phasemig_staging (%s, %s, origin) "
								"SELECT %s, %s, 'generated' FROM %s",
								prov->target_id, prov->source_id, prov->target_id, prov->source_id, s->sql.generated));
	bf_exec_free(run, str_printf("CREATE INDEX ON pg_temp.phasemig_staging (%s)", prov->source_id));
	db_exec(run->conn, "CREATE INDEX ON pg_temp.phasemig_staging (email_norm)");
	db_exec(run->conn, "ANALYZE pg_temp.phasemig_staging");
	return EXIT_DONE;
}

/*
 * Matches of the plan's rows to staged target users, as a temp table
 * (k: the row's key as text, uid, how): by the source's id, else by the
 * email of a user without one when the mapping does not know the row's id.
 */
static void
build_matches(Run *run, const BackfillSql *n)
{
	const Plan *p = run->plan;
	const char *src = n->prov->source_id, *dst = n->prov->target_id;
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "CREATE TEMP TABLE phasemig_matches AS ");
	sb_printf(&sb, "SELECT t.%s::text AS k, x.%s AS uid, '%s id' AS how ", p->q_key, dst, n->prov->source_key);
	sb_printf(&sb, "FROM %s t ", p->q_table);
	sb_printf(&sb, "JOIN pg_temp.phasemig_staging x ON x.%s = t.%s::text", src, n->q_match);
	if (n->q_email)
	{
		sb_printf(&sb, " UNION ALL SELECT t.%s::text, x.%s, 'email' ", p->q_key, dst);
		sb_printf(&sb, "FROM %s t ", p->q_table);
		sb_printf(&sb, "JOIN pg_temp.phasemig_staging x ON x.%s IS NULL ", src);
		sb_printf(&sb, "AND x.email_norm = " BF_EMAIL_NORM("t.") " ", n->q_email);
		sb_printf(&sb, "WHERE NOT EXISTS (SELECT 1 FROM pg_temp.phasemig_staging y WHERE y.%s = t.%s::text)", src,
				  n->q_match);
	}
	db_exec(run->conn, "DROP TABLE IF EXISTS pg_temp.phasemig_matches");
	db_exec(run->conn, sb.data);
	db_exec(run->conn, "ANALYZE pg_temp.phasemig_matches");
	sb_free(&sb);
}

/*
 * One conflict check: PAIRS is a query of the conflicting rows, SAMPLE how
 * one of them reads (SQL text over its columns), ORDER how samples are
 * chosen.  Adds a finding when there is any; returns how many.
 */
static long long
conflict(Run *run, const BackfillSql *n, Findings *f, const char *check, const char *pairs, const char *sample,
		 const char *order)
{
	StrBuf sql;
	long long found;

	sb_init(&sql);
	sb_printf(&sql, "WITH d AS (%s) ", pairs);
	sb_append(&sql, "SELECT (SELECT count(*) FROM d), ");
	sb_printf(&sql, "(SELECT string_agg(%s, " FINDINGS_SEP ") ", sample);
	sb_printf(&sql, "FROM (SELECT * FROM d ORDER BY %s LIMIT %d) s)", order, SAMPLE_LIMIT);
	{
		int from = f->n;
		char *hint = str_printf("correct the mapping file (the samples say which %s and uids conflict) and run "
								"phase2 apply again: nothing was written",
								n->prov->source_ids);

		found = findings_query(run, f, check, "mapping", sql.data);
		findings_hint(f, from, hint);
		free(hint);
	}
	sb_free(&sql);
	return found;
}

/* The four conflicts that make phase2 refuse before writing anything. */
static long long
find_conflicts(Run *run, const BackfillSql *n, Findings *f)
{
	const Plan *p = run->plan;
	long long total = 0;
	StrBuf held, differs;
	char *by_several_rows = str_printf("one %s matched by several rows", n->prov->target_user);
	char *by_several_users = str_printf("one row matched by several %ss", n->prov->target_user);

	total += conflict(run, n, f, by_several_rows,
					  "SELECT uid, string_agg(quote_literal(k), ' and ' ORDER BY k) AS keys "
					  "FROM (SELECT DISTINCT uid, k FROM pg_temp.phasemig_matches) m GROUP BY uid HAVING count(*) > 1",
					  "format('uid %s: keys %s', uid, keys)", "uid");
	total += conflict(run, n, f, by_several_users,
					  "SELECT k, string_agg(uid, ' and ' ORDER BY uid) AS uids "
					  "FROM (SELECT DISTINCT uid, k FROM pg_temp.phasemig_matches) m GROUP BY k HAVING count(*) > 1",
					  "format('key %s: uids %s', quote_literal(k), uids)", "k");
	free(by_several_rows);
	free(by_several_users);

	sb_init(&held);
	sb_printf(&held, "SELECT DISTINCT m.k, m.uid, o.%s::text AS holder ", p->q_key);
	sb_printf(&held, "FROM pg_temp.phasemig_matches m JOIN %s o ", p->q_table);
	sb_printf(&held, "ON o.%s = m.uid ", n->q_uid);
	sb_printf(&held, "AND o.%s::text <> m.k", p->q_key);
	total +=
		conflict(run, n, f, "uid already held by another row", held.data,
				 "format('uid %s for key %s is held by key %s', uid, quote_literal(k), quote_literal(holder))", "k");
	sb_free(&held);

	sb_init(&differs);
	sb_printf(&differs, "SELECT DISTINCT m.k, m.uid, t.%s AS current ", n->q_uid);
	sb_printf(&differs, "FROM pg_temp.phasemig_matches m JOIN %s t ", p->q_table);
	sb_printf(&differs, "ON t.%s::text = m.k ", p->q_key);
	sb_printf(&differs, "WHERE t.%s IS NOT NULL AND t.%s <> m.uid", n->q_uid, n->q_uid);
	total += conflict(run, n, f, "row already has a different uid", differs.data,
					  "format('key %s has %s, mapping says %s', quote_literal(k), current, uid)", "k");
	sb_free(&differs);
	return total;
}

/*
 * Refuse phase2 with F's findings: printed, and kept in migration_log's
 * metadata under KEY.  Frees F's items; returns EXIT_REFUSED.
 */
static int
refuse_with_findings(Run *run, Findings *f, const char *key, const char *why)
{
	json_t *meta = json_pack("{s:o}", key, findings_json(f));

	log_error("%s; nothing was changed", why);
	findings_print(f);
	run->op_metadata = json_dumps(meta, JSON_COMPACT);
	run->op_message = xstrdup(why);
	json_decref(meta);
	findings_free(f);
	return EXIT_REFUSED;
}

/*
 * Refuse values that do not fit their column (or, with
 * --skip-invalid-values, leave them empty and list them), then conflicts.
 */
int
bf_check_staging(BackfillRun *s)
{
	Run *run = s->run;
	const Options *opts = s->opts;
	const ImportFormat *import = s->sql.prov->import;
	long long refused = 0, imported = 0;
	Findings f;

	findings_init(&f);
	s->skipped = value_check_staging(run, s->op, &f, opts->skip_invalid_values);
	/* the import files' values the target would refuse at import, found now rather than after the window */
	if (opts->generate_missing && import->check_users)
	{
		char *candidates = bf_import_candidates_sql(run, &s->sql);

		imported = import->check_users(run, candidates, &f, opts->skip_invalid_values, &refused);
		s->skipped += imported - refused;
		free(candidates);
	}
	if (refused > 0)
		return refuse_with_findings(run, &f, "invalid_values",
									"the import files would have records the target refuses, and leaving the value "
									"out cannot help");
	if (s->skipped > 0)
	{
		if (!opts->skip_invalid_values)
		{
			log_hint("correct the export, or run again with --skip-invalid-values to leave these fields empty "
					 "(the users are then listed in a file under %s)",
					 opts->logs_dir);
			return refuse_with_findings(run, &f, "invalid_values",
										imported > 0 ? "the inputs have values that the target would refuse at import "
													   "or that do not fit the table"
													 : "the mapping has values that do not fit the table");
		}
		log_warning("the export has values that do not fit the table; --skip-invalid-values leaves them empty:");
		findings_print(&f);
		findings_free(&f);
		findings_init(&f);
	}
	build_matches(run, &s->sql);
	if (find_conflicts(run, &s->sql, &f) > 0)
		return refuse_with_findings(run, &f, "conflicts", "the mapping conflicts with the table");
	findings_free(&f);
	return s->skipped > 0 ? bf_write_skipped(run, opts) : EXIT_DONE;
}
