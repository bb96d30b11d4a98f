/*
 * op_backfill.c: backfill_from_mapping, the Clerk to Firebase data move.
 *   phase1: the plan's source table (the loaded export) and a trigger that
 *           fills new columns of rows the application writes from then on;
 *   phase2: load the mapping, refuse conflicts before any write, save the
 *           originals and fill the columns in keyset batches;
 *   phase3: remove the trigger (the application writes the columns itself).
 * Each rollback undoes its phase; phase2's restores the saved originals.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "batch.h"
#include "catalog.h"
#include "copyin.h"
#include "db.h"
#include "firebase_uid.h"
#include "log.h"
#include "mapping.h"
#include "ops.h"
#include "strbuf.h"

typedef struct Names
{
	char *source;			/* migration_backup."<plan>:source" */
	char *backup;			/* migration_backup."<plan>:backfill" */
	char *sync_fn;			/* migration_backup."<plan>:sync" */
	char *trigger;			/* quoted trigger name on the table */
	char *trigger_name;		/* unquoted */
	char *q_match;
	char *q_email;			/* NULL without an email column */
	char *q_uid;
} Names;

static void
names_init(Names *n, const Run *run, const Op *op)
{
	const Plan *p = run->plan;

	n->source = plan_backup_table(p, "source");
	n->backup = plan_backup_table(p, "backfill");
	n->sync_fn = plan_backup_table(p, "sync");
	n->trigger_name = str_printf("phasemig_sync_%s", p->name);
	n->trigger = plan_ident(p, n->trigger_name);
	n->q_match = plan_ident(p, op->match_column);
	n->q_email = op->email_column ? plan_ident(p, op->email_column) : NULL;
	n->q_uid = plan_ident(p, op->uid_column);
}

static void
names_free(Names *n)
{
	free(n->source);
	free(n->backup);
	free(n->sync_fn);
	free(n->trigger);
	free(n->trigger_name);
	free(n->q_match);
	free(n->q_email);
	free(n->q_uid);
}

/* ---------- phase1: source table and sync trigger ---------- */

static char *
sync_function_sql(const Run *run, const Op *op, const Names *n)
{
	StrBuf sb;

	sb_init(&sb);
	sb_printf(&sb,
			  "CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$\n"
			  "DECLARE s record; r record; uid text; n bigint;\n"
			  "BEGIN\n"
			  "  IF NEW.%s IS NOT NULL THEN RETURN NEW; END IF;\n"
			  "  SELECT count(DISTINCT x.firebase_uid), min(x.firebase_uid) INTO n, uid FROM %s x\n"
			  "   WHERE x.clerk_user_id = NEW.%s::text;\n",
			  n->sync_fn, n->q_uid, n->source, n->q_match);
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
		char *q = plan_ident(run->plan, op->set[i].column);

		sb_printf(&sb, "    r.%s := s.%s;\n", q, mapping_field_column(op->set[i].field));
		free(q);
	}
	sb_append(&sb,
			  "    NEW := r;\n"
			  "  EXCEPTION WHEN OTHERS THEN\n"
			  "    RAISE WARNING 'phasemig: new columns left empty for this row: %', SQLERRM;\n"
			  "  END;\n"
			  "  RETURN NEW;\n"
			  "END $fn$");
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

static int
backfill_rollback1(Run *run, const Op *op, const Options *opts)
{
	Names n;
	int rc = EXIT_DONE;

	(void) opts;
	names_init(&n, run, op);
	if (mlog_is_registered(run->conn, run->plan, "sync_trigger", n.trigger_name))
		rc = drop_sync_trigger(run, &n);
	if (rc == EXIT_DONE && mlog_is_registered(run->conn, run->plan, "source_table", "source"))
	{
		char *drop = str_printf("DROP TABLE IF EXISTS %s", n.source);
		const char *stmts[1] = {drop};

		rc = ops_ddl(run, drop, stmts, 1);
		if (rc == EXIT_DONE)
			mlog_unregister(run->conn, run->plan, "source_table", "source");
		free(drop);
	}
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

/* Give rows that matched nobody a new uid, kept in the source table (origin 'generated'). */
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
	char *insert = str_printf("INSERT INTO %s (firebase_uid, clerk_user_id, origin) "
							  "SELECT firebase_uid, clerk_user_id, 'generated' FROM pg_temp.phasemig_generated",
							  n->source);

	free(email_cond);
	*generated = 0;
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
				return EXIT_FAILED;
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
				return EXIT_FAILED;
			}
			*generated += rows;
		}
		PQclear(res);
		if (rows < 10000)
			break;
	}
	db_exec(run->conn, "CLOSE phasemig_missing");
	db_exec(run->conn, insert);
	db_exec(run->conn, "COMMIT");
	free(declare);
	free(insert);
	return EXIT_DONE;
}

static void
ensure_backup_table(Run *run, const Op *op, const Names *n)
{
	const Plan *p = run->plan;
	StrBuf cols;
	char *sql;

	if (db_count(run->conn, "SELECT count(*) FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)", 1,
				 (const char *[]) {n->backup}) > 0)
		return;
	sb_init(&cols);
	for (int i = 0; i < op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i].column);

		sb_printf(&cols, ", %s", q);
		free(q);
	}
	sql = str_printf("CREATE TABLE %s AS SELECT %s AS key%s, now() AS saved_at FROM %s WITH NO DATA", n->backup,
					 p->q_key, cols.data, p->q_table);
	{
		char *pk = str_printf("ALTER TABLE %s ADD PRIMARY KEY (key)", n->backup);
		char *def = str_printf("ALTER TABLE %s ALTER COLUMN saved_at SET DEFAULT now()", n->backup);
		char *reg = mlog_register_sql(p, 2, "backup_table", "backfill");
		const char *stmts[4] = {sql, pk, def, reg};

		if (ops_ddl(run, sql, stmts, 4) != EXIT_DONE)
			log_exit(EXIT_FAILED);
		free(pk);
		free(def);
		free(reg);
	}
	free(sql);
	sb_free(&cols);
}

/* The batch statement: save originals, then fill the rows of the next keyset batch. */
static char *
batch_sql(Run *run, const Op *op, const Names *n, bool first)
{
	const Plan *p = run->plan;
	StrBuf sb, cols, tcols, sets;

	sb_init(&sb);
	sb_init(&cols);
	sb_init(&tcols);
	sb_init(&sets);
	for (int i = 0; i < op->n_set; i++)
	{
		char *q = plan_ident(p, op->set[i].column);

		sb_printf(&cols, ", %s", q);
		sb_printf(&tcols, ", t.%s", q);
		sb_printf(&sets, "%s%s = r.%s", i ? ", " : "", q, mapping_field_column(op->set[i].field));
		free(q);
	}
	{
		char *email = n->q_email ? str_printf(MAPPING_EMAIL_NORM("t."), n->q_email) : xstrdup("NULL::text");
		char *where = first ? xstrdup("") : str_printf("WHERE t.%s > $2", p->q_key);

		sb_printf(&sb, "WITH b AS (SELECT t.%s AS key, t.%s::text AS m, %s AS e, t.%s IS NULL AS todo FROM %s t %s "
				  "ORDER BY t.%s LIMIT $1 FOR NO KEY UPDATE), ",
				  p->q_key, n->q_match, email, n->q_uid, p->q_table, where, p->q_key);
		free(email);
		free(where);
	}
	sb_printf(&sb,
			  "u AS (SELECT b.key, coalesce("
			  "(SELECT min(x.firebase_uid) FROM %s x WHERE x.clerk_user_id = b.m HAVING count(DISTINCT x.firebase_uid) = 1), "
			  "(SELECT min(x.firebase_uid) FROM %s x WHERE x.clerk_user_id IS NULL AND x.email_norm = b.e "
			  " AND NOT EXISTS (SELECT 1 FROM %s y WHERE y.clerk_user_id = b.m) HAVING count(DISTINCT x.firebase_uid) = 1)"
			  ") AS uid FROM b WHERE b.todo), "
			  "r AS (SELECT u.key, s.* FROM u JOIN LATERAL (SELECT * FROM %s x WHERE x.firebase_uid = u.uid "
			  " ORDER BY x.origin LIMIT 1) s ON true), "
			  "saved AS (INSERT INTO %s (key%s) SELECT t.%s%s FROM %s t JOIN r ON t.%s = r.key WHERE t.%s IS NULL "
			  " ON CONFLICT (key) DO NOTHING RETURNING 1), "
			  "f AS (UPDATE %s t SET %s FROM r WHERE t.%s = r.key AND t.%s IS NULL RETURNING 1) "
			  "SELECT (SELECT count(*) FROM b), (SELECT key::text FROM b ORDER BY key DESC LIMIT 1), "
			  "(SELECT count(*) FROM f)",
			  n->source, n->source, n->source, n->source,
			  n->backup, cols.data, p->q_key, tcols.data, p->q_table, p->q_key, n->q_uid,
			  p->q_table, sets.data, p->q_key, n->q_uid);
	sb_free(&cols);
	sb_free(&tcols);
	sb_free(&sets);
	return sb.data;
}

/* Where an interrupted run of this operation stopped, if it did. */
static void
resume_point(Run *run, const Op *op, long long *rows_done, char **last_key)
{
	char current[32];
	const char *params[3] = {run->plan->name, op->label, current};
	PGresult *res;

	snprintf(current, sizeof current, "%lld", run->op_entry);
	res = db_query(run->conn,
							 "SELECT status, rows_done, last_key FROM public.migration_log WHERE plan = $1 "
							 "AND phase = 2 AND operation = $2 AND id < $3 AND status <> 'refused' "
							 "AND id > " MLOG_LAST_PHASE2_ROLLBACK " ORDER BY id DESC LIMIT 1",
							 3, params);

	*rows_done = 0;
	*last_key = NULL;
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "done") != 0 && !PQgetisnull(res, 0, 2))
	{
		*rows_done = atoll(PQgetvalue(res, 0, 1));
		*last_key = xstrdup(PQgetvalue(res, 0, 2));
		log_info("resuming the interrupted backfill after key %s (%lld rows done)", *last_key, *rows_done);
	}
	PQclear(res);
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

static void
set_if(json_t *obj, const char *key, PGresult *res, int row, int col)
{
	if (!PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0])
		json_object_set_new(obj, key, json_string(PQgetvalue(res, row, col)));
}

static char *
base64(const char *in)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(in);
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3)
	{
		unsigned v = (unsigned char) in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned char) in[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char) in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/*
 * A file `firebase auth:import` accepts, for exactly the users given generated
 * uids that no earlier import file listed: importing a user again would
 * overwrite the Firebase account (and the password it has now).  The users
 * are marked with this run's id in the transaction that reads them, committed
 * once the file is written.
 */
static int
write_import_file(Run *run, const Names *n, const Options *opts, bool with_clerk)
{
	const Plan *p = run->plan;
	char *path = str_printf("%s/%s-firebase-import.json", opts->logs_dir, run->run_id);
	char *email = n->q_email ? str_printf("t.%s::text", n->q_email) : xstrdup("NULL::text");
	char *mark = str_printf("WITH m AS (UPDATE %s x SET import_file = $1 WHERE x.origin = 'generated' "
							"AND x.import_file IS NULL AND EXISTS (SELECT 1 FROM %s t WHERE t.%s = x.firebase_uid) "
							"RETURNING x.firebase_uid) INSERT INTO pg_temp.phasemig_to_import SELECT firebase_uid FROM m",
							n->source, p->q_table, n->q_uid);
	char *declare = str_printf(
		"DECLARE phasemig_import NO SCROLL CURSOR FOR SELECT x.firebase_uid, %s, x.clerk_user_id, %s "
		"FROM %s x JOIN pg_temp.phasemig_to_import i ON i.firebase_uid = x.firebase_uid "
		"JOIN %s t ON t.%s = x.firebase_uid %s WHERE x.origin = 'generated' ORDER BY x.firebase_uid",
		email,
		with_clerk ? "nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), ''), "
		"CASE WHEN c.password_hasher = 'bcrypt' THEN c.password_digest END, c.primary_phone_number"
		: "NULL, NULL, NULL",
		n->source, p->q_table, n->q_uid, with_clerk ? "LEFT JOIN pg_temp.phasemig_clerk c ON c.id = x.clerk_user_id" : "");
	FILE *fp = log_create_private_file(path);
	long long users = 0, hashes = 0;
	bool written;

	free(email);

	if (fp == NULL)
	{
		log_error("could not write \"%s\": %s", path, strerror(errno));
		free(path);
		free(declare);
		free(mark);
		return EXIT_FAILED;
	}
	fputs("{\"users\": [", fp);
	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, "CREATE TEMP TABLE phasemig_to_import (firebase_uid text PRIMARY KEY) ON COMMIT DROP");
	db_execp(run->conn, mark, 1, (const char *[]) {run->run_id});
	db_exec(run->conn, declare);
	for (;;)
	{
		PGresult *res = db_query(run->conn, "FETCH 1000 FROM phasemig_import", 0, NULL);
		int rows = PQntuples(res);

		for (int i = 0; i < rows; i++)
		{
			json_t *u = json_object();
			json_t *attrs = json_object();
			char *attrs_text;
			char *text;

			set_if(u, "localId", res, i, 0);
			set_if(u, "email", res, i, 1);
			set_if(u, "displayName", res, i, 3);
			if (!PQgetisnull(res, i, 4) && PQgetvalue(res, i, 4)[0])
			{
				char *b64 = base64(PQgetvalue(res, i, 4));

				json_object_set_new(u, "passwordHash", json_string(b64));
				free(b64);
				hashes++;
			}
			if (!PQgetisnull(res, i, 5) && PQgetvalue(res, i, 5)[0] == '+')
				set_if(u, "phoneNumber", res, i, 5);
			json_object_set_new(attrs, "clerk_user_id", json_string(PQgetvalue(res, i, 2)));
			attrs_text = json_dumps(attrs, JSON_COMPACT);
			json_object_set_new(u, "customAttributes", json_string(attrs_text));
			text = json_dumps(u, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fprintf(fp, "%s\n%s", users > 0 ? "," : "", text);
			free(text);
			free(attrs_text);
			json_decref(attrs);
			json_decref(u);
			users++;
		}
		PQclear(res);
		if (rows < 1000)
			break;
	}
	fputs("]}", fp);
	written = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	written = fclose(fp) == 0 && written;
	if (!written)
	{
		/* the users stay unmarked: the next run's file lists them */
		log_error("could not write \"%s\": %s", path, strerror(errno));
		db_exec(run->conn, "ROLLBACK");
		free(path);
		free(declare);
		free(mark);
		return EXIT_FAILED;
	}
	db_exec(run->conn, "COMMIT");
	if (users > 0)
	{
		log_info("wrote %lld users with new uids to %s", users, path);
		log_hint("import them with: firebase auth:import %s%s", path, hashes > 0 ? " --hash-algo=BCRYPT --rounds=10" : "");
	}
	else
	{
		log_info("no user to import: every generated uid was listed by an earlier import file");
		remove(path);
	}
	free(path);
	free(declare);
	free(mark);
	return EXIT_DONE;
}

static int
backfill_apply2(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	Names n;
	Findings f;
	long long loaded = 0, clerk_rows = 0, generated = 0, entry;
	int rc;
	BatchLoop b = {.what = "backfill"};
	char *first = NULL, *next = NULL;
	json_t *meta;

	names_init(&n, run, op);
	if (opts->mapping == NULL)
	{
		log_error("no mapping given: use --mapping FILE (a Firebase Auth export, or clerk_user_id,firebase_uid pairs)");
		names_free(&n);
		return EXIT_BAD_INPUT;
	}
	/* 1. read the inputs into temporary staging tables; nothing is written yet */
	log_info("loading the mapping from \"%s\"", opts->mapping);
	if ((rc = mapping_load(run->conn, opts->mapping, &loaded)) != EXIT_DONE)
		goto done;
	log_info("read %lld users from the mapping", loaded);
	if (opts->clerk_export &&
		(rc = mapping_load_clerk_csv(run->conn, opts->clerk_export, &clerk_rows)) != EXIT_DONE)
		goto done;
	{
		char *keep = str_printf("INSERT INTO pg_temp.phasemig_staging (" MAPPING_COLUMN_LIST ", import_file) "
								"SELECT " MAPPING_COLUMN_LIST ", import_file FROM %s WHERE origin = 'generated'",
								n.source);

		db_exec(run->conn, keep);
		free(keep);
	}
	db_exec(run->conn, "CREATE INDEX ON pg_temp.phasemig_staging (clerk_user_id)");
	db_exec(run->conn, "CREATE INDEX ON pg_temp.phasemig_staging (email_norm)");
	db_exec(run->conn, "ANALYZE pg_temp.phasemig_staging");

	/* 2. refuse any conflict before writing */
	build_matches(run, &n);
	findings_init(&f);
	if (find_conflicts(run, &n, &f) > 0)
	{
		log_error("the mapping conflicts with the table; nothing was changed");
		findings_print(&f);
		meta = json_pack("{s:o}", "conflicts", findings_json(&f));
		run->op_metadata = json_dumps(meta, JSON_COMPACT);
		run->op_message = xstrdup("the mapping conflicts with the table");
		json_decref(meta);
		findings_free(&f);
		rc = EXIT_REFUSED;
		goto done;
	}
	findings_free(&f);

	/* 3. the mapping becomes the plan's source (the sync trigger reads it too) */
	{
		char *del = str_printf("DELETE FROM %s", n.source);
		char *ins = str_printf("INSERT INTO %s (" MAPPING_COLUMN_LIST ", import_file) SELECT " MAPPING_COLUMN_LIST
							   ", import_file FROM pg_temp.phasemig_staging", n.source);
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
	/* 4. rows that match nobody get new uids when asked */
	if (opts->generate_missing && (rc = generate_missing(run, &n, &generated)) != EXIT_DONE)
		goto done;
	if (generated > 0)
	{
		char *analyze = str_printf("ANALYZE %s", n.source);

		db_exec(run->conn, analyze);
		free(analyze);
		log_info("generated %lld new Firebase uids for rows with no match", generated);
	}

	/* 5. originals are saved in the same statement that fills each batch */
	ensure_backup_table(run, op, &n);
	{
		char *count = str_printf("SELECT count(*) FROM %s", p->q_table);

		b.rows_total = db_count(run->conn, count, 0, NULL);
		free(count);
	}
	resume_point(run, op, &b.rows_done, &b.last_key);
	entry = run->op_entry;
	mlog_set_progress(run, entry, b.rows_total, b.rows_done, b.last_key);
	first = batch_sql(run, op, &n, true);
	next = batch_sql(run, op, &n, false);
	b.sql_first = first;
	b.sql_next = next;
	b.entry = entry;
	b.batch_size = opts->batch_size > 0 ? opts->batch_size : p->batch_size;
	b.sleep_ms = opts->sleep_ms;
	b.max_lag_ms = opts->max_lag_ms;
	b.target_batch_ms = opts->target_batch_ms;
	log_info("filling %s in batches of %d rows", n.q_uid, b.batch_size);
	rc = batch_run(run, &b);

	/* 6. report what is left and what to import */
	{
		long long unmatched = rc == EXIT_DONE ? write_unmatched(run, &n, opts) : -1;
		double rate = b.seconds > 0 ? (double) (b.rows_done) / b.seconds : 0;

		if (rc == EXIT_DONE && opts->generate_missing)
			rc = write_import_file(run, &n, opts, opts->clerk_export != NULL);
		meta = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "mapping_users", (json_int_t) loaded,
						 "rows_filled", (json_int_t) b.changed, "unmatched", (json_int_t) (unmatched < 0 ? 0 : unmatched),
						 "generated", (json_int_t) generated, "batches", (json_int_t) b.batches, "seconds", b.seconds,
						 "rows_per_second", rate, "longest_batch_ms", b.longest_batch_ms);
		run->op_metadata = json_dumps(meta, JSON_COMPACT);
		run->op_rows = b.rows_done;
		if (rc == EXIT_DONE)
			log_info("backfill done: %lld rows scanned, %lld filled, %lld without a match, %ld batches, %.1f s, "
					 "%.0f rows/s", b.rows_done, b.changed, unmatched < 0 ? 0 : unmatched, b.batches, b.seconds, rate);
		json_decref(meta);
	}
done:
	(void) clerk_rows;
	free(first);
	free(next);
	free(b.last_key);
	names_free(&n);
	return rc;
}

static int
backfill_rollback2(Run *run, const Op *op, const Options *opts)
{
	const Plan *p = run->plan;
	Names n;
	int rc = EXIT_DONE;

	names_init(&n, run, op);
	if (mlog_is_registered(run->conn, p, "backup_table", "backfill"))
	{
		BatchLoop b = {.what = "restoring", .rows_total = -1};
		StrBuf sets;
		char *first, *next;

		sb_init(&sets);
		for (int i = 0; i < op->n_set; i++)
		{
			char *q = plan_ident(p, op->set[i].column);

			sb_printf(&sets, "%s%s = b.%s", i ? ", " : "", q, q);
			free(q);
		}
		first = str_printf("WITH b AS (SELECT * FROM %s ORDER BY key LIMIT $1), "
						   "u AS (UPDATE %s t SET %s FROM b WHERE t.%s = b.key RETURNING 1) "
						   "SELECT (SELECT count(*) FROM b), (SELECT key::text FROM b ORDER BY key DESC LIMIT 1), "
						   "(SELECT count(*) FROM u)", n.backup, p->q_table, sets.data, p->q_key);
		next = str_printf("WITH b AS (SELECT * FROM %s WHERE key > $2 ORDER BY key LIMIT $1), "
						  "u AS (UPDATE %s t SET %s FROM b WHERE t.%s = b.key RETURNING 1) "
						  "SELECT (SELECT count(*) FROM b), (SELECT key::text FROM b ORDER BY key DESC LIMIT 1), "
						  "(SELECT count(*) FROM u)", n.backup, p->q_table, sets.data, p->q_key);
		b.sql_first = first;
		b.sql_next = next;
		b.batch_size = opts->batch_size > 0 ? opts->batch_size : p->batch_size;
		log_info("restoring the original values from %s", n.backup);
		rc = batch_run(run, &b);
		if (rc == EXIT_DONE)
		{
			char *drop = str_printf("DROP TABLE IF EXISTS %s", n.backup);
			const char *stmts[1] = {drop};

			log_info("restored %lld rows", b.changed);
			run->op_rows = b.changed;
			rc = ops_ddl(run, drop, stmts, 1);
			if (rc == EXIT_DONE)
				mlog_unregister(run->conn, p, "backup_table", "backfill");
			free(drop);
		}
		free(b.last_key);
		free(first);
		free(next);
		sb_free(&sets);
	}
	if (rc == EXIT_DONE && db_count(run->conn, "SELECT count(*) FROM pg_catalog.pg_class WHERE oid = "
									"pg_catalog.to_regclass($1)", 1, (const char *[]) {n.source}) > 0)
	{
		/* the trigger must not fill rows again from a mapping that was rolled back */
		char *del = str_printf("DELETE FROM %s", n.source);

		db_exec(run->conn, del);
		free(del);
	}
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
