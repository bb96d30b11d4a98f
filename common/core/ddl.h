/*
 * ddl.h: DDL under a short lock_timeout, retried with jittered backoff when a
 * lock is not available or a deadlock is detected; what each change cost in
 * lock time.  Included by db.h.
 */
#ifndef PHASEMIG_DDL_H
#define PHASEMIG_DDL_H

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct DbRetry
{
	int lock_timeout_ms; /* per DDL attempt */
	int max_attempts;    /* attempts before giving up */
	int max_backoff_ms;  /* cap of the jittered exponential backoff */
} DbRetry;

void db_set_retry(const DbRetry *retry);
const DbRetry *db_get_retry(void);

/*
 * Run STMTS in one transaction under SET LOCAL lock_timeout, retrying the whole
 * transaction with jittered backoff when a lock is not available or a deadlock
 * is detected.  Returns true when committed; otherwise logs and returns false
 * with nothing changed.  what names the change in retry messages.
 */
bool db_ddl_try(PGconn *conn, const char *what, const char *const *stmts, int n);
/*
 * Same, for a change whose lock lets the application read and write (VALIDATE
 * CONSTRAINT: SHARE UPDATE EXCLUSIVE): its time is not counted as a lock hold.
 */
bool db_ddl_try_nonblocking(PGconn *conn, const char *what, const char *const *stmts, int n);
/* Same, for one statement that cannot run in a transaction block (CONCURRENTLY). */
bool db_ddl_nontx_try(PGconn *conn, const char *what, const char *sql, bool use_lock_timeout);

/*
 * DDL statistics since the last reset: the longest time one DDL change took
 * (waits and retries included), the retries after lock timeouts, and the
 * longest single attempt, the closest measure of how long we held its locks.
 */
typedef struct DbDdlStats
{
	double longest_ms;
	double longest_attempt_ms;
	int retries;
} DbDdlStats;
void db_ddl_stats_reset(void);
DbDdlStats db_ddl_stats(void);

#endif
