/*
 * phase.h: the walk every phase binary shares: run the plan's operations of
 * one phase in order (apply) or in reverse (rollback), each with its own
 * migration_log row, and phase3's pre-flight checks.
 */
#ifndef PHASEMIG_PHASE_H
#define PHASEMIG_PHASE_H

#include "engine/cli.h"
#include "engine/mlog.h"

/*
 * Refuse (log, return false) unless the earlier phase is applied and the later
 * one is not: the caller exits 2, a command run out of order, saying the order.
 */
bool phase_can_apply(Run *run);
bool phase_can_rollback(Run *run);

/* Run each operation's step for run->phase; stops at the first failure. */
int phase_apply_ops(Run *run, const Options *opts);
int phase_rollback_ops(Run *run, const Options *opts);
/*
 * A phase's rollback: refuse while the next phase is applied (exit 2),
 * record the run, count what it would discard of the application's writes
 * (refused, 3, unless --discard-application-writes or a yes on the
 * terminal; a no declines, 2), then each operation's rollback in reverse
 * plan order.
 */
int phase_rollback(Run *run, const Options *opts);
/* phase3 finalize: each operation's finalize step (drops what only a rollback needed). */
int phase_finalize_ops(Run *run, const Options *opts);
/*
 * phase3 pre-flight: every operation's check; prints findings; EXIT_REFUSED if
 * any.  With own_entry the check gets its own migration_log row ("phase3
 * check"); otherwise the findings go on the phase row (run_finish writes them).
 */
int phase_check_ops(Run *run, const Options *opts, bool own_entry);
/*
 * phase3 apply and finalize, before their first change: say what they will
 * drop or swap and ask on the controlling terminal (core/confirm.h).  --yes
 * or a dry run: no question; no terminal and no --yes: refused.  False
 * (logged) unless answered yes; a "no" sets run->declined.
 */
bool phase_confirm_apply(Run *run, const Options *opts);
bool phase_confirm_finalize(Run *run, const Options *opts);

#endif
