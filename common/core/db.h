/*
 * db.h: connecting, running statements and reporting their errors, reading
 * results by column name; and (ddl.h, included here) DDL under a short
 * lock_timeout with jittered retry.  Functions named db_x() exit through
 * log_exit() on error; db_x_try() hand the result back, and are all a caller
 * that may not exit (a phase2 --jobs worker, engine/jobs.c) uses.  A failed
 * statement is told by db_report, the one place where our own cancel
 * (SIGINT/SIGTERM) becomes "stopped by SIGTERM" rather than an error.
 * Statements and results are db_query.c's.
 */
#ifndef PHASEMIG_DB_H
#define PHASEMIG_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"
#define SQLSTATE_DEADLOCK "40P01"
#define SQLSTATE_SERIALIZATION "40001"
/* a statement cancelled: by our own cancel request once a SIGINT/SIGTERM came (core/stop.h) */
#define SQLSTATE_QUERY_CANCELED "57014"
#define SQLSTATE_UNDEFINED_TABLE "42P01"
#define SQLSTATE_UNDEFINED_COLUMN "42703"
/* a character the database's encoding has no equivalent for */
#define SQLSTATE_UNTRANSLATABLE "22P05"
/* SQL: the timestamptz COLUMN as ISO 8601 in UTC ("2026-11-30T15:04:05Z"), as JSON output gives times. */
#define DB_ISO_UTC(column) "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The longest application_name the server keeps (NAMEDATALEN - 1 bytes). */
#define DB_APPNAME_MAX 63

/*
 * Connect with PQconnectdbParams(expand_dbname=1): conninfo may be a URI or a
 * conninfo string; NULL means libpq's PG* variables (and service), with
 * DATABASE_URL only as their fallback (db_choose_conninfo).  The session's
 * application_name is APPLICATION_NAME after the operator's own when there
 * is one (an application_name in the conninfo, else PGAPPNAME).  Sets an
 * empty search_path.  Logs and returns NULL on failure, never showing a
 * password: a string libpq cannot parse is not quoted, and the password
 * (with the pieces of a URI's user info) is masked in libpq's message.
 */
PGconn *db_connect(const char *conninfo, const char *application_name);
/*
 * db_connect, but when the server cannot be reached *WHY is set to libpq's
 * message (malloc'd, the password masked) instead of logging it, so that the
 * caller can say first what it was starting.  Other failures are logged.
 */
PGconn *db_connect_try(const char *conninfo, const char *application_name, char **why);
/*
 * The connection string to use, libpq's order kept: CONNINFO (-d) when
 * given; else NULL (the PG* variables, a service) when any of PGHOST,
 * PGHOSTADDR, PGPORT, PGDATABASE, PGUSER, PGSERVICE is set; else
 * DATABASE_URL, if set.  Says once (log_info) when DATABASE_URL is used and
 * when it is set but not used.  *SOURCE says where it came from, for messages.
 */
const char *db_choose_conninfo(const char *conninfo, const char **source);
/*
 * After a lost connection: connect again with the same parameters (PQreset)
 * and set the session up as db_connect does.  Logs and returns false on failure.
 */
bool db_reset(PGconn *conn);
/* Run each of the N SET statements on CONN; the first that fails is reported and gives false. */
bool db_set_all(PGconn *conn, const char *const *settings, size_t n);

/* Room for a server's message on one line (db_error_line); a longer one is cut. */
#define DB_MESSAGE_MAX 2048
/*
 * The server's message for a failed result (RES NULL: the connection's), on
 * one line, into BUF of SIZE (the caller's: --jobs workers call it at once);
 * returns BUF.
 */
const char *db_error_line(const PGresult *res, const PGconn *conn, char *buf, size_t size);
const char *db_sqlstate(const PGresult *res);
bool db_ok(const PGresult *res);
/*
 * Whether a failed result is the run being stopped: a SIGINT/SIGTERM came
 * and the statement was cancelled (our own cancel request, stop.h).
 */
bool db_stopped(const PGresult *res);
/*
 * Log a failed statement: the server's message, then the statement as
 * detail; a statement our stop cancelled (db_stopped) as "stopped by
 * SIGTERM" instead: db_x() and db_x_try() tell their failures here.
 */
void db_report(const PGresult *res, const PGconn *conn, const char *sql);

/*
 * A failed statement as a caller that may not exit hands it on (a --jobs
 * worker to the main thread): its SQLSTATE ("" when the connection was lost
 * before a result) and the server's message.
 */
typedef struct DbFailure
{
	char sqlstate[6];
	char message[DB_MESSAGE_MAX];
} DbFailure;
/* Keep RES's failure (RES NULL: CONN's) in *WHY, unless WHY is NULL or already holds one. */
void db_failure_keep(DbFailure *why, const PGresult *res, const PGconn *conn);

/*
 * Run a statement with text parameters; the caller clears the result.  These
 * and db_value, db_count, db_exists are for reading: a statement that changes
 * something goes through db_exec* (or ddl.h), which a real run logs and a dry
 * run prints instead of running (core/dryrun.h).
 */
PGresult *db_query_try(PGconn *conn, const char *sql, int nparams, const char *const *params);
/* Same, but a failure is logged and exits with EXIT_FAILED. */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params);
/*
 * A question whose failure can be its answer (is this a type, does this cast
 * exist): the result when it succeeded or failed because of what it asked
 * (a data exception, a syntax error, an undefined object, function or table,
 * no such cast); any other failure (a lost connection, a server shutting
 * down, a permission denied) is no answer: logged, it exits with EXIT_FAILED.
 */
PGresult *db_query_answer(PGconn *conn, const char *sql, int nparams, const char *const *params);
void db_exec(PGconn *conn, const char *sql);
void db_execp(PGconn *conn, const char *sql, int nparams, const char *const *params);
/* db_exec, returning the rows the statement affected (PQcmdTuples); 0 in a dry run. */
long long db_exec_rows(PGconn *conn, const char *sql);
long long db_execp_rows(PGconn *conn, const char *sql, int nparams, const char *const *params);
/*
 * For a caller that may not exit: db_execp (*ROWS, when given, gets the rows
 * it affected) and db_count, which return false when the statement failed,
 * after telling it (db_report) and keeping it in *WHY (db_failure_keep).
 */
bool db_execp_try(PGconn *conn, const char *sql, int nparams, const char *const *params, long long *rows,
				  DbFailure *why);
bool db_count_try(PGconn *conn, const char *sql, int nparams, const char *const *params, long long *count,
				  DbFailure *why);
/* First column of the first row as a malloc'd string, or NULL (no row, NULL). */
char *db_value(PGconn *conn, const char *sql, int nparams, const char *const *params);
long long db_count(PGconn *conn, const char *sql, int nparams, const char *const *params);
bool db_exists(PGconn *conn, const char *sql, int nparams, const char *const *params);

/*
 * Row ROW's value of the result column named COLUMN (PQfnumber), or NULL when
 * it is SQL NULL.  A column the statement does not return is a bug: it aborts.
 */
const char *db_field(const PGresult *res, int row, const char *column);
/* The same as a number; 0 for NULL. */
long long db_field_ll(const PGresult *res, int row, const char *column);
/* Whether it is a boolean's true ('t'); false for NULL. */
bool db_field_true(const PGresult *res, int row, const char *column);

/* Abort a COPY in progress and roll back an open transaction, so the session can record. */
void db_end_session_work(PGconn *conn);

void db_sleep_ms(long ms);

#include "core/ddl.h"

#endif
