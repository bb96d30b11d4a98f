/*
 * generate.c: uids for rows that match nobody (--generate-missing), kept for
 * good in the plan's generated table, so a user keeps the same uid across
 * rollbacks and applies, together with the ledger of the import files that
 * listed them; adopting the uids an earlier phasemig kept only in the source
 * table, and forgetting them all (--discard-generated-uids).
 */
#include <stdlib.h>

#include "core/copyin.h"
#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/backfill.h"

/* Rows fetched, and uids made, at a time. */
#define GENERATE_CHUNK 10000

/*
 * Whether this run made the tables below, or, in a dry run, printed the
 * statements that would have: its later steps take them as there.
 */
static bool generated_tables_made;

/* The plan's generated uids and its ledger of import files: created once, kept by every rollback. */
int
bf_ensure_generated_tables(Run *run, const BackfillSql *n)
{
	char *gen = str_printf("CREATE TABLE IF NOT EXISTS %s (%s text PRIMARY KEY, "
						   "%s text NOT NULL UNIQUE, generated_by uuid NOT NULL, "
						   "generated_at timestamptz NOT NULL DEFAULT now(), import_file uuid)",
						   n->generated, n->prov->source_id, n->prov->target_id);
	char *ledger = str_printf("CREATE TABLE IF NOT EXISTS %s (run_id uuid PRIMARY KEY, path text NOT NULL, "
							  "users bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT now())",
							  n->import_files);
	bool ok = true;

	if (!generated_tables_made && (!bf_table_exists(run, n->generated) || !bf_table_exists(run, n->import_files)))
		ok = generated_tables_made = db_ddl_try_nonblocking(run->conn, "creating the tables of generated uids",
															(const char *[]){gen, ledger}, 2);
	free(gen);
	free(ledger);
	return ok ? EXIT_DONE : EXIT_FAILED;
}

/*
 * Generated uids an earlier phasemig kept only in the source table (origin
 * 'generated', import_file naming the run whose file listed them): adopted
 * into the plan's generated table the first time, so those users keep them.
 */
int
bf_adopt_source_generated(Run *run, const BackfillSql *n)
{
	const char *src = n->prov->source_id, *dst = n->prov->target_id;
	StrBuf sql;
	char *any;
	bool has_any, has_marks;
	long long kept;
	int rc;

	if (bf_table_exists(run, n->generated) || !bf_table_exists(run, n->source))
		return EXIT_DONE;
	any = str_printf("SELECT 1 FROM %s WHERE origin = 'generated' LIMIT 1", n->source);
	has_any = db_exists(run->conn, any, 0, NULL);
	free(any);
	if (!has_any)
		return EXIT_DONE;
	if ((rc = bf_ensure_generated_tables(run, n)) != EXIT_DONE)
		return rc;
	has_marks = db_exists(run->conn,
						  "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) "
						  "AND attname = 'import_file' AND NOT attisdropped",
						  1, (const char *[]){n->source});
	sb_init(&sql);
	sb_printf(&sql, "INSERT INTO %s (%s, %s, generated_by, import_file) ", n->generated, src, dst);
	sb_printf(&sql, "SELECT DISTINCT ON (%s) %s, %s, $1::uuid, ", src, src, dst);
	sb_append(&sql, has_marks ? "import_file::uuid" : "NULL::uuid");
	sb_printf(&sql, " FROM %s ", n->source);
	sb_printf(&sql, "WHERE origin = 'generated' AND %s IS NOT NULL ON CONFLICT DO NOTHING", src);
	kept = db_execp_rows(run->conn, sql.data, 1, (const char *[]){run->run_id});
	if (!dryrun_on())
		log_info("kept %lld generated uids found in %s", kept, n->source);
	sb_free(&sql);
	return EXIT_DONE;
}

/*
 * The source ids of rows without a uid that the mapping in SOURCE matches
 * neither by that id nor (with an email column) by email.
 */
static char *
missing_sql(const Run *run, const BackfillSql *n, const char *source)
{
	const char *src = n->prov->source_id;
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb, "SELECT DISTINCT t.%s::text ", n->q_match);
	sb_printf(&sb, "FROM %s t ", run->plan->q_table);
	sb_printf(&sb, "WHERE t.%s IS NULL ", n->q_uid);
	sb_printf(&sb, "AND t.%s IS NOT NULL ", n->q_match);
	sb_printf(&sb, "AND NOT EXISTS (SELECT 1 FROM %s x ", source);
	sb_printf(&sb, "WHERE x.%s = t.%s::text)", src, n->q_match);
	if (n->q_email)
	{
		sb_printf(&sb, " AND NOT EXISTS (SELECT 1 FROM %s x ", source);
		sb_printf(&sb, "WHERE x.%s IS NULL ", src);
		sb_printf(&sb, "AND x.email_norm = " BF_EMAIL_NORM("t.") ")", n->q_email);
	}
	return sb_steal(&sb);
}

/*
 * The users the import files would list, for their pre-flight (phase2
 * checks them before it writes anything): those the mapping leaves without
 * a match (they would get a uid) and those given one earlier but not listed
 * yet, with the users earlier files listed (listed: true), each with the
 * email of its row; columns source id, email, target id (NULL until
 * generated) and listed.
 */
char *
bf_import_candidates_sql(const Run *run, const BackfillSql *n)
{
	const char *src = n->prov->source_id, *dst = n->prov->target_id;
	char *missing = missing_sql(run, n, "pg_temp.phasemig_staging");
	char *email = n->q_email ? str_printf("t.%s::text", n->q_email) : xstrdup("NULL::text");
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb, "SELECT m.k AS %s, %s AS email, NULL::text AS %s, false AS listed ", src, email, dst);
	sb_printf(&sb, "FROM (%s) m(k) JOIN %s t ON t.%s::text = m.k", missing, run->plan->q_table, n->q_match);
	if (generated_tables_made || bf_table_exists((Run *) run, n->generated))
	{
		sb_printf(&sb, " UNION ALL SELECT g.%s, %s, g.%s, g.import_file IS NOT NULL ", src, email, dst);
		sb_printf(&sb, "FROM %s g JOIN %s t ON t.%s::text = g.%s", n->generated, run->plan->q_table, n->q_match, src);
	}
	free(email);
	free(missing);
	return sb_steal(&sb);
}

/*
 * COPY one chunk of source ids (RES's first column), each with a new uid the
 * provider made, into pg_temp.phasemig_generated.
 */
static bool
copy_new_uids(Run *run, const BackfillSql *n, PGresult *res)
{
	char *copy =
		str_printf("COPY pg_temp.phasemig_generated (%s, %s) FROM STDIN", n->prov->source_id, n->prov->target_id);
	CopyIn ci;
	bool begun = copyin_begin(&ci, run->conn, copy);

	free(copy);
	if (!begun)
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		char uid[BF_MAX_UID + 1];

		n->prov->new_uid(uid);
		copyin_field(&ci, PQgetvalue(res, i, 0));
		copyin_field(&ci, uid);
		copyin_end_row(&ci);
	}
	return copyin_finish(&ci, NULL);
}

/*
 * A dry run makes no uid: it counts the users that would get one, from the
 * staged mapping (what the source table would hold by now), says how they
 * would be made, and prints KEEP.
 */
static long long
dry_run_uids(Run *run, const BackfillSql *n, const char *keep)
{
	char *missing = missing_sql(run, n, "pg_temp.phasemig_staging");
	char *count = str_printf("SELECT count(*) FROM (%s) s", missing);
	long long users = db_count(run->conn, count, 0, NULL);

	dryrun_comment("--generate-missing: %lld users without a match would get a new uid, made by phasemig and "
				   "copied (COPY FROM STDIN) into this session's temporary table pg_temp.phasemig_generated, "
				   "then kept for good by this statement ($1: the run's id)",
				   users);
	db_execp(run->conn, keep, 1, (const char *[]){run->run_id});
	free(count);
	free(missing);
	return users;
}

/*
 * Make the uids in one transaction: the source ids, a chunk at a time, with
 * their new uids into pg_temp.phasemig_generated, then from there into the
 * generated table and the source table.  Returns the uids kept, or -1 (the
 * transaction rolled back).  A dry run returns how many it would make.
 */
static long long
make_uids(Run *run, const BackfillSql *n)
{
	const char *src = n->prov->source_id, *dst = n->prov->target_id;
	char *missing, *declare, *fetch, *temp;
	char *keep = str_printf("WITH g AS (INSERT INTO %s (%s, %s, generated_by) "
							"SELECT %s, %s, $1::uuid FROM pg_temp.phasemig_generated "
							"ON CONFLICT DO NOTHING RETURNING %s, %s) "
							"INSERT INTO %s (%s, %s, origin) "
							"SELECT %s, %s, 'generated' FROM g",
							n->generated, src, dst, src, dst, src, dst, n->source, dst, src, dst, src);
	long long kept = -1;
	int rows;

	if (dryrun_on())
	{
		kept = dry_run_uids(run, n, keep);
		free(keep);
		return kept;
	}
	missing = missing_sql(run, n, n->source);
	declare = str_printf("DECLARE phasemig_missing NO SCROLL CURSOR FOR %s", missing);
	fetch = str_printf("FETCH %d FROM phasemig_missing", GENERATE_CHUNK);
	temp = str_printf("CREATE TEMP TABLE IF NOT EXISTS phasemig_generated (%s text, %s text)", src, dst);
	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, temp);
	db_exec(run->conn, "TRUNCATE pg_temp.phasemig_generated");
	db_exec(run->conn, declare);
	do
	{
		PGresult *res = db_query(run->conn, fetch, 0, NULL);
		bool ok;

		rows = PQntuples(res);
		ok = rows == 0 || copy_new_uids(run, n, res);
		PQclear(res);
		if (!ok)
		{
			PQclear(PQexec(run->conn, "ROLLBACK"));
			goto done;
		}
	} while (rows == GENERATE_CHUNK);
	db_exec(run->conn, "CLOSE phasemig_missing");
	kept = db_execp_rows(run->conn, keep, 1, (const char *[]){run->run_id});
	db_exec(run->conn, "COMMIT");
done:
	free(temp);
	free(missing);
	free(declare);
	free(keep);
	free(fetch);
	return kept;
}

/*
 * Give rows that matched nobody a new uid, kept in the plan's generated
 * table (for good) and in the source table (origin 'generated', so the
 * batches and the trigger find it).  A user who was given one before is
 * matched by it already and never gets a second.
 */
int
bf_generate_missing(BackfillRun *s)
{
	Run *run = s->run;

	s->generated = 0;
	if (bf_ensure_generated_tables(run, &s->sql) != EXIT_DONE)
		return EXIT_FAILED;
	if ((s->generated = make_uids(run, &s->sql)) < 0)
	{
		s->generated = 0;
		return EXIT_FAILED;
	}
	if (s->generated > 0)
	{
		bf_exec_free(run, str_printf("ANALYZE %s", s->sql.source));
		if (!dryrun_on())
			log_info("generated %lld new %s for rows with no match", s->generated, s->sql.prov->target_ids);
	}
	return EXIT_DONE;
}

/*
 * --discard-generated-uids: forget the uids phasemig generated and the
 * ledger of import files (drop: their tables too).  Only right when no
 * import file was imported into the target: the next apply generates new uids.
 */
void
bf_discard_generated(Run *run, const BackfillSql *n, bool drop)
{
	const char *tables[2] = {n->generated, n->import_files};

	if (bf_table_exists(run, n->import_files))
	{
		char *files = str_printf("SELECT string_agg(path, ', ' ORDER BY written_at) FROM %s", n->import_files);
		char *listed = db_value(run->conn, files, 0, NULL);

		if (listed)
			log_warning("the import files that listed them must not be imported now: %s", listed);
		free(listed);
		free(files);
	}
	if (bf_table_exists(run, n->generated))
	{
		char *count = str_printf("SELECT count(*) FROM %s", n->generated);

		log_info("discarding %lld generated uids", db_count(run->conn, count, 0, NULL));
		free(count);
	}
	/* both forgotten in one transaction: a uid is never kept without the file that listed it */
	db_exec(run->conn, "BEGIN");
	for (int i = 0; i < 2; i++)
		if (drop || generated_tables_made || bf_table_exists(run, tables[i]))
			bf_exec_free(run, str_printf(drop ? "DROP TABLE IF EXISTS %s" : "DELETE FROM %s", tables[i]));
	db_exec(run->conn, "COMMIT");
}
