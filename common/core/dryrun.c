/*
 * dryrun.c: what a dry run prints instead of running, what a real run logs of
 * the statements it runs, and the lock each takes (PostgreSQL 15's "Explicit
 * Locking" table and the ALTER TABLE page's notes on scans and rewrites).
 */
#include "core/dryrun.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

static bool dry;

void
dryrun_enable(void)
{
	dry = true;
}

bool
dryrun_on(void)
{
	return dry;
}

/* Whether SQL, past its leading blanks, starts with the words of PREFIX (any case). */
static bool
starts(const char *sql, const char *prefix)
{
	while (isspace((unsigned char) *sql))
		sql++;
	return strncasecmp(sql, prefix, strlen(prefix)) == 0;
}

static bool
has(const char *sql, const char *words)
{
	return strcasestr(sql, words) != NULL;
}

typedef enum
{
	STMT_SESSION,  /* transaction control, settings, cursors, the session's temporary tables */
	STMT_LOG,      /* migration_log: a dry run skips it */
	STMT_REGISTRY, /* the registry of phasemig's objects: a dry run's is a temporary copy */
	STMT_CHANGE    /* everything else: printed by a dry run, logged by a real one */
} StmtKind;

#define REGISTRY "migration_backup.phasemig_objects"
#define REGISTRY_COPY "pg_temp.phasemig_objects"

/* The object a statement writes, after its leading words (INSERT INTO, UPDATE...), or "". */
static const char *
target(const char *sql)
{
	static const char *const leads[] = {
		"INSERT INTO ",          "UPDATE ",     "DELETE FROM ", "TRUNCATE ",    "ANALYZE ",
		"DROP TABLE IF EXISTS ", "DROP TABLE ", "COPY ",        "ALTER TABLE ", "CREATE OR REPLACE FUNCTION ",
		"CREATE FUNCTION ",      NULL};

	while (isspace((unsigned char) *sql))
		sql++;
	for (int i = 0; leads[i]; i++)
		if (strncasecmp(sql, leads[i], strlen(leads[i])) == 0)
			return sql + strlen(leads[i]);
	if (starts(sql, "CREATE INDEX ") || starts(sql, "CREATE UNIQUE INDEX "))
	{
		const char *on = strcasestr(sql, " ON ");

		return on ? on + 4 : "";
	}
	return "";
}

static StmtKind
classify(const char *sql)
{
	static const char *const session[] = {"BEGIN",   "COMMIT",      "ROLLBACK", "START TRANSACTION",
										  "SET ",    "RESET ",      "DECLARE ", "FETCH ",
										  "CLOSE ",  "SAVEPOINT ",  "RELEASE",  "SHOW ",
										  "SELECT ", "CREATE TEMP", NULL};
	const char *t = target(sql);

	for (int i = 0; session[i]; i++)
		if (starts(sql, session[i]))
			return STMT_SESSION;
	if (starts(t, "pg_temp."))
		return STMT_SESSION;
	if (starts(t, "public.migration_log"))
		return STMT_LOG;
	if (starts(t, REGISTRY))
		return STMT_REGISTRY;
	return STMT_CHANGE;
}

bool
dryrun_intercept(const char *sql)
{
	switch (classify(sql))
	{
		case STMT_SESSION:
		case STMT_REGISTRY:
			return false;
		case STMT_LOG:
			return dry;
		case STMT_CHANGE:
			break;
	}
	if (!dry)
	{
		log_statement(sql);
		return false;
	}
	dryrun_print_statement(sql);
	return true;
}

void
dryrun_copy_registry(PGconn *conn)
{
	/* sql/state.sql's definition, empty when phase1 never made the registry */
	static const char *const copy[] = {
		"CREATE TEMP TABLE phasemig_objects (plan text NOT NULL, kind text NOT NULL, name text NOT "
		"NULL, phase smallint NOT NULL, detail jsonb NOT NULL DEFAULT '{}', created_at timestamptz "
		"NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (plan, kind, name))",
		"DO $$BEGIN IF pg_catalog.to_regclass('" REGISTRY "') IS NOT NULL THEN "
		"INSERT INTO " REGISTRY_COPY " SELECT * FROM " REGISTRY "; END IF; END$$"};

	/* PQexec, not db_query: that one would read the copy for the registry it fills */
	for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++)
	{
		PGresult *res = PQexec(conn, copy[i]);

		if (!db_ok(res))
		{
			/* without the copy the dry run would print what the registry says is done */
			db_report(res, conn, copy[i]);
			PQclear(res);
			log_exit(EXIT_FAILED);
		}
		PQclear(res);
	}
}

char *
dryrun_registry_sql(const char *sql)
{
	const char *at;
	size_t len = strlen(REGISTRY), copy_len = strlen(REGISTRY_COPY);
	char *out, *w;
	int n = 0;

	if (!dry)
		return NULL;
	/* the name as a table, not inside a string ('migration_backup.phasemig_objects'::regclass) */
	for (at = strstr(sql, REGISTRY); at; at = strstr(at + len, REGISTRY))
		if (at == sql || at[-1] != '\'')
			n++;
	if (n == 0)
		return NULL;
	out = w = malloc(strlen(sql) + (size_t) n * copy_len + 1);
	if (out == NULL)
		return NULL;
	for (const char *r = sql; *r;)
		if (strncmp(r, REGISTRY, len) == 0 && (r == sql || r[-1] != '\''))
		{
			memcpy(w, REGISTRY_COPY, copy_len);
			w += copy_len;
			r += len;
		}
		else
			*w++ = *r++;
	*w = '\0';
	return out;
}

void
dryrun_comment(const char *fmt, ...)
{
	va_list ap;

	fputs("-- ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void
dryrun_print_statement(const char *sql)
{
	char *line = str_one_line(sql);

	dryrun_comment("%s", dryrun_effect(sql));
	printf("%s;\n", line);
	free(line);
	fflush(stdout);
}

void
dryrun_log_statement(const char *sql)
{
	if (classify(sql) == STMT_CHANGE)
		log_statement(sql);
}

void
dryrun_print_transaction(PGconn *conn, const char *const *stmts, int n, int lock_timeout_ms)
{
	printf("BEGIN;\nSET LOCAL lock_timeout = %d;\n", lock_timeout_ms);
	/* db_exec's interception: a change is printed, the registry's copy written, migration_log skipped */
	for (int i = 0; i < n; i++)
		db_exec(conn, stmts[i]);
	printf("COMMIT;\n");
	fflush(stdout);
}

typedef struct Effect
{
	const char *words[3]; /* all present (any case), in any order */
	const char *text;
} Effect;

/* The first row whose words SQL has is its effect: the more specific rows first. */
static const Effect effects[] = {
	{{"CREATE OR REPLACE FUNCTION"}, "no table lock: a function phasemig owns"},
	{{"DROP FUNCTION"}, "no table lock: a function phasemig owns"},
	{{"CREATE TABLE", "WITH NO DATA"}, "no lock on existing tables' rows: a new, empty table phasemig owns"},
	{{"ANALYZE"}, "SHARE UPDATE EXCLUSIVE: reads and writes go on; reads a sample of the table"},
	{{"LOCK TABLE", "ACCESS EXCLUSIVE MODE"},
	 "ACCESS EXCLUSIVE on every table named, taken at once, up front: blocks reads and writes until COMMIT; no scan"},
	{{"INDEX CONCURRENTLY", "CREATE"},
	 "SHARE UPDATE EXCLUSIVE: reads and writes go on; scans the table to build the index"},
	{{"INDEX CONCURRENTLY", "DROP"}, "SHARE UPDATE EXCLUSIVE: reads and writes go on; no scan"},
	{{"CREATE", "INDEX "}, "SHARE: blocks writes; scans the table to build the index"},
	{{"DROP INDEX"}, "ACCESS EXCLUSIVE on the table: blocks reads and writes; catalog only"},
	{{"VALIDATE CONSTRAINT"},
	 "SHARE UPDATE EXCLUSIVE (SHARE ROW EXCLUSIVE on a referenced table): reads and writes go on; "
	 "scans the table"},
	{{"FOREIGN KEY", "NOT VALID"}, "SHARE ROW EXCLUSIVE on both tables: blocks writes; no scan (validated later)"},
	{{"FOREIGN KEY"}, "SHARE ROW EXCLUSIVE on both tables: blocks writes; scans the table"},
	{{"CHECK", "NOT VALID"}, "ACCESS EXCLUSIVE: blocks reads and writes; catalog only, no scan (validated later)"},
	{{"USING INDEX"}, "ACCESS EXCLUSIVE: blocks reads and writes; no scan (the index is built)"},
	{{"SET NOT NULL"},
	 "ACCESS EXCLUSIVE: blocks reads and writes; no scan when a validated CHECK (column IS NOT NULL) "
	 "proves it, else scans the table"},
	{{" TYPE ", "ALTER COLUMN"}, "ACCESS EXCLUSIVE: blocks reads and writes; rewrites the table"},
	{{"ADD COLUMN", "DEFAULT", "random"}, "ACCESS EXCLUSIVE: blocks reads and writes; rewrites the table"},
	{{"ENABLE", "TRIGGER"}, "SHARE ROW EXCLUSIVE: blocks writes; catalog only"},
	{{"DISABLE", "TRIGGER"}, "SHARE ROW EXCLUSIVE: blocks writes; catalog only"},
	{{"CREATE", "TRIGGER"}, "SHARE ROW EXCLUSIVE: blocks writes; catalog only"},
	{{"DROP TRIGGER"}, "ACCESS EXCLUSIVE: blocks reads and writes; catalog only"},
	{{"ALTER TABLE"}, "ACCESS EXCLUSIVE: blocks reads and writes; catalog only, no scan or rewrite"},
	{{"CREATE TABLE", " AS "}, "ACCESS SHARE on the tables read: reads and writes go on; scans them"},
	{{"INSERT INTO", "SELECT"},
	 "ROW EXCLUSIVE on the table written, ACCESS SHARE on those read: reads and writes go on; scans "
	 "what it reads"},
	{{"UPDATE "}, "ROW EXCLUSIVE: reads and writes go on; locks and writes the rows it changes"},
	{{"DELETE FROM"}, "ROW EXCLUSIVE: reads and writes go on; locks and deletes the rows it takes"},
	{{"INSERT INTO"}, "ROW EXCLUSIVE: reads and writes go on; writes rows"},
	{{"DROP TABLE"}, "ACCESS EXCLUSIVE on that table (phasemig's own): the application's tables go on"},
	{{"DROP VIEW"}, "ACCESS EXCLUSIVE on the view"},
	{{"CREATE", "VIEW"}, "ACCESS EXCLUSIVE on the view; the tables it reads go on"},
	{{"CREATE TABLE"}, "no lock on an existing table: a new table phasemig owns"},
	{{"SCHEMA"}, "no table lock: a schema phasemig owns"},
	{{"COMMENT ON"}, "SHARE UPDATE EXCLUSIVE on the object: reads and writes go on"},
};

const char *
dryrun_effect(const char *sql)
{
	for (size_t i = 0; i < sizeof effects / sizeof effects[0]; i++)
	{
		const Effect *e = &effects[i];
		bool all = true;

		for (int w = 0; w < 3 && e->words[w] && all; w++)
			all = has(sql, e->words[w]);
		if (all)
			return e->text;
	}
	return "a lock PostgreSQL's \"Explicit Locking\" table gives for this command";
}
