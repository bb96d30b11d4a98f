/*
 * mlog.h: the migration_log audit table: one row per operation of every run,
 * with status, rows, checkpoint key and JSON metadata; and the phase state
 * derived from it.
 */
#ifndef PHASEMIG_MLOG_H
#define PHASEMIG_MLOG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "core/db.h"
#include "engine/plan.h"

#define PHASEMIG_VERSION "0.1.0"

typedef struct Run
{
	PGconn *conn;
	const char *conninfo; /* as given (-d), or NULL: phase2 --jobs opens more connections with it */
	char *role;           /* the table's owner every connection switched to (role.h), or NULL */
	Plan *plan;
	int phase;
	const char *subcommand;
	unsigned sub_flags; /* its row's SUB_* flags (cli.h): the steps only some phases' subcommands have */
	char run_id[37];
	char *client;          /* OS user@host */
	char *logs_dir;        /* where its log and files go (logs_dir.h) */
	long long phase_entry; /* migration_log id of the phase-level row */
	char *phase_metadata;  /* JSON text for that row (phase3 apply: the findings), or NULL */
	/* the operation being run: its migration_log row and what it reports */
	long long op_entry;
	long long op_rows;
	char *op_message;  /* malloc'd or NULL */
	char *op_metadata; /* JSON text, malloc'd or NULL */
	bool declined;     /* the operator answered no: the rows end 'declined', not 'failed' */
	/*
	 * --jobs: the connections a step may use at once (jobs.h), for the
	 * steps that are not given the options (an operation's phase3 check)
	 */
	int jobs;
} Run;

/*
 * Create migration_log, migration_backup and the object registry if missing,
 * and check them (trust.h) in the same transaction: EXIT_DONE, EXIT_FAILED,
 * or EXIT_REFUSED (something there was not made by phasemig; nothing changed).
 */
int mlog_create_state(PGconn *conn);
bool mlog_state_exists(PGconn *conn);

/* Insert a 'running' row and return its id (exits on failure). */
long long mlog_begin(Run *run, const char *operation, long long rows_total, long long rows_done, const char *last_key);
/*
 * The run's phase-level row (its subcommand), 'running', with the client's
 * pid and host and the server backend's pid in its metadata (client_pid,
 * client_host, backend_pid); its id (exits on failure).
 */
long long mlog_begin_run(Run *run);
/* Set the expected total and the starting point of a row (status's rate and ETA start there). */
void mlog_set_progress(Run *run, long long id, long long rows_total, long long rows_done, const char *last_key);
/* The same for a batch loop, which may not exit (a --jobs worker): false when it failed (told, kept in *WHY). */
bool mlog_set_progress_try(Run *run, long long id, long long rows_total, long long rows_done, const char *last_key,
						   DbFailure *why);
/*
 * The checkpoint of a batch (rows scanned, last key and rows this run
 * changed so far) as a CTE of the batch statement (core/keyset.h's
 * keyset_with_step), in its transaction: from keyset_counts, when the
 * batch scanned rows, and parameters $P (the row's id), $P+1 (rows done
 * before the batch) and $P+2 (rows changed before it).  Malloc'd.
 */
char *mlog_checkpoint_step(int p);
/*
 * Close a row: status 'done', 'failed' or 'refused' ('failed' is recorded as
 * 'interrupted' when a signal stopped the run); metadata is JSON text or NULL.
 */
void
mlog_finish(Run *run, long long id, const char *status, long long rows_done, const char *message, const char *metadata);

/*
 * SQL: the id of the plan's ($1) newest phase2 rollback, or 0.  A checkpoint
 * older than it belongs to work that rollback undid: never resume from it.
 */
#define MLOG_LAST_PHASE2_ROLLBACK                                                                                      \
	"coalesce((SELECT max(r.id) FROM public.migration_log r WHERE r.plan = $1 AND r.phase = 2 "                        \
	"AND r.operation = 'rollback'), 0)"

/* true when the newest finished apply/rollback of PHASE for this plan is an apply. */
bool mlog_phase_applied(PGconn *conn, const Plan *plan, int phase);
/*
 * true when an apply of PHASE for this plan ran (done, interrupted, or failed
 * after its first step began: it may have changed something) since the
 * plan's last completed rollback of PHASE: there is something to roll back.
 */
bool mlog_phase_started(PGconn *conn, const Plan *plan, int phase);

#endif
