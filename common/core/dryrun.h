/*
 * dryrun.h: --dry-run, and the statements a run changes the database with.
 * Every statement that changes a table, a schema or a row of the
 * application's passes through here (db.c's db_exec* and ddl.c's DDL): a
 * real run writes it to the run log ("statement: ..."); a dry run prints it
 * on stdout, with the lock it takes and whether it scans or rewrites the
 * table, and does not run it (db_query, db_value, db_count and db_exists are
 * for reads: a change through them is neither; t06 catches one in the
 * server's log).  Statements on the session's temporary tables (a dry run
 * reads the mapping into some, to count) and transaction control always
 * run, neither printed nor logged; phasemig's bookkeeping is neither
 * printed nor logged: a dry run skips migration_log, and reads and writes
 * its registry of objects in a temporary copy (pg_temp.phasemig_objects),
 * so that its later steps see what its earlier ones would have recorded.
 */
#ifndef PHASEMIG_DRYRUN_H
#define PHASEMIG_DRYRUN_H

#include <stdbool.h>

#include <libpq-fe.h>

void dryrun_enable(void);
bool dryrun_on(void);

/*
 * Before running SQL: true when it must not run (a dry run printed it, or
 * skipped phasemig's bookkeeping); false to run it (a real run logged it
 * when it changes something).
 */
bool dryrun_intercept(const char *sql);

/* A real run: SQL into the run log when it changes something (log_statement). */
void dryrun_log_statement(const char *sql);
/* A dry run's DDL transaction: BEGIN, the lock_timeout, STMTS, COMMIT (its registry statements run). */
void dryrun_print_transaction(PGconn *conn, const char *const *stmts, int n, int lock_timeout_ms);
/* A dry run's copy of the registry, made at its start, while the session may still create a table; exits on failure. */
void dryrun_copy_registry(PGconn *conn);
/* In a dry run, SQL with the registry's name made its temporary copy's (malloc'd); else NULL. */
char *dryrun_registry_sql(const char *sql);
/* One statement run outside a transaction block (CONCURRENTLY). */
void dryrun_print_statement(const char *sql);
/* A comment line of a dry run's output ("-- step 2 of 5: ..."). */
void dryrun_comment(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The lock SQL takes and what it does to the table, one line (static storage). */
const char *dryrun_effect(const char *sql);

#endif
