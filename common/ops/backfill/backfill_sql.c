/*
 * backfill_sql.c: every name and SQL piece backfill_from_mapping builds once per
 * handler call (BackfillSql), and the small SQL helpers its files share.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"
#include "ops/backfill/backfill.h"

/*
 * ON CONFLICT (key) DO UPDATE list for the backup table aliased bk: a column
 * phasemig fills again (written differs from original) takes the new pair;
 * the others keep what was saved first.
 */
static char *
backup_upsert_sets(int n_set)
{
	StrBuf sb;

	sb_init(&sb);
	for (int i = 1; i <= n_set; i++)
	{
		sb_printf(&sb, "original_%d = CASE WHEN EXCLUDED.original_%d IS DISTINCT FROM EXCLUDED.written_%d ", i, i, i);
		sb_printf(&sb, "THEN EXCLUDED.original_%d ELSE bk.original_%d END, ", i, i);
		sb_printf(&sb, "written_%d = CASE WHEN EXCLUDED.original_%d IS DISTINCT FROM EXCLUDED.written_%d ", i, i, i);
		sb_printf(&sb, "THEN EXCLUDED.written_%d ELSE bk.written_%d END, ", i, i);
	}
	sb_append(&sb, "saved_at = now()");
	return sb_steal(&sb);
}

/* "original_1, written_1, ..." in the order the values are given. */
static char *
backup_column_list(int n_set)
{
	StrBuf sb;

	sb_init(&sb);
	for (int i = 1; i <= n_set; i++)
		sb_printf(&sb, "%soriginal_%d, written_%d", i > 1 ? ", " : "", i, i);
	return sb_steal(&sb);
}

void
bf_sql_init(BackfillSql *n, const Run *run, const Op *op)
{
	const Plan *p = run->plan;
	const BackfillSpec *spec = bf_spec(op);

	*n = (BackfillSql){0};
	n->prov = spec->provider;
	n->source = plan_backup_table(p, "source");
	n->backup = plan_backup_table(p, "backfill");
	n->generated = plan_backup_table(p, "generated");
	n->import_files = plan_backup_table(p, "import_files");
	n->sync_fn = plan_backup_table(p, "sync");
	n->trigger_name = str_printf("phasemig_sync_%s", p->name);
	n->trigger = plan_ident(p, n->trigger_name);
	n->q_match = plan_ident(p, spec->match_column);
	n->q_email = spec->email_column ? plan_ident(p, spec->email_column) : NULL;
	n->q_uid = plan_ident(p, spec->uid_column);
	n->n_set = spec->n_set;
	n->q_set = xcalloc((size_t) spec->n_set + 1, sizeof(char *));
	for (int i = 0; i < spec->n_set; i++)
		n->q_set[i] = plan_ident(p, spec->set[i].column);
	n->backup_columns = backup_column_list(spec->n_set);
	n->backup_upsert = backup_upsert_sets(spec->n_set);
	{
		char *by_source_id = str_printf("by_%s_id", n->prov->source_key);

		n->by_source_id = plan_backup_table(p, by_source_id);
		free(by_source_id);
	}
	n->by_email = plan_backup_table(p, "by_email");
	n->profile = plan_backup_table(p, "profile");
}

void
bf_sql_free(BackfillSql *n)
{
	char *owned[] = {n->source,       n->backup,   n->generated, n->import_files,  n->sync_fn,        n->trigger,
					 n->trigger_name, n->q_match,  n->q_email,   n->q_uid,         n->backup_columns, n->backup_upsert,
					 n->by_source_id, n->by_email, n->profile,   n->batch_columns, n->batch_steps};

	for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
		free(owned[i]);
	for (int i = 0; i < n->n_set; i++)
		free(n->q_set[i]);
	free(n->q_set);
	*n = (BackfillSql){0};
}

/*
 * With one connection the lookups are temporary tables (no WAL, local
 * buffers); --jobs's other connections cannot see those, so then they are
 * unlogged tables of migration_backup, dropped when the fill ends.
 */
void
bf_use_session_lookups(BackfillSql *n)
{
	free(n->by_source_id);
	free(n->by_email);
	free(n->profile);
	n->by_source_id = str_printf("pg_temp.phasemig_by_%s_id", n->prov->source_key);
	n->by_email = xstrdup("pg_temp.phasemig_by_email");
	n->profile = xstrdup("pg_temp.phasemig_profile");
}

/*
 * Drop the shared lookups, those this run MADE or any a killed run left;
 * errors ignored (the next apply or the rollback drops them too).  A real
 * run logs the statement, a dry run prints it.
 */
void
bf_drop_shared_lookups(Run *run, const BackfillSql *n, bool made)
{
	char *sql;

	if (strncmp(n->by_source_id, "pg_temp.", 8) == 0 || PQstatus(run->conn) != CONNECTION_OK)
		return;
	if (!made)
	{
		PGresult *res = db_query_try(run->conn,
									 "SELECT 1 WHERE coalesce(pg_catalog.to_regclass($1), pg_catalog.to_regclass($2), "
									 "pg_catalog.to_regclass($3)) IS NOT NULL",
									 3, (const char *[]){n->by_source_id, n->by_email, n->profile});
		bool left = db_ok(res) && PQntuples(res) > 0;

		PQclear(res);
		if (!left)
			return;
	}
	sql = str_printf("DROP TABLE IF EXISTS %s, %s, %s", n->by_source_id, n->by_email, n->profile);
	if (!dryrun_intercept(sql))
		PQclear(PQexec(run->conn, sql));
	free(sql);
}

bool
bf_table_exists(Run *run, const char *qname)
{
	return db_exists(run->conn, "SELECT 1 WHERE pg_catalog.to_regclass($1) IS NOT NULL", 1, (const char *[]){qname});
}

void
bf_exec_free(Run *run, char *sql)
{
	db_exec(run->conn, sql);
	free(sql);
}

int
bf_drop_registered_table(Run *run, const char *qname, const char *kind, const char *name)
{
	char *drop;
	int rc;

	if (!registry_has(run->conn, run->plan, kind, name))
		return EXIT_DONE;
	drop = str_printf("DROP TABLE IF EXISTS %s", qname);
	rc = ops_ddl_forget(run, drop, (const char *[]){drop}, 1, kind, name);
	free(drop);
	return rc;
}
