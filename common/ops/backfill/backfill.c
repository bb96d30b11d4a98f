/*
 * op_backfill.c: backfill_from_mapping, the Clerk to Firebase data move.
 *   phase1: the plan's source table (the loaded export), the backup table and
 *           a trigger that fills new columns of rows the application writes
 *           from then on, saving what it overwrites first;
 *   phase2: load the mapping, refuse values that do not fit their column
 *           and conflicts before any write, give rows
 *           that match nobody a uid (kept for good), save the originals and
 *           fill the columns in keyset batches, write the import file;
 *   phase3: remove the trigger (the application writes the columns itself).
 * Each rollback undoes its phase; phase2's and phase1's restore the saved
 * originals where the column still holds what phasemig wrote.
 *
 * The application's value wins: phasemig only fills a column that is NULL,
 * and the backup table keeps, per row and column, the value before
 * (original_N) and the value phasemig wrote (written_N).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/batch.h"
#include "engine/catalog.h"
#include "core/copyin.h"
#include "core/db.h"
#include "engine/fill.h"
#include "ops/backfill/firebase_uid.h"
#include "ops/backfill/import_file.h"
#include "core/log.h"
#include "ops/backfill/mapping.h"
#include "ops/ops.h"
#include "core/strbuf.h"
#include "ops/backfill/value_check.h"

typedef struct Names
{
	char *source;			/* migration_backup."<plan>:source" */
	char *backup;			/* migration_backup."<plan>:backfill" */
	char *generated;		/* migration_backup."<plan>:generated": uids phasemig gave, kept for good */
	char *import_files;		/* migration_backup."<plan>:import_files": the ledger of import files */
	char *sync_fn;			/* migration_backup."<plan>:sync" */
	char *trigger;			/* quoted trigger name on the table */
	char *trigger_name;		/* unquoted */
	char *q_match;
	char *q_email;			/* NULL without an email column */
	char *q_uid;
	/* build_lookups' tables: temporary, or (--jobs) unlogged in migration_backup */
	char *by_clerk_id;
	char *by_email;
	char *profile;
	/* the fill's batch statement (batch_statement), and what it holds */
	KeysetBatch batch;
	char *batch_columns;
	char *batch_steps;
} Names;

static void
names_init(Names *n, const Run *run, const Op *op)
{
	const Plan *p = run->plan;

	*n = (Names) {0};
	n->source = plan_backup_table(p, "source");
	n->backup = plan_backup_table(p, "backfill");
	n->generated = plan_backup_table(p, "generated");
	n->import_files = plan_backup_table(p, "import_files");
	n->sync_fn = plan_backup_table(p, "sync");
	n->trigger_name = str_printf("phasemig_sync_%s", p->name);
	n->trigger = plan_ident(p, n->trigger_name);
	n->q_match = plan_ident(p, op->match_column);
	n->q_email = op->email_column ? plan_ident(p, op->email_column) : NULL;
	n->q_uid = plan_ident(p, op->uid_column);
	n->by_clerk_id = plan_backup_table(p, "by_clerk_id");
	n->by_email = plan_backup_table(p, "by_email");
	n->profile = plan_backup_table(p, "profile");
}

static void
names_free(Names *n)
{
	free(n->batch_columns);
	free(n->batch_steps);
	free(n->source);
	free(n->backup);
	free(n->generated);
	free(n->import_files);
	free(n->sync_fn);
	free(n->trigger);
	free(n->trigger_name);
	free(n->q_match);
	free(n->q_email);
	free(n->q_uid);
	free(n->by_clerk_id);
	free(n->by_email);
	free(n->profile);
}

/*
 * With one connection the lookups are temporary tables (no WAL, local
 * buffers); --jobs's other connections cannot see those, so then they are
 * unlogged tables of migration_backup, dropped when the fill ends.
 */
static void
use_session_lookups(Names *n)
{
	free(n->by_clerk_id);
	free(n->by_email);
	free(n->profile);
	n->by_clerk_id = xstrdup("pg_temp.phasemig_by_clerk_id");
	n->by_email = xstrdup("pg_temp.phasemig_by_email");
	n->profile = xstrdup("pg_temp.phasemig_profile");
}

/* Drop the shared lookups; errors ignored (the next apply or the rollback drops them too). */
static void
drop_shared_lookups(Run *run, const Names *n)
{
	char *sql = str_printf("DROP TABLE IF EXISTS %s, %s, %s", n->by_clerk_id, n->by_email, n->profile);

	if (strncmp(n->by_clerk_id, "pg_temp.", 8) != 0 && PQstatus(run->conn) == CONNECTION_OK)
		PQclear(PQexec(run->conn, sql));
	free(sql);
}

static bool
table_exists(Run *run, const char *qname)
{
	return db_exists(run->conn, "SELECT 1 WHERE pg_catalog.to_regclass($1) IS NOT NULL", 1, (const char *[]) {qname});
}

/* ---------- the backup table: original and written value of every column phasemig filled ---------- */

/*
 * ON CONFLICT (key) DO UPDATE list for the backup table aliased bk: a column
 * phasemig fills again (written differs from original) takes the new pair;
 * the others keep what was saved first.  Caller frees.
 */
static char *
backup_upsert_sets(const Op *op)
{
	StrBuf sb;

	sb_init(&sb);
	for (int i = 1; i <= op->n_set; i++)
		sb_printf(&sb,
				  "original_%d = CASE WHEN EXCLUDED.original_%d IS DISTINCT FROM EXCLUDED.written_%d "
				  "THEN EXCLUDED.original_%d ELSE bk.original_%d END, "
				  "written_%d = CASE WHEN EXCLUDED.original_%d IS DISTINCT FROM EXCLUDED.written_%d "
				  "THEN EXCLUDED.written_%d ELSE bk.written_%d END, ",
				  i, i, i, i, i, i, i, i, i, i);
	sb_append(&sb, "saved_at = now()");
	return sb.data;
}

/* "original_1, written_1, ..." in the order the values are given. Caller frees. */
static char *
backup_columns(const Op *op)
{
	StrBuf sb;

	sb_init(&sb);
	for (int i = 1; i <= op->n_set; i++)
		sb_printf(&sb, "%soriginal_%d, written_%d", i > 1 ? ", " : "", i, i);
	return sb.data;
}

/* False (logged) for a backup table an earlier phasemig wrote: originals only, no written_N. */
static bool
backup_layout_ok(Run *run, const Names *n)
{
	if (db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) "
				  "AND attname = 'written_1' AND NOT attisdropped", 1, (const char *[]) {n->backup}))
		return true;
	log_error("backup table %s has the layout of an earlier phasemig (no written_1 column)", n->backup);
	log_hint("roll back phase2 with the phasemig version that applied it, then carry on with this one");
	return false;
}

/*
 * The backup table: key as text (so it is compared in whatever type the
 * plan's key has now, see restore_sql), then original_N / written_N of each
 * filled column in its own type.  Created with the trigger that writes it,
 * in phase1, and dropped by phase1 rollback.
 */
static int
ensure_backup_table(Run *run, const Op *op, const Names *n, int phase)
{
	const Plan *p = run->plan;
	StrBuf cols;
	char *sql, *pk, *def, *reg;
	int rc;

	if (table_exists(run, n->backup))
		return backup_layout_ok(run, n) ? EXIT_DONE : EXIT_FAILED;
	sb_init(&cols);
	for (int i = 0; i < op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i].column);

		sb_printf(&cols, ", t.%s AS original_%d, t.%s AS written_%d", q, i + 1, q, i + 1);
		free(q);
	}
	sql = str_printf("CREATE TABLE %s AS SELECT t.%s::text AS key%s, 'batch'::text AS saved_by, now() AS saved_at "
					 "FROM %s t WITH NO DATA", n->backup, p->q_key, cols.data, p->q_table);
	pk = str_printf("ALTER TABLE %s ADD PRIMARY KEY (key)", n->backup);
	def = str_printf("ALTER TABLE %s ALTER COLUMN saved_at SET DEFAULT now()", n->backup);
	reg = mlog_register_sql(p, phase, "backup_table", "backfill");
	log_info("creating %s for the values phasemig overwrites", n->backup);
	rc = ops_ddl(run, sql, (const char *[]) {sql, pk, def, reg}, 4);
	free(sql);
	free(pk);
	free(def);
	free(reg);
	sb_free(&cols);
	return rc;
}

/*
 * One restore batch: take the next keys out of the backup table and put each
 * original back where the column still holds what phasemig wrote (a value the
 * application wrote since stays).  The key is compared in the table's
 * current key type, cast on the backup's side so the table's index is used.
 */
static char *
restore_sql(Run *run, const Op *op, const Names *n, bool first)
{
	const Plan *p = run->plan;
	StrBuf sets, changed;
	char *sql, *steps;

	sb_init(&sets);
	sb_init(&changed);
	for (int i = 1; i <= op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i - 1].column);

		sb_printf(&sets, "%s%s = CASE WHEN t.%s IS NOT DISTINCT FROM b.written_%d THEN b.original_%d ELSE t.%s END",
				  i > 1 ? ", " : "", q, q, i, i, q);
		sb_printf(&changed, "%s(t.%s IS NOT DISTINCT FROM b.written_%d AND b.original_%d IS DISTINCT FROM b.written_%d)",
				  i > 1 ? " OR " : "", q, i, i, i);
		free(q);
	}
	steps = str_printf("u AS (UPDATE %s t SET %s FROM b WHERE t.%s = b.key::%s AND (%s) RETURNING 1)", p->q_table,
					   sets.data, p->q_key, p->key_type, changed.data);
	sql = keyset_batch_sql(&(KeysetBatch) {.table = n->backup, .key = "key", .take = true, .steps = steps,
											.changed = "u"}, first);
	free(steps);
	sb_free(&sets);
	sb_free(&changed);
	return sql;
}

/*
 * Put back every saved original and empty the backup table in batches (the
 * trigger may still write to it).  Run again while rows remain, for the
 * few a trigger saved behind the batches.  Returns an exit code.
 */
static int
restore_backup(Run *run, const Op *op, const Names *n, const Options *opts)
{
	const Plan *p = run->plan;
	char *first = restore_sql(run, op, n, true);
	char *next = restore_sql(run, op, n, false);
	char *count = str_printf("SELECT count(*) FROM %s", n->backup);
	long long restored = 0;
	int rc = backup_layout_ok(run, n) ? EXIT_DONE : EXIT_FAILED;

	for (int round = 0; rc == EXIT_DONE && db_count(run->conn, count, 0, NULL) > 0; round++)
	{
		BatchLoop b = {.what = "restoring", .sql_first = first, .sql_next = next, .entry = run->op_entry};

		if (round == 10)
		{
			log_error("%s still holds rows after %d passes", n->backup, round);
			log_hint("run the rollback again");
			rc = EXIT_FAILED;
			break;
		}
		batch_use_options(&b, opts, p);
		/* rows of the backup to walk: status shows the step's progress while it runs */
		b.rows_total = db_count(run->conn, count, 0, NULL);
		mlog_set_progress(run, run->op_entry, b.rows_total, 0, NULL);
		if (round == 0)
			log_info("restoring the original values from %s", n->backup);
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

/* ---------- phase1: source table, backup table and sync trigger ---------- */

/*
 * The trigger: for a row the application inserts, or whose Clerk id or email
 * it changes, with no uid yet, fill each column the application left NULL
 * from the mapping, saving original and written value first.  Any failure
 * leaves the row as the application wrote it, with a WARNING.
 */
static char *
sync_function_sql(const Run *run, const Op *op, const Names *n)
{
	const Plan *p = run->plan;
	char *cols = backup_columns(op);
	char *upsert = backup_upsert_sets(op);
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb,
			  "CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$\n"
			  "DECLARE s record; r record; uid text; n bigint; touched boolean := false;\n"
			  "BEGIN\n"
			  "  IF NEW.%s IS NOT NULL THEN RETURN NEW; END IF;\n"
			  /*
			   * an INSERT of a key that exists will not write this row (ON CONFLICT,
			   * or a unique violation): nothing to fill or save, and saving would
			   * wait on a batch that holds the existing row
			   */
			  "  IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM %s x WHERE x.%s = NEW.%s) THEN RETURN NEW; END IF;\n"
			  "  SELECT count(DISTINCT x.firebase_uid), min(x.firebase_uid) INTO n, uid FROM %s x\n"
			  "   WHERE x.clerk_user_id = NEW.%s::text;\n",
			  n->sync_fn, n->q_uid, p->q_table, p->q_key, p->q_key, n->source, n->q_match);
	if (n->q_email)
		sb_printf(&sb,
				  "  IF n = 0 THEN\n"
				  "    SELECT count(DISTINCT x.firebase_uid), min(x.firebase_uid) INTO n, uid FROM %s x\n"
				  "     WHERE x.clerk_user_id IS NULL AND x.email_norm = " MAPPING_EMAIL_NORM("NEW.") ";\n"
				  "  END IF;\n",
				  n->source, n->q_email);
	sb_printf(&sb,
			  "  IF n <> 1 THEN RETURN NEW; END IF;\n"
			  "  SELECT * INTO s FROM %s x WHERE x.firebase_uid = uid ORDER BY x.origin LIMIT 1;\n"
			  "  r := NEW;\n"
			  "  BEGIN\n",
			  n->source);
	for (int i = 0; i < op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i].column);
		const char *f = mapping_field_column(op->set[i].field);

		sb_printf(&sb, "    IF r.%s IS NULL AND s.%s IS NOT NULL THEN r.%s := s.%s; touched := true; END IF;\n",
				  q, f, q, f);
		free(q);
	}
	sb_printf(&sb, "    IF touched THEN\n      INSERT INTO %s AS bk (key, %s, saved_by) VALUES (NEW.%s::text",
			  n->backup, cols, p->q_key);
	for (int i = 0; i < op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i].column);

		sb_printf(&sb, ", NEW.%s, r.%s", q, q);
		free(q);
	}
	sb_printf(&sb,
			  ", 'trigger')\n"
			  "      ON CONFLICT (key) DO UPDATE SET %s;\n"
			  "    END IF;\n"
			  "    NEW := r;\n"
			  "  EXCEPTION WHEN OTHERS THEN\n"
			  "    RAISE WARNING 'phasemig: new columns left empty for this row: %%', SQLERRM;\n"
			  "  END;\n"
			  "  RETURN NEW;\n"
			  "END $fn$",
			  upsert);
	free(cols);
	free(upsert);
	return sb.data;
}

static int
install_sync_trigger(Run *run, const Op *op, const Names *n)
{
	const Plan *p = run->plan;
	char *fn = sync_function_sql(run, op, n);
	char *drop = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->trigger, p->q_table);
	char *create = str_printf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE OF %s%s%s ON %s FOR EACH ROW "
							  "EXECUTE FUNCTION %s()",
							  n->trigger, n->q_match, n->q_email ? ", " : "", n->q_email ? n->q_email : "",
							  p->q_table, n->sync_fn);
	char *reg = mlog_register_sql(p, 1, "sync_trigger", n->trigger_name);
	const char *stmts[4] = {fn, drop, create, reg};
	int rc;

	log_info("installing trigger %s on %s", n->trigger, p->q_table);
	rc = ops_ddl(run, create, stmts, 4);
	free(fn);
	free(drop);
	free(create);
	free(reg);
	return rc;
}

static int
backfill_apply1(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	Names n;
	int rc;

	(void) opts;
	names_init(&n, run, op);
	if (!catalog_column_exists(p, op->match_column) ||
		(op->email_column && !catalog_column_exists(p, op->email_column)))
	{
		log_error("column \"%s\"%s%s%s named by the backfill does not exist in %s", op->match_column,
				  op->email_column ? " or \"" : "", op->email_column ? op->email_column : "",
				  op->email_column ? "\"" : "", p->q_table);
		names_free(&n);
		return EXIT_BAD_INPUT;
	}
	/* 1. the source table the trigger and the batches read the mapping from */
	{
		char *create = str_printf("CREATE TABLE IF NOT EXISTS %s (" MAPPING_COLUMNS ")", n.source);
		char *ix1 = str_printf("CREATE INDEX IF NOT EXISTS \"%s:source_clerk\" ON %s (clerk_user_id)", p->name,
							   n.source);
		char *ix2 = str_printf("CREATE INDEX IF NOT EXISTS \"%s:source_email\" ON %s (email_norm)", p->name,
							   n.source);
		char *ix3 = str_printf("CREATE INDEX IF NOT EXISTS \"%s:source_uid\" ON %s (firebase_uid)", p->name,
							   n.source);
		char *reg = mlog_register_sql(p, 1, "source_table", "source");
		const char *stmts[5] = {create, ix1, ix2, ix3, reg};

		log_info("creating %s for the mapping", n.source);
		rc = ops_ddl(run, create, stmts, 5);
		free(create);
		free(ix1);
		free(ix2);
		free(ix3);
		free(reg);
	}
	for (int i = 0; rc == EXIT_DONE && i < op->n_set; i++)
		if (!catalog_column_exists(p, op->set[i].column))
		{
			log_error("column \"%s\" filled by the backfill does not exist in %s; add it with an add_column "
					  "operation before the backfill", op->set[i].column, p->q_table);
			rc = EXIT_BAD_INPUT;
		}
	/* 2. the backup table, which must exist as long as the trigger writes to it */
	if (rc == EXIT_DONE)
		rc = ensure_backup_table(run, op, &n, 1);
	/* 3. the trigger */
	if (rc == EXIT_DONE)
		rc = install_sync_trigger(run, op, &n);
	names_free(&n);
	return rc;
}

static int
drop_sync_trigger(Run *run, const Names *n)
{
	char *drop = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->trigger, run->plan->q_table);
	char *dropfn = str_printf("DROP FUNCTION IF EXISTS %s()", n->sync_fn);
	const char *stmts[2] = {drop, dropfn};
	int rc;

	log_info("removing trigger %s", n->trigger);
	rc = ops_ddl(run, drop, stmts, 2);
	if (rc == EXIT_DONE)
		mlog_unregister(run->conn, run->plan, "sync_trigger", n->trigger_name);
	free(drop);
	free(dropfn);
	return rc;
}

/*
 * --discard-generated-uids: forget the uids phasemig generated and the
 * ledger of import files (drop: their tables too).  Only right when no
 * import file was imported into Firebase: the next apply generates new uids.
 */
static void
discard_generated(Run *run, const Names *n, bool drop)
{
	if (table_exists(run, n->import_files))
	{
		char *files = str_printf("SELECT string_agg(path, ', ' ORDER BY written_at) FROM %s", n->import_files);
		char *listed = db_value(run->conn, files, 0, NULL);

		if (listed)
			log_warning("the import files that listed them must not be imported now: %s", listed);
		free(listed);
		free(files);
	}
	if (table_exists(run, n->generated))
	{
		char *count = str_printf("SELECT count(*) FROM %s", n->generated);

		log_info("discarding %lld generated uids", db_count(run->conn, count, 0, NULL));
		free(count);
	}
	{
		const char *tables[2] = {n->generated, n->import_files};

		/* both forgotten in one transaction: a uid is never kept without the file that listed it */
		db_exec(run->conn, "BEGIN");
		for (int i = 0; i < 2; i++)
			if (drop || table_exists(run, tables[i]))
			{
				char *sql = str_printf(drop ? "DROP TABLE IF EXISTS %s" : "DELETE FROM %s", tables[i]);

				db_exec(run->conn, sql);
				free(sql);
			}
		db_exec(run->conn, "COMMIT");
	}
}

static int adopt_source_generated(Run *run, const Names *n);

static int
backfill_rollback1(Run *run, const Op *op, const Options *opts)
{
	Names n;
	int rc;

	names_init(&n, run, op);
	/* 0. generated uids an earlier phasemig kept in the source table survive its drop */
	rc = adopt_source_generated(run, &n);
	/* 1. no more fills */
	if (rc == EXIT_DONE && mlog_is_registered(run->conn, run->plan, "sync_trigger", n.trigger_name))
		rc = drop_sync_trigger(run, &n);
	/* 2. what the backup still holds (an interrupted phase2 never rolled back) goes back, then the table */
	if (rc == EXIT_DONE && mlog_is_registered(run->conn, run->plan, "backup_table", "backfill"))
	{
		if (table_exists(run, n.backup))
			rc = restore_backup(run, op, &n, opts);
		if (rc == EXIT_DONE)
		{
			char *drop = str_printf("DROP TABLE IF EXISTS %s", n.backup);

			rc = ops_ddl(run, drop, (const char *[]) {drop}, 1);
			if (rc == EXIT_DONE)
				mlog_unregister(run->conn, run->plan, "backup_table", "backfill");
			free(drop);
		}
	}
	/* 3. the source table */
	if (rc == EXIT_DONE && mlog_is_registered(run->conn, run->plan, "source_table", "source"))
	{
		char *drop = str_printf("DROP TABLE IF EXISTS %s", n.source);
		const char *stmts[1] = {drop};

		rc = ops_ddl(run, drop, stmts, 1);
		if (rc == EXIT_DONE)
			mlog_unregister(run->conn, run->plan, "source_table", "source");
		free(drop);
	}
	/* 4. generated uids stay, like migration_log, unless the operator discards them */
	if (rc == EXIT_DONE && opts->discard_generated_uids)
		discard_generated(run, &n, true);
	else if (rc == EXIT_DONE && table_exists(run, n.generated))
		log_info("kept the generated uids in %s: the next apply gives each user the same one "
				 "(--discard-generated-uids forgets them)", n.generated);
	names_free(&n);
	return rc;
}

/* ---------- phase2: load, refuse conflicts, back up, fill ---------- */

/* Matches of the plan's rows to staged Firebase users, as a temp table. */
static void
build_matches(Run *run, const Names *n)
{
	const Plan *p = run->plan;
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb,
			  "CREATE TEMP TABLE phasemig_matches AS "
			  "SELECT t.%s::text AS k, x.firebase_uid AS uid, 'clerk id' AS how "
			  "FROM %s t JOIN pg_temp.phasemig_staging x ON x.clerk_user_id = t.%s::text",
			  p->q_key, p->q_table, n->q_match);
	if (n->q_email)
		sb_printf(&sb,
				  " UNION ALL SELECT t.%s::text, x.firebase_uid, 'email' "
				  "FROM %s t JOIN pg_temp.phasemig_staging x ON x.clerk_user_id IS NULL "
				  "AND x.email_norm = " MAPPING_EMAIL_NORM("t.") " "
				  "WHERE NOT EXISTS (SELECT 1 FROM pg_temp.phasemig_staging y WHERE y.clerk_user_id = t.%s::text)",
				  p->q_key, p->q_table, n->q_email, n->q_match);
	db_exec(run->conn, "DROP TABLE IF EXISTS pg_temp.phasemig_matches");
	db_exec(run->conn, sb.data);
	db_exec(run->conn, "ANALYZE pg_temp.phasemig_matches");
	sb_free(&sb);
}

/* The four conflicts that make phase2 refuse before writing anything. */
static long long
find_conflicts(Run *run, const Names *n, Findings *f)
{
	const Plan *p = run->plan;
	long long total = 0;
	char *sql;

	total += findings_query(run, f, "one Firebase user matched by several rows", "mapping",
							"WITH d AS (SELECT uid, string_agg(quote_literal(k), ' and ' ORDER BY k) AS keys "
							"FROM (SELECT DISTINCT uid, k FROM pg_temp.phasemig_matches) m GROUP BY uid "
							"HAVING count(*) > 1) "
							"SELECT (SELECT count(*) FROM d), (SELECT string_agg(format('uid %s: keys %s', uid, keys), '; ') "
							"FROM (SELECT * FROM d ORDER BY uid LIMIT 10) s)");
	total += findings_query(run, f, "one row matched by several Firebase users", "mapping",
							"WITH d AS (SELECT k, string_agg(uid, ' and ' ORDER BY uid) AS uids "
							"FROM (SELECT DISTINCT uid, k FROM pg_temp.phasemig_matches) m GROUP BY k "
							"HAVING count(*) > 1) "
							"SELECT (SELECT count(*) FROM d), (SELECT string_agg(format('key %s: uids %s', quote_literal(k), uids), '; ') "
							"FROM (SELECT * FROM d ORDER BY k LIMIT 10) s)");
	sql = str_printf("WITH d AS (SELECT DISTINCT m.k, m.uid, o.%s::text AS holder FROM pg_temp.phasemig_matches m "
					 "JOIN %s o ON o.%s = m.uid AND o.%s::text <> m.k) "
					 "SELECT (SELECT count(*) FROM d), (SELECT string_agg(format('uid %%s for key %%s is held by key %%s', "
					 "uid, quote_literal(k), quote_literal(holder)), '; ') FROM (SELECT * FROM d ORDER BY k LIMIT 10) s)",
					 p->q_key, p->q_table, n->q_uid, p->q_key);
	total += findings_query(run, f, "uid already held by another row", "mapping", sql);
	free(sql);
	sql = str_printf("WITH d AS (SELECT DISTINCT m.k, m.uid, t.%s AS current FROM pg_temp.phasemig_matches m "
					 "JOIN %s t ON t.%s::text = m.k WHERE t.%s IS NOT NULL AND t.%s <> m.uid) "
					 "SELECT (SELECT count(*) FROM d), (SELECT string_agg(format('key %%s has %%s, mapping says %%s', "
					 "quote_literal(k), current, uid), '; ') FROM (SELECT * FROM d ORDER BY k LIMIT 10) s)",
					 n->q_uid, p->q_table, p->q_key, n->q_uid, n->q_uid);
	total += findings_query(run, f, "row already has a different uid", "mapping", sql);
	free(sql);
	return total;
}

/* The plan's generated uids and its ledger of import files: created once, kept by every rollback. */
static int
ensure_generated_tables(Run *run, const Names *n)
{
	char *gen = str_printf("CREATE TABLE IF NOT EXISTS %s (clerk_user_id text PRIMARY KEY, "
						   "firebase_uid text NOT NULL UNIQUE, generated_by uuid NOT NULL, "
						   "generated_at timestamptz NOT NULL DEFAULT now(), import_file uuid)", n->generated);
	char *ledger = str_printf("CREATE TABLE IF NOT EXISTS %s (run_id uuid PRIMARY KEY, path text NOT NULL, "
							  "users bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT now())",
							  n->import_files);
	int rc;

	if (table_exists(run, n->generated) && table_exists(run, n->import_files))
		rc = EXIT_DONE;
	else
		rc = db_ddl_try_nonblocking(run->conn, "creating the tables of generated uids",
									(const char *[]) {gen, ledger}, 2) ? EXIT_DONE : EXIT_FAILED;
	free(gen);
	free(ledger);
	return rc;
}

/*
 * Generated uids an earlier phasemig kept only in the source table (origin
 * 'generated', import_file naming the run whose file listed them): adopted
 * into the plan's generated table the first time, so those users keep them.
 */
static int
adopt_source_generated(Run *run, const Names *n)
{
	char *any, *sql;
	bool has_marks;
	int rc;

	if (table_exists(run, n->generated) || !table_exists(run, n->source))
		return EXIT_DONE;
	any = str_printf("SELECT 1 FROM %s WHERE origin = 'generated' LIMIT 1", n->source);
	rc = db_exists(run->conn, any, 0, NULL) ? ensure_generated_tables(run, n) : -1;
	free(any);
	if (rc != EXIT_DONE)
		return rc < 0 ? EXIT_DONE : rc;
	has_marks = db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) "
						  "AND attname = 'import_file' AND NOT attisdropped", 1, (const char *[]) {n->source});
	sql = str_printf("WITH i AS (INSERT INTO %s (clerk_user_id, firebase_uid, generated_by, import_file) "
					 "SELECT DISTINCT ON (clerk_user_id) clerk_user_id, firebase_uid, $1::uuid, %s FROM %s "
					 "WHERE origin = 'generated' AND clerk_user_id IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1) "
					 "SELECT count(*) FROM i",
					 n->generated, has_marks ? "import_file::uuid" : "NULL::uuid", n->source);
	log_info("kept %lld generated uids found in %s", db_count(run->conn, sql, 1, (const char *[]) {run->run_id}),
			 n->source);
	free(sql);
	return EXIT_DONE;
}

/*
 * Give rows that matched nobody a new uid, kept in the plan's generated
 * table (for good) and in the source table (origin 'generated', so the
 * batches and the trigger find it).  A user who was given one before is
 * matched by it already and never gets a second.
 */
static int
generate_missing(Run *run, const Names *n, long long *generated)
{
	const Plan *p = run->plan;
	CopyIn ci;
	char *email_cond = n->q_email
		? str_printf(" AND NOT EXISTS (SELECT 1 FROM %s x WHERE x.clerk_user_id IS NULL "
					 "AND x.email_norm = " MAPPING_EMAIL_NORM("t.") ")", n->source, n->q_email)
		: xstrdup("");
	char *declare = str_printf(
		"DECLARE phasemig_missing NO SCROLL CURSOR FOR SELECT DISTINCT t.%s::text FROM %s t "
		"WHERE t.%s IS NULL AND t.%s IS NOT NULL "
		"AND NOT EXISTS (SELECT 1 FROM %s x WHERE x.clerk_user_id = t.%s::text)%s",
		n->q_match, p->q_table, n->q_uid, n->q_match, n->source, n->q_match, email_cond);
	char *insert = str_printf("WITH g AS (INSERT INTO %s (clerk_user_id, firebase_uid, generated_by) "
							  "SELECT clerk_user_id, firebase_uid, $1::uuid FROM pg_temp.phasemig_generated "
							  "ON CONFLICT DO NOTHING RETURNING clerk_user_id, firebase_uid), "
							  "s AS (INSERT INTO %s (firebase_uid, clerk_user_id, origin) "
							  "SELECT firebase_uid, clerk_user_id, 'generated' FROM g RETURNING 1) "
							  "SELECT count(*) FROM s", n->generated, n->source);
	int rc = EXIT_FAILED;

	free(email_cond);
	*generated = 0;
	if (ensure_generated_tables(run, n) != EXIT_DONE)
		goto done;
	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_generated (clerk_user_id text, firebase_uid text)");
	db_exec(run->conn, "TRUNCATE pg_temp.phasemig_generated");
	db_exec(run->conn, declare);
	for (;;)
	{
		PGresult *res = db_query(run->conn, "FETCH 10000 FROM phasemig_missing", 0, NULL);
		int rows = PQntuples(res);

		if (rows > 0)
		{
			if (!copyin_begin(&ci, run->conn, "COPY pg_temp.phasemig_generated (clerk_user_id, firebase_uid) FROM STDIN"))
			{
				PQclear(res);
				PQclear(PQexec(run->conn, "ROLLBACK"));
				goto done;
			}
			for (int i = 0; i < rows; i++)
			{
				char uid[FIREBASE_UID_LENGTH + 1];

				firebase_uid_generate(uid);
				copyin_field(&ci, PQgetvalue(res, i, 0));
				copyin_field(&ci, uid);
				copyin_end_row(&ci);
			}
			if (!copyin_finish(&ci, NULL))
			{
				PQclear(res);
				PQclear(PQexec(run->conn, "ROLLBACK"));
				goto done;
			}
		}
		PQclear(res);
		if (rows < 10000)
			break;
	}
	db_exec(run->conn, "CLOSE phasemig_missing");
	*generated = db_count(run->conn, insert, 1, (const char *[]) {run->run_id});
	db_exec(run->conn, "COMMIT");
	rc = EXIT_DONE;
done:
	free(declare);
	free(insert);
	return rc;
}

/*
 * The mapping resolved once, set-based, into three keyed tables the batches
 * probe by index instead of aggregating the source for every row:
 * phasemig_by_clerk_id (every Clerk id of the mapping, its uid when exactly
 * one, else NULL: an ambiguous id, and an id that is there at all stops the
 * email fallback), phasemig_by_email (emails of users without a Clerk id,
 * the uid when exactly one) and phasemig_profile (the fields of each uid, a
 * file's row before a generated one).  The same rules as the sync trigger's.
 */
static void
build_lookups(Run *run, const Op *op, const Names *n)
{
	const char *create = strncmp(n->by_clerk_id, "pg_temp.", 8) == 0 ? "CREATE TEMP TABLE" : "CREATE UNLOGGED TABLE";
	char *sql[8];
	StrBuf cols;

	/* the profile holds only what the batches write: at 1M users the whole source outgrows temp_buffers */
	sb_init(&cols);
	for (int i = 0; i < op->n_set; i++)
	{
		const char *c = mapping_field_column(op->set[i].field);
		bool seen = strcmp(c, "firebase_uid") == 0;

		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(c, mapping_field_column(op->set[j].field)) == 0;
		if (!seen)
			sb_printf(&cols, ", %s", c);
	}

	sql[0] = str_printf("DROP TABLE IF EXISTS %s, %s, %s", n->by_clerk_id, n->by_email, n->profile);
	sql[1] = str_printf("%s %s AS SELECT clerk_user_id AS v, "
						"CASE WHEN count(DISTINCT firebase_uid) = 1 THEN min(firebase_uid) END AS uid "
						"FROM %s WHERE clerk_user_id IS NOT NULL GROUP BY clerk_user_id",
						create, n->by_clerk_id, n->source);
	sql[2] = str_printf("%s %s AS SELECT email_norm AS v, "
						"CASE WHEN count(DISTINCT firebase_uid) = 1 THEN min(firebase_uid) END AS uid "
						"FROM %s WHERE clerk_user_id IS NULL AND email_norm IS NOT NULL GROUP BY email_norm",
						create, n->by_email, n->source);
	sql[3] = str_printf("%s %s AS SELECT DISTINCT ON (firebase_uid) firebase_uid%s FROM %s "
						"ORDER BY firebase_uid, origin", create, n->profile, cols.data, n->source);
	sb_free(&cols);
	sql[4] = str_printf("ALTER TABLE %s ADD PRIMARY KEY (v)", n->by_clerk_id);
	sql[5] = str_printf("ALTER TABLE %s ADD PRIMARY KEY (v)", n->by_email);
	sql[6] = str_printf("ALTER TABLE %s ADD PRIMARY KEY (firebase_uid)", n->profile);
	sql[7] = str_printf("ANALYZE %s, %s, %s", n->by_clerk_id, n->by_email, n->profile);
	for (int i = 0; i < 8; i++)
	{
		db_exec(run->conn, sql[i]);
		free(sql[i]);
	}
}

/*
 * The batch statement (keyset.h): find the mapping of each row of the next
 * keyset batch that has no uid yet, save original and written values, fill
 * the columns that are NULL.  Kept in n->batch for fill.c, and for the sweep
 * of a resumed run over the rows before its resume point.
 */
static void
batch_statement(Run *run, const Op *op, Names *n)
{
	const Plan *p = run->plan;
	StrBuf bcols, wcols, wvals, sets;
	char *cols = backup_columns(op);
	char *upsert = backup_upsert_sets(op);
	char *email = n->q_email ? str_printf(MAPPING_EMAIL_NORM("t."), n->q_email) : xstrdup("NULL::text");

	sb_init(&bcols);
	sb_init(&wcols);
	sb_init(&wvals);
	sb_init(&sets);
	sb_printf(&bcols, ", t.%s::text AS m, %s AS e, t.%s IS NULL AS todo", n->q_match, email, n->q_uid);
	for (int i = 0; i < op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i].column);
		char *type = catalog_column_type(p, op->set[i].column);

		/* the values the locked row holds now: the batch never reads the table twice */
		sb_printf(&bcols, ", t.%s AS c%d", q, i + 1);
		sb_printf(&wcols, ", b.c%d AS o%d, coalesce(b.c%d, r.%s::%s) AS w%d", i + 1, i + 1, i + 1,
				  mapping_field_column(op->set[i].field), type ? type : "text", i + 1);
		sb_printf(&wvals, ", w.o%d, w.w%d", i + 1, i + 1);
		sb_printf(&sets, "%s%s = w.w%d", i ? ", " : "", q, i + 1);
		free(q);
		free(type);
	}
	/* the match rules of the trigger, resolved once by build_lookups: one index probe each */
	n->batch_steps =
		str_printf("u AS (SELECT b.key, CASE WHEN c.v IS NOT NULL THEN c.uid ELSE e.uid END AS uid FROM b "
				   "LEFT JOIN %s c ON c.v = b.m "
				   "LEFT JOIN %s e ON e.v = b.e WHERE b.todo), "
				   "r AS (SELECT u.key, s.* FROM u JOIN %s s ON s.firebase_uid = u.uid), "
				   "w AS (SELECT b.key%s FROM b JOIN r ON r.key = b.key), "
				   "kept AS (INSERT INTO %s AS bk (key, %s, saved_by) SELECT w.key::text%s, 'batch' FROM w "
				   " ON CONFLICT (key) DO UPDATE SET %s RETURNING 1), "
				   /* the keys as an array: an index probe each, never a hash of the whole table */
				   "f AS (UPDATE %s t SET %s FROM w WHERE t.%s = w.key AND t.%s = ANY (ARRAY(SELECT key FROM w)) "
				   "RETURNING 1)",
				   n->by_clerk_id, n->by_email, n->profile, wcols.data, n->backup, cols, wvals.data, upsert,
				   p->q_table, sets.data, p->q_key, p->q_key);
	n->batch_columns = sb_steal(&bcols);
	n->batch = (KeysetBatch) {.table = p->q_table, .key = p->q_key, .columns = n->batch_columns, .lock = true,
							  .steps = n->batch_steps, .changed = "f"};
	sb_free(&wcols);
	sb_free(&wvals);
	sb_free(&sets);
	free(cols);
	free(upsert);
	free(email);
}

/* Stream a query's CSV into FILE through COPY TO STDOUT; returns rows or -1. */
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
	return rows;				/* the header line is not a row */
}

static long long
write_unmatched(Run *run, const Names *n, const Options *opts)
{
	const Plan *p = run->plan;
	char *path = str_printf("%s/%s-unmatched.csv", opts->logs_dir, run->run_id);
	char *sql = str_printf("COPY (SELECT t.%s AS key, t.%s AS match_value%s%s FROM %s t WHERE t.%s IS NULL ORDER BY 1) "
						   "TO STDOUT (FORMAT csv, HEADER)",
						   p->q_key, n->q_match, n->q_email ? ", t." : "", n->q_email ? n->q_email : "",
						   p->q_table, n->q_uid);
	long long rows = copy_out_to_file(run, sql, path);

	if (rows > 0)
		log_warning("%lld rows have no match in the mapping; listed in %s", rows, path);
	else
		remove(path);
	free(sql);
	free(path);
	return rows;
}

/*
 * The import file of this run: the generated users no earlier file listed
 * and whose row holds their uid now (a user listed twice would have its
 * Firebase account, and the password it has now, overwritten).
 */
static int
write_import_file(Run *run, const Names *n, const Options *opts, bool with_clerk)
{
	const Plan *p = run->plan;
	char *email = n->q_email ? str_printf("t.%s::text", n->q_email) : xstrdup("NULL::text");
	char *mark = str_printf("WITH m AS (UPDATE %s g SET import_file = $1::uuid WHERE g.import_file IS NULL "
							"AND EXISTS (SELECT 1 FROM %s t WHERE t.%s = g.firebase_uid) RETURNING g.firebase_uid) "
							"INSERT INTO pg_temp.phasemig_to_import SELECT firebase_uid FROM m",
							n->generated, p->q_table, n->q_uid);
	char *users = str_printf(
		"SELECT DISTINCT ON (g.firebase_uid) g.firebase_uid, %s, g.clerk_user_id, %s "
		"FROM %s g JOIN pg_temp.phasemig_to_import i ON i.firebase_uid = g.firebase_uid "
		"JOIN %s t ON t.%s = g.firebase_uid %s ORDER BY g.firebase_uid",
		email,
		with_clerk ? "nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), ''), "
		"CASE WHEN c.password_hasher = 'bcrypt' THEN c.password_digest END, c.primary_phone_number"
		: "NULL, NULL, NULL",
		n->generated, p->q_table, n->q_uid,
		with_clerk ? "LEFT JOIN pg_temp.phasemig_clerk c ON c.id = g.clerk_user_id" : "");
	ImportFile f = {.logs_dir = opts->logs_dir, .ledger = n->import_files, .mark_sql = mark, .users_sql = users};
	int rc = ensure_generated_tables(run, n);

	if (rc == EXIT_DONE)
		rc = import_file_write(run, &f);
	free(email);
	free(mark);
	free(users);
	return rc;
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
 * --skip-invalid-values: the export's values that do not fit, staged as NULL
 * by value_check_staging, listed in logs/RUN-ID-invalid-values.csv (the
 * localId, the element, the field and column, why; never the value).
 */
static int
write_skipped(Run *run, const Options *opts)
{
	char *path = str_printf("%s/%s-invalid-values.csv", opts->logs_dir, run->run_id);
	long long rows = copy_out_to_file(run, "COPY (SELECT * FROM pg_temp.phasemig_skipped ORDER BY element, field) "
									  "TO STDOUT (FORMAT csv, HEADER)", path);

	if (rows < 0)
	{
		log_error("could not list the values left empty in \"%s\"; nothing was changed", path);
		free(path);
		return EXIT_FAILED;
	}
	log_warning("%lld values of the export are left empty; listed in %s", rows, path);
	free(path);
	return EXIT_DONE;
}

static int
backfill_apply2(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	Names n;
	Findings f;
	long long loaded = 0, clerk_rows = 0, generated = 0, skipped = 0;
	int rc;
	FillTable fill = {0};
	char *sql[2] = {NULL, NULL};
	char *only_empty = NULL;
	json_t *meta;

	names_init(&n, run, op);
	if (opts->mapping == NULL)
	{
		log_error("no mapping given: use --mapping FILE (a Firebase Auth export, or clerk_user_id,firebase_uid pairs)");
		names_free(&n);
		return EXIT_BAD_INPUT;
	}
	/* 1. finish the import files an interrupted run left under their temporary name */
	{
		ImportFile pf = {.logs_dir = opts->logs_dir, .ledger = n.import_files};

		import_file_finish_partials(run, &pf);
	}
	/* 2. read the inputs into temporary staging tables; nothing is written yet */
	log_info("loading the mapping from \"%s\"", opts->mapping);
	if ((rc = mapping_load(run->conn, opts->mapping, &loaded)) != EXIT_DONE)
		goto done;
	log_info("read %lld users from the mapping", loaded);
	if (opts->clerk_export)
	{
		if ((rc = mapping_load_clerk_csv(run->conn, opts->clerk_export, &clerk_rows)) != EXIT_DONE)
			goto done;
		log_info("read %lld users from the Clerk export \"%s\"", clerk_rows, opts->clerk_export);
	}
	if ((rc = adopt_source_generated(run, &n)) != EXIT_DONE)
		goto done;
	if (table_exists(run, n.generated))
	{
		/* a user given a uid before keeps it, whatever was rolled back since */
		char *keep = str_printf("INSERT INTO pg_temp.phasemig_staging (firebase_uid, clerk_user_id, origin) "
								"SELECT firebase_uid, clerk_user_id, 'generated' FROM %s", n.generated);

		db_exec(run->conn, keep);
		free(keep);
	}
	db_exec(run->conn, "CREATE INDEX ON pg_temp.phasemig_staging (clerk_user_id)");
	db_exec(run->conn, "CREATE INDEX ON pg_temp.phasemig_staging (email_norm)");
	db_exec(run->conn, "ANALYZE pg_temp.phasemig_staging");

	/* 3. refuse (or, asked to, leave empty) values that do not fit their column, then conflicts */
	findings_init(&f);
	if ((skipped = value_check_staging(run, op, &f, opts->skip_invalid_values)) > 0)
	{
		if (!opts->skip_invalid_values)
		{
			log_hint("correct the export, or run again with --skip-invalid-values to leave these fields empty "
					 "(the users are then listed in a file under %s)", opts->logs_dir);
			rc = refuse_with_findings(run, &f, "invalid_values", "the mapping has values that do not fit the table");
			goto done;
		}
		log_warning("the export has values that do not fit the table; --skip-invalid-values leaves them empty:");
		findings_print(&f);
		findings_free(&f);
		findings_init(&f);
	}
	build_matches(run, &n);
	if (find_conflicts(run, &n, &f) > 0)
	{
		rc = refuse_with_findings(run, &f, "conflicts", "the mapping conflicts with the table");
		goto done;
	}
	findings_free(&f);
	if (skipped > 0 && (rc = write_skipped(run, opts)) != EXIT_DONE)
		goto done;

	/* 4. the mapping becomes the plan's source (the sync trigger reads it too) */
	{
		char *del = str_printf("DELETE FROM %s", n.source);
		char *ins = str_printf("INSERT INTO %s (" MAPPING_COLUMN_LIST ") SELECT " MAPPING_COLUMN_LIST
							   " FROM pg_temp.phasemig_staging", n.source);
		const char *stmts[2] = {del, ins};

		/* rows of phasemig's own table: the application's reads go on, so not a lock hold */
		rc = db_ddl_try_nonblocking(run->conn, "replacing the mapping", stmts, 2) ? EXIT_DONE : EXIT_FAILED;
		free(del);
		free(ins);
		if (rc != EXIT_DONE)
			goto done;
		ins = str_printf("ANALYZE %s", n.source);
		db_exec(run->conn, ins);
		free(ins);
	}
	/* 5. rows that match nobody get new uids when asked */
	if (opts->generate_missing && (rc = generate_missing(run, &n, &generated)) != EXIT_DONE)
		goto done;
	if (generated > 0)
	{
		char *analyze = str_printf("ANALYZE %s", n.source);

		db_exec(run->conn, analyze);
		free(analyze);
		log_info("generated %lld new Firebase uids for rows with no match", generated);
	}

	/* 6. originals are saved in the same statement that fills each batch */
	if ((rc = ensure_backup_table(run, op, &n, 2)) != EXIT_DONE)
		goto done;
	if (opts->jobs <= 1)
		use_session_lookups(&n);
	build_lookups(run, op, &n);
	log_info("filling %s in batches of %d rows", n.q_uid, batch_size_of(opts, p));
	batch_statement(run, op, &n);
	fill = (FillTable) {.label = op->label, .batch = n.batch, .entry = run->op_entry};
	rc = fill_tables(run, &fill, 1, opts);

	/*
	 * 7. a resumed run also fills the rows before its resume point that have
	 * a match now (uids generated by this run, a mapping that grew)
	 */
	if (rc == EXIT_DONE && fill.resumed)
	{
		KeysetBatch rest = n.batch;
		BatchLoop sweep = {.what = "backfill, rows before the resume point", .rows_total = -1};

		rest.filter = only_empty = str_printf("t.%s IS NULL", n.q_uid);
		sql[0] = keyset_batch_sql(&rest, false);
		sql[1] = keyset_batch_sql(&rest, true);
		sweep.sql_next = sql[0];
		sweep.sql_first = sql[1];
		batch_use_options(&sweep, opts, p);
		log_info("filling the rows without a uid before the resume point");
		rc = batch_run(run, &sweep);
		fill.changed += sweep.changed;
		fill.batches += sweep.batches;
		fill.seconds += sweep.seconds;
		free(sweep.last_key);
	}

	/* 8. report what is left and what to import */
	{
		long long unmatched = rc == EXIT_DONE ? write_unmatched(run, &n, opts) : -1;
		double rate = fill.seconds > 0 ? (double) (fill.rows_done) / fill.seconds : 0;

		if (rc == EXIT_DONE && opts->generate_missing)
			rc = write_import_file(run, &n, opts, opts->clerk_export != NULL);
		meta = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:i}", "mapping_users", (json_int_t) loaded,
						 "rows_filled", (json_int_t) fill.changed, "unmatched", (json_int_t) (unmatched < 0 ? 0 : unmatched),
						 "generated", (json_int_t) generated, "invalid_values_skipped", (json_int_t) skipped,
						 "batches", (json_int_t) fill.batches, "seconds", fill.seconds,
						 "rows_per_second", rate, "longest_batch_ms", fill.longest_batch_ms, "jobs", opts->jobs);
		run->op_metadata = json_dumps(meta, JSON_COMPACT);
		run->op_rows = fill.rows_done;
		if (rc == EXIT_DONE)
			log_info("backfill done: %lld rows scanned, %lld filled, %lld without a match, %ld batches, %.1f s, "
					 "%.0f rows/s", fill.rows_done, fill.changed, unmatched < 0 ? 0 : unmatched, fill.batches,
					 fill.seconds, rate);
		json_decref(meta);
	}
done:
	free(sql[0]);
	free(sql[1]);
	free(only_empty);
	drop_shared_lookups(run, &n);	/* done or failed: --jobs's lookups go */
	names_free(&n);
	return rc;
}

static int
backfill_rollback2(Run *run, const Op *op, const Options *opts)
{
	Names n;
	int rc = EXIT_DONE;

	names_init(&n, run, op);
	drop_shared_lookups(run, &n);	/* a killed --jobs run's */
	/* 1. the trigger must not fill rows again from a mapping that is being rolled back */
	if ((rc = adopt_source_generated(run, &n)) == EXIT_DONE && table_exists(run, n.source))
	{
		char *del = str_printf("DELETE FROM %s", n.source);

		db_exec(run->conn, del);
		free(del);
	}
	/*
	 * 2. originals back, in batches, for rows filled by batches and by the
	 * trigger alike; the table stays (empty) for the trigger until phase1 rollback
	 */
	if (rc == EXIT_DONE && table_exists(run, n.backup))
		rc = restore_backup(run, op, &n, opts);
	/* 3. the generated uids stay for the next apply, unless the operator discards them */
	if (rc == EXIT_DONE && opts->discard_generated_uids)
		discard_generated(run, &n, false);
	names_free(&n);
	return rc;
}

/* ---------- phase3: the application writes the columns itself now ---------- */

static int
backfill_apply3(Run *run, const Op *op, const Options *opts)
{
	Names n;
	int rc = EXIT_DONE;

	(void) opts;
	names_init(&n, run, op);
	if (catalog_trigger_exists(run->plan, n.trigger_name))
		rc = drop_sync_trigger(run, &n);
	if (rc == EXIT_DONE)
	{
		char *reg = mlog_register_sql(run->plan, 3, "sync_trigger_removed", n.trigger_name);

		db_exec(run->conn, reg);
		free(reg);
	}
	names_free(&n);
	return rc;
}

static int
backfill_rollback3(Run *run, const Op *op, const Options *opts)
{
	Names n;
	int rc = EXIT_DONE;

	(void) opts;
	names_init(&n, run, op);
	if (mlog_is_registered(run->conn, run->plan, "sync_trigger_removed", n.trigger_name))
	{
		rc = install_sync_trigger(run, op, &n);
		if (rc == EXIT_DONE)
			mlog_unregister(run->conn, run->plan, "sync_trigger_removed", n.trigger_name);
	}
	names_free(&n);
	return rc;
}

const OpHandlers op_backfill_from_mapping = {
	.apply = {[1] = backfill_apply1, [2] = backfill_apply2, [3] = backfill_apply3},
	.rollback = {[1] = backfill_rollback1, [2] = backfill_rollback2, [3] = backfill_rollback3},
	.contract_last = true,
};
