/*
 * source.c: the plan's source table, the mapping the sync trigger and the
 * batches read ("<plan>:source", with an index on the source's id, the
 * normalised email and the target's id).  phase1 creates it empty.  phase2
 * builds the whole mapping under another name ("<plan>:source_build": filled
 * from the staging table, then indexed and analysed, in one transaction) and
 * swaps it in by a rename, in one short transaction under the lock timeout:
 * no index is maintained row by row, and the trigger waits for the swap only.
 *
 * The build table is registered with it, so a table of that name that a
 * killed run left between the build and the swap is known to be phasemig's:
 * the next apply drops and rebuilds it (the mapping is read again from the
 * file, so a leftover is never trusted), a rollback drops it.  One that is
 * not registered is not phasemig's, and phase2 refuses to touch it.
 */
#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"
#include "ops/backfill/backfill.h"

#define N_INDEXES 3
#define BUILD "source_build" /* the build table's object name after "<plan>:", and its registry kind */

/* Index I's object name after "<plan>:": PREFIX, "_", what it indexes. */
static char *
index_what(const BackfillSql *n, int i, const char *prefix)
{
	const char *what[N_INDEXES] = {n->prov->source_key, "email", "uid"};

	return str_printf("%s_%s", prefix, what[i]);
}

/* The column index I indexes. */
static const char *
index_column(const BackfillSql *n, int i)
{
	const char *column[N_INDEXES] = {n->prov->source_id, "email_norm", n->prov->target_id};

	return column[i];
}

/* CREATE INDEX of index I, named "<plan>:<prefix>_<what>", on QTABLE (malloc'd). */
static char *
create_index_sql(const Run *run, const BackfillSql *n, int i, const char *prefix, const char *qtable,
				 bool if_not_exists)
{
	char *what = index_what(n, i, prefix);
	char *name = plan_object_name(run->plan, what);
	char *q_name = sql_ident(name);
	char *sql = str_printf("CREATE INDEX %s%s ON %s (%s)", if_not_exists ? "IF NOT EXISTS " : "", q_name, qtable,
						   index_column(n, i));

	free(q_name);
	free(name);
	free(what);
	return sql;
}

int
bf_create_source_table(Run *run, const BackfillSql *n)
{
	char *stmts[N_INDEXES + 2];
	int rc;

	stmts[0] = str_printf("CREATE TABLE IF NOT EXISTS %s (%s)", n->source, n->prov->columns);
	for (int i = 0; i < N_INDEXES; i++)
		stmts[i + 1] = create_index_sql(run, n, i, "source", n->source, true);
	stmts[N_INDEXES + 1] = registry_add_sql(run->plan, 1, "source_table", "source");
	log_info("creating %s for the mapping", n->source);
	rc = ops_ddl(run, stmts[0], (const char *const *) stmts, N_INDEXES + 2);
	for (int i = 0; i < N_INDEXES + 2; i++)
		free(stmts[i]);
	return rc;
}

int
bf_drop_source_build(Run *run)
{
	char *build = plan_backup_table(run->plan, BUILD);
	int rc = bf_drop_registered_table(run, build, BUILD, BUILD);

	free(build);
	return rc;
}

/*
 * The build table a killed run left: true (to drop, it is ours) when
 * registered, false when there is none; refused (EXIT_FAILED, logged) when
 * a table of that name is there and phasemig did not register it.
 */
static int
leftover_build(Run *run, const char *build, bool *drop)
{
	*drop = false;
	if (!bf_table_exists(run, build))
		return EXIT_DONE;
	if (!registry_has(run->conn, run->plan, BUILD, BUILD))
	{
		log_error("table %s exists but phasemig did not create it", build);
		log_hint("drop or rename it: phase2 builds the mapping under that name");
		return EXIT_FAILED;
	}
	log_info("dropping %s, which an interrupted run built and never swapped in; building it again", build);
	*drop = true;
	return EXIT_DONE;
}

/*
 * Build the staged mapping as the new source, under another name, in one
 * transaction that takes no lock another session waits for: a leftover of a
 * killed run dropped, the table created and registered, filled, its indexes
 * built on the filled table, analysed.
 */
static int
build_source(Run *run, const BackfillSql *n, const char *build)
{
	const char *list = n->prov->column_list;
	char *stmts[N_INDEXES + 5];
	int k = 0, rc;
	bool drop;

	if ((rc = leftover_build(run, build, &drop)) != EXIT_DONE)
		return rc;
	if (drop)
		stmts[k++] = str_printf("DROP TABLE %s", build);
	stmts[k++] = str_printf("CREATE TABLE %s (%s)", build, n->prov->columns);
	stmts[k++] = registry_add_sql(run->plan, 2, BUILD, BUILD);
	stmts[k++] = str_printf("INSERT INTO %s (%s) SELECT %s FROM pg_temp.phasemig_staging", build, list, list);
	for (int i = 0; i < N_INDEXES; i++)
		stmts[k++] = create_index_sql(run, n, i, "build", build, false);
	/* statistics of the columns the trigger and the lookups search by: the others are only read back */
	stmts[k++] = str_printf("ANALYZE %s (%s, %s, %s)", build, index_column(n, 0), index_column(n, 1), index_column(n, 2));
	rc = db_ddl_try_nonblocking(run->conn, "building the mapping's new source table", (const char *const *) stmts, k)
			 ? EXIT_DONE
			 : EXIT_FAILED;
	for (int i = 0; i < k; i++)
		free(stmts[i]);
	return rc;
}

/*
 * Swap the built table in: the old source dropped, the build renamed to it
 * and its indexes to theirs, its registration gone, in one transaction under
 * the lock timeout (retried).  The trigger's statements name the table, so
 * its next call plans against the new one.
 */
static int
swap_source(Run *run, const BackfillSql *n, const char *build)
{
	char *name = plan_object_name(run->plan, "source");
	char *q_name = sql_ident(name);
	char *stmts[N_INDEXES + 3];
	int k = 0, rc;

	stmts[k++] = str_printf("DROP TABLE IF EXISTS %s", n->source);
	stmts[k++] = str_printf("ALTER TABLE %s RENAME TO %s", build, q_name);
	for (int i = 0; i < N_INDEXES; i++)
	{
		char *from_what = index_what(n, i, "build"), *to_what = index_what(n, i, "source");
		char *from = plan_backup_table(run->plan, from_what), *to = plan_object_name(run->plan, to_what);
		char *q_to = sql_ident(to);

		stmts[k++] = str_printf("ALTER INDEX %s RENAME TO %s", from, q_to);
		free(from_what), free(to_what), free(from), free(to), free(q_to);
	}
	stmts[k++] = registry_remove_sql(run->plan, (const char *const[]){BUILD, NULL}, BUILD);
	rc = ops_ddl(run, "swapping in the mapping's new source table", (const char *const *) stmts, k);
	for (int i = 0; i < k; i++)
		free(stmts[i]);
	free(q_name);
	free(name);
	return rc;
}

/* The staged mapping becomes the plan's source table: built aside, then swapped in. */
int
bf_replace_source(BackfillRun *s)
{
	Run *run = s->run;
	char *build = plan_backup_table(run->plan, BUILD);
	int rc = build_source(run, &s->sql, build);

	if (rc == EXIT_DONE)
		rc = swap_source(run, &s->sql, build);
	free(build);
	return rc;
}
