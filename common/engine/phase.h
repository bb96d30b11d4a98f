/*
 * phase.h: the walk every phase binary shares: run the plan's operations of
 * one phase in order (apply) or in reverse (rollback), each with its own
 * migration_log row, and phase3's pre-flight checks.
 */
#ifndef PHASEMIG_PHASE_H
#define PHASEMIG_PHASE_H

#include "core/confirm.h"
#include "engine/cli.h"
#include "engine/mlog.h"

/*
 * The one check of the order, from migration_log, before a subcommand does
 * anything (run_main calls it): the phase before is applied (phase3 finalize:
 * phase3 apply), a rollback has an apply to undo, phase3 check comes before
 * phase3 apply, and the next phase is not applied, not even in part.  False
 * after saying which phase is where, on which database, and what to run:
 * the caller exits 2, nothing changed.
 */
bool phase_in_order(Run *run);

/* Run each operation's step for run->phase; stops at the first failure. */
int phase_apply_ops(Run *run, const Options *opts);
int phase_rollback_ops(Run *run, const Options *opts);
/*
 * A phase's rollback: record the run, count what it would discard of the
 * application's writes (refused, 3, unless --discard-application-writes or a
 * yes on the terminal; a no declines, 2), then each operation's rollback in
 * reverse plan order.
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
/*
 * What the operator's ANSWER means for the run: yes goes on; no marks the run
 * declined (exit 2, recorded 'declined'); no terminal refuses, naming FLAG,
 * the option that answers for a script.  True: go on.
 */
bool phase_confirm_outcome(Run *run, ConfirmAnswer answer, const char *flag);
bool phase_confirm_finalize(Run *run, const Options *opts);

#endif
