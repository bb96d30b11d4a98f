/*
 * run.h: what every subcommand does first: read the plan, connect, check the
 * plan against the catalog, take the plan's lock and open logs/<run-id>.log.
 */
#ifndef PHASEMIG_RUN_H
#define PHASEMIG_RUN_H

#include "engine/cli.h"
#include "engine/mlog.h"

/*
 * Start a run of PHASE.  Exits 2 on a bad plan, 1 when the database cannot be
 * reached, 4 when another run holds the plan's lock past --lock-wait.  With
 * take_lock false (status) neither the lock is taken nor a log file written.
 * With it, SIGINT/SIGTERM stop the run at a safe point (stop.h), every exit
 * closes this run's migration_log rows (done, failed, refused or interrupted,
 * with the reason), and rows left 'running' by a dead run are closed first.
 */
Run *run_start(int phase, const Options *opts, bool take_lock);

/*
 * One more connection of this run, opened as its own was (phase2's --jobs
 * workers, the --lag-query's), with the same role (SET ROLE to the table's
 * owner when the run switched): every connection a run opens after
 * run_start() comes from here.  application_name "<binary> <subcommand>
 * (phasemig run <id>, WHAT)".  NULL after saying why when it cannot be opened.
 */
PGconn *run_connect(const Run *run, const char *what);
/*
 * After the run's own connection was lost: connect again, set up and with
 * the run's role as before, to record the run's outcome (the plan's lock
 * went with the old session).  Logs and returns false on failure.
 */
bool run_reconnect(Run *run);

/* Phase-level bookkeeping: a migration_log row for the subcommand itself. */
void run_begin_phase(Run *run);
/*
 * A dry run's session is read-only; the few steps that stage their input in
 * temporary tables (phase2's mapping) lift that while they do.  No-op otherwise.
 */
void run_session_writable(Run *run, bool writable);
/* "stopped by SIGTERM", else the run's first error, else NULL (static storage or the log's). */
const char *run_failure_reason(void);
/* Close the phase-level row and exit with code (0 done, 3 refused, else failed). */
_Noreturn void run_finish(Run *run, int code, const char *message);

#endif
