/*
 * ops.c: the steps several operations share (index builds, NOT NULL without a
 * long lock, names scoped to the plan, the resumable batches of a rollback).
 * The index builds and the NOT NULL's CHECK run on phase3's --jobs workers
 * too (engine/jobs.h): their catalog questions and statements return a
 * failure, never exit.
 */
#include "ops/ops.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/registry.h"

int
ops_ddl(Run *run, const char *what, const char *const *stmts, int n)
{
	return db_ddl_try(run->conn, what, stmts, n) ? EXIT_DONE : EXIT_FAILED;
}

long long
ops_lock_share_ms(Run *run, int relations)
{
	long long deadlock_ms = db_count(run->conn,
									 "SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout'", 0,
									 NULL);
	long long per = (deadlock_ms - 100) / (relations > 0 ? relations : 1);

	if (per > db_get_retry()->lock_timeout_ms)
		per = db_get_retry()->lock_timeout_ms;
	return per < 20 ? 20 : per;
}

int
ops_ddl_forget(Run *run, const char *what, const char *const *stmts, int n, const char *kind, const char *name)
{
	const char **all = xcalloc((size_t) n + 1, sizeof *all);
	char *forget = registry_remove_sql(run->plan, (const char *const[]){kind, NULL}, name);
	int rc;

	for (int i = 0; i < n; i++)
		all[i] = stmts[i];
	all[n] = forget;
	rc = ops_ddl(run, what, all, n + 1);
	free(forget);
	free(all);
	return rc;
}

int
ops_validate(Run *run, const char *qtable, const char *qconstraint)
{
	char *sql = str_printf("ALTER TABLE %s VALIDATE CONSTRAINT %s", qtable, qconstraint);
	const char *stmts[1] = {sql};
	int rc = db_ddl_try_nonblocking(run->conn, sql, stmts, 1) ? EXIT_DONE : EXIT_FAILED;

	free(sql);
	return rc;
}

/*
 * A catalog question about NAME on QTABLE, answered as a number: -1 after
 * telling its failure (a --jobs worker's connection cancelled or lost), for
 * the caller to return EXIT_FAILED instead of exiting.
 */
static long long
ask(Run *run, const char *sql, const char *qtable, const char *name)
{
	const char *params[2] = {qtable, name};
	long long n;
	DbFailure why;

	return db_count_try(run->conn, sql, 2, params, &n, &why) ? n : -1;
}

/* catalog_index_state_on's answer as ask's: 0 missing, 1 valid, 2 invalid; -1 failed. */
static int
index_state(Run *run, const char *qtable, const char *name)
{
	return (int) ask(run,
					 "SELECT coalesce((SELECT CASE WHEN i.indisvalid AND i.indisready THEN 1 ELSE 2 END "
					 "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
					 "WHERE i.indrelid = $1::regclass AND c.relname = $2), 0)",
					 qtable, name);
}

enum
{
	IX_FAILED = -1,
	IX_MISSING = 0,
	IX_VALID = 1,
	IX_INVALID = 2
};

/* "schema"."index", or NULL after telling why the question failed. */
static char *
qualified_index_try(Run *run, const char *qtable, const char *name)
{
	const char *params[1] = {qtable};
	PGresult *res = db_query_try(run->conn,
								 "SELECT quote_ident(n.nspname) FROM pg_catalog.pg_class c JOIN "
								 "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
								 1, params);
	char *full = NULL;

	if (db_ok(res) && PQntuples(res) == 1)
	{
		char *qname = sql_ident(name);

		full = str_printf("%s.%s", PQgetvalue(res, 0, 0), qname);
		free(qname);
	}
	else
		db_report(res, run->conn, "SELECT quote_ident(n.nspname) ...");
	PQclear(res);
	return full;
}

char *
ops_qualified_index(Run *run, const char *qtable, const char *name)
{
	char *full = qualified_index_try(run, qtable, name);

	if (full == NULL)
		log_exit(EXIT_FAILED);
	return full;
}

int
ops_drop_index_on(Run *run, const char *qtable, const char *name)
{
	char *index = qualified_index_try(run, qtable, name);
	char *sql;
	int rc;

	if (index == NULL)
		return EXIT_FAILED;
	sql = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s", index);
	rc = db_ddl_nontx_try(run->conn, sql, sql, true) ? EXIT_DONE : EXIT_FAILED;
	free(index), free(sql);
	return rc;
}

int
ops_build_index_on(Run *run, const char *qtable, const char *name, const char *columns_sql, bool unique)
{
	int st = index_state(run, qtable, name);
	char *qname;
	char *sql;
	int rc = EXIT_DONE;

	if (st == IX_FAILED)
		return EXIT_FAILED;
	qname = plan_ident(run->plan, name);
	if (st == IX_VALID)
	{
		log_info("index %s already exists", qname);
		free(qname);
		return EXIT_DONE;
	}
	/* left INVALID by an interrupted CONCURRENTLY build: drop and build again */
	if (st == IX_INVALID)
	{
		log_warning("index %s is INVALID (an earlier build was interrupted); rebuilding it", qname);
		if (ops_drop_index_on(run, qtable, name) != EXIT_DONE)
		{
			free(qname);
			return EXIT_FAILED;
		}
	}
	log_info("building index %s on %s CONCURRENTLY", qname, qtable);
	sql = str_printf("CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s)", unique ? "UNIQUE " : "", qname, qtable,
					 columns_sql);
	/* CONCURRENTLY's lock does not conflict with the application's writes: no timeout */
	if (!db_ddl_nontx_try(run->conn, sql, sql, false)
		|| (!dryrun_on() && index_state(run, qtable, name) != IX_VALID))
	{
		/*
		 * A failed build leaves an INVALID index that the application's
		 * writes keep maintaining and, if unique, keep checking: drop it.
		 */
		log_error("index %s could not be built", qname);
		if (index_state(run, qtable, name) == IX_INVALID
			&& ops_drop_index_on(run, qtable, name) == EXIT_DONE)
			log_detail("the INVALID index the failed build left was dropped");
		rc = EXIT_FAILED;
	}
	free(sql);
	free(qname);
	return rc;
}

int
ops_build_index(Run *run, const char *name, const char *columns_sql, bool unique, const char *kind)
{
	char *sql;

	/*
	 * An index of this name and definition (plan_check_catalog compared it)
	 * made outside phasemig is used as it is, and never dropped by a rollback.
	 */
	if (catalog_index_state_on(run->conn, run->plan->q_table, name) == INDEX_VALID
		&& !registry_has(run->conn, run->plan, kind, name))
	{
		log_info("index \"%s\" already exists and was not made by phasemig: used as it is, kept by rollback", name);
		return EXIT_DONE;
	}
	/* register first: a crash during the build still leaves it ours to drop */
	sql = registry_add_sql(run->plan, run->phase, kind, name);
	db_exec(run->conn, sql);
	free(sql);
	return ops_build_index_on(run, run->plan->q_table, name, columns_sql, unique);
}

/* FNV-1a: stable across runs, machines and versions. */
static unsigned
name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return (unsigned) h;
}

/* Cut S to at most MAX bytes without splitting a UTF-8 character. */
static void
cut_utf8(char *s, size_t max)
{
	if (strlen(s) <= max)
		return;
	while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

char *
ops_object_name(const Plan *plan, const char *what)
{
	char *name = str_printf("phasemig_%.24s_%08x_%s", plan->name, name_hash(plan->name), what);

	if (strlen(name) > 63)
	{
		/* a long WHAT (a column's name) is cut, and its hash tells it from others cut the same */
		char *cut;

		cut_utf8(name, 63 - 9);
		cut = str_printf("%s_%08x", name, name_hash(what));
		free(name);
		name = cut;
	}
	return name;
}

char *
ops_not_null_check_name(const Plan *plan, const char *column)
{
	char *what = str_printf("nn_%s", column);
	char *name = ops_object_name(plan, what);

	free(what);
	return name;
}

int
ops_enforce_not_null(Run *run, const char *column)
{
	return ops_enforce_not_null_on(run, run->plan->q_table, column);
}

int
ops_prepare_not_null_on(Run *run, const char *qtable, const char *column, bool *already)
{
	const Plan *p = run->plan;
	char *check = ops_not_null_check_name(p, column);
	char *qcheck = plan_ident(p, check);
	char *qcol = plan_ident(p, column);
	char *add = NULL, *drop = NULL;
	int rc = EXIT_DONE;
	long long not_null = ask(run,
							 "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass "
							 "AND attname = $2 AND attnum > 0 AND NOT attisdropped AND attnotnull",
							 qtable, column);
	long long exists = not_null == 0 ? ask(run,
										   "SELECT count(*) FROM pg_catalog.pg_constraint WHERE conrelid = "
										   "$1::regclass AND conname = $2",
										   qtable, check)
									 : 0;

	*already = not_null > 0;
	if (not_null < 0 || exists < 0)
	{
		rc = EXIT_FAILED;
		goto done;
	}
	if (*already)
	{
		log_info("column %s is already NOT NULL", qcol);
		goto done;
	}
	/* 1. the CHECK, NOT VALID: a short lock, no scan */
	if (exists == 0)
	{
		const char *stmts[1];

		add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID", qtable, qcheck, qcol);
		stmts[0] = add;
		if ((rc = ops_ddl(run, add, stmts, 1)) != EXIT_DONE)
			goto done;
	}
	/* 2. validate in its own transaction: SHARE UPDATE EXCLUSIVE, writes go on */
	log_info("validating NOT NULL of %s", qcol);
	if ((rc = ops_validate(run, qtable, qcheck)) != EXIT_DONE)
	{
		/*
		 * A NULL written since the checks: the NOT VALID CHECK would go on
		 * refusing the application's NULLs, so it goes; a re-run checks again.
		 */
		const char *stmts[1];

		drop = str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", qtable, qcheck);
		stmts[0] = drop;
		if (ops_ddl(run, drop, stmts, 1) == EXIT_DONE)
			log_detail("the CHECK %s was dropped again; phase3 check lists the rows", qcheck);
	}
done:
	free(check);
	free(qcheck);
	free(qcol);
	free(add);
	free(drop);
	return rc;
}

/* Step 3: SET NOT NULL uses the valid CHECK instead of scanning; then the CHECK is dropped. */
static int
set_not_null_through_check(Run *run, const char *qtable, const char *column)
{
	const Plan *p = run->plan;
	char *check = ops_not_null_check_name(p, column);
	char *qcheck = plan_ident(p, check);
	char *qcol = plan_ident(p, column);
	char *set = str_printf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", qtable, qcol);
	char *drop = str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", qtable, qcheck);
	const char *stmts[2] = {set, drop};
	int rc = ops_ddl(run, set, stmts, 2);

	free(check);
	free(qcheck);
	free(qcol);
	free(set);
	free(drop);
	return rc;
}

int
ops_enforce_not_null_on(Run *run, const char *qtable, const char *column)
{
	bool already;
	int rc = ops_prepare_not_null_on(run, qtable, column, &already);

	if (rc != EXIT_DONE || already)
		return rc;
	return set_not_null_through_check(run, qtable, column);
}

int
ops_finish_not_null_on(Run *run, const char *qtable, const char *column)
{
	char *check = ops_not_null_check_name(run->plan, column);
	long long not_null = ask(run,
							 "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass "
							 "AND attname = $2 AND attnum > 0 AND NOT attisdropped AND attnotnull",
							 qtable, column);
	/* a dry run added no CHECK: it prints what the run would do after its prepare step */
	long long valid = not_null == 0 && !dryrun_on() ? ask(run,
														  "SELECT count(*) FROM pg_catalog.pg_constraint WHERE "
														  "conrelid = $1::regclass AND conname = $2 AND convalidated",
														  qtable, check)
													: 1;

	free(check);
	if (not_null < 0 || valid < 0)
		return EXIT_FAILED;
	if (not_null > 0)
		return EXIT_DONE;
	/* the valid CHECK gone since the prepare step (dropped by someone): all three steps, never a scan under the lock */
	if (valid == 0)
		return ops_enforce_not_null_on(run, qtable, column);
	return set_not_null_through_check(run, qtable, column);
}
