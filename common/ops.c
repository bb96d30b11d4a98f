/*
 * ops.c: the table from operation kind to its handlers, and the DDL steps
 * several operations share (index builds, NOT NULL without a long lock).
 */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "db.h"
#include "log.h"
#include "strbuf.h"

const OpHandlers *
ops_handlers(OpKind kind)
{
	switch (kind)
	{
		case OP_ADD_COLUMN:
			return &op_add_column;
		case OP_CREATE_INDEX:
			return &op_create_index;
		case OP_BACKFILL_FROM_MAPPING:
			return &op_backfill_from_mapping;
		case OP_SET_NOT_NULL:
			return &op_set_not_null;
		case OP_ADD_UNIQUE:
			return &op_add_unique;
		case OP_CHECK_UNIQUE:
			return &op_check_unique;
		case OP_DROP_COLUMN:
			return &op_drop_column;
		case OP_CONVERT_TO_UUID:
			return &op_convert_to_uuid;
	}
	return NULL;
}

int
ops_ddl(Run *run, const char *what, const char *const *stmts, int n)
{
	return db_ddl_try(run->conn, what, stmts, n) ? EXIT_DONE : EXIT_FAILED;
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

/* State of index NAME of table QTABLE (any schema: the table's). */
static IndexState
index_state_on(Run *run, const char *qtable, const char *name)
{
	const char *params[2] = {qtable, name};
	char *valid = db_value(run->conn,
						   "SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i "
						   "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
						   "WHERE i.indrelid = $1::regclass AND c.relname = $2", 2, params);
	IndexState st = valid == NULL ? INDEX_MISSING : valid[0] == 't' ? INDEX_VALID : INDEX_INVALID;

	free(valid);
	return st;
}

char *
ops_qualified_index(Run *run, const char *qtable, const char *name)
{
	const char *params[1] = {qtable};
	char *schema = db_value(run->conn, "SELECT quote_ident(n.nspname) FROM pg_catalog.pg_class c JOIN "
							"pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass", 1, params);
	char *qname = db_ident(run->conn, name);
	char *full = str_printf("%s.%s", schema, qname);

	free(schema), free(qname);
	return full;
}

static int
drop_index_concurrently(Run *run, const char *qtable, const char *name)
{
	char *index = ops_qualified_index(run, qtable, name);
	char *sql = str_printf("DROP INDEX CONCURRENTLY IF EXISTS %s", index);
	int rc = db_ddl_nontx_try(run->conn, sql, sql, true) ? EXIT_DONE : EXIT_FAILED;

	free(index), free(sql);
	return rc;
}

int
ops_build_index_on(Run *run, const char *qtable, const char *name, const char *columns_sql, bool unique)
{
	IndexState st = index_state_on(run, qtable, name);
	char *qname = plan_ident(run->plan, name);
	char *sql;
	int rc = EXIT_DONE;

	if (st == INDEX_VALID)
	{
		log_info("index %s already exists", qname);
		free(qname);
		return EXIT_DONE;
	}
	/* left INVALID by an interrupted CONCURRENTLY build: drop and build again */
	if (st == INDEX_INVALID)
	{
		log_warning("index %s is INVALID (an earlier build was interrupted); rebuilding it", qname);
		if (drop_index_concurrently(run, qtable, name) != EXIT_DONE)
		{
			free(qname);
			return EXIT_FAILED;
		}
	}
	log_info("building index %s on %s CONCURRENTLY", qname, qtable);
	sql = str_printf("CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s)", unique ? "UNIQUE " : "", qname, qtable,
					 columns_sql);
	/* CONCURRENTLY's lock does not conflict with the application's writes: no timeout */
	if (!db_ddl_nontx_try(run->conn, sql, sql, false) || index_state_on(run, qtable, name) != INDEX_VALID)
	{
		/*
		 * A failed build leaves an INVALID index that the application's
		 * writes keep maintaining and, if unique, keep checking: drop it.
		 */
		log_error("index %s could not be built", qname);
		if (index_state_on(run, qtable, name) == INDEX_INVALID && drop_index_concurrently(run, qtable, name) == EXIT_DONE)
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

	/* register first: a crash during the build still leaves it ours to drop */
	sql = mlog_register_sql(run->plan, run->phase, kind, name);
	db_exec(run->conn, sql);
	free(sql);
	return ops_build_index_on(run, run->plan->q_table, name, columns_sql, unique);
}

char *
ops_not_null_check_name(const char *column)
{
	char *name = str_printf("phasemig_nn_%s", column);

	if (strlen(name) > 63)
		name[63] = '\0';
	return name;
}

int
ops_enforce_not_null(Run *run, const char *column)
{
	return ops_enforce_not_null_on(run, run->plan->q_table, column);
}

static bool
column_is_not_null(Run *run, const char *qtable, const char *column)
{
	const char *p[2] = {qtable, column};

	return db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass "
					 "AND attname = $2 AND NOT attisdropped AND attnotnull", 2, p);
}

static bool
table_has_constraint(Run *run, const char *qtable, const char *name)
{
	const char *p[2] = {qtable, name};

	return db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass "
					 "AND conname = $2", 2, p);
}

int
ops_enforce_not_null_on(Run *run, const char *qtable, const char *column)
{
	const Plan *p = run->plan;
	char *check = ops_not_null_check_name(column);
	char *qcheck = plan_ident(p, check);
	char *qcol = plan_ident(p, column);
	char *add = NULL, *set = NULL, *drop = NULL;
	int rc = EXIT_DONE;

	if (column_is_not_null(run, qtable, column))
	{
		log_info("column %s is already NOT NULL", qcol);
		goto done;
	}
	/* 1. the CHECK, NOT VALID: a short lock, no scan */
	if (!table_has_constraint(run, qtable, check))
	{
		const char *stmts[1];

		add = str_printf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID", qtable, qcheck,
						 qcol);
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
		goto done;
	}
	/* 3. SET NOT NULL uses the valid CHECK instead of scanning; then drop the CHECK */
	set = str_printf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", qtable, qcol);
	drop = str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", qtable, qcheck);
	{
		const char *stmts[2] = {set, drop};

		rc = ops_ddl(run, set, stmts, 2);
	}
done:
	free(check);
	free(qcheck);
	free(qcol);
	free(add);
	free(set);
	free(drop);
	return rc;
}
