/*
 * subcommands.h: the steps of the subcommands the phase binaries share, the
 * handlers of their tables (cli.h's Subcommand), and run_main, which runs
 * the one a command line names.  An apply is one sequence for every phase:
 * the steps only some phases have are flags of its row (SUB_CREATE_STATE,
 * SUB_PREFLIGHT, SUB_CONFIRM).
 */
#ifndef PHASEMIG_SUBCOMMANDS_H
#define PHASEMIG_SUBCOMMANDS_H

#include "engine/cli.h"
#include "engine/mlog.h"

/* apply: record the run, then each operation's apply in plan order, with its row's extra steps. */
int subcommand_apply(Run *run, const Options *opts);
/* phase3 check: the pre-flight checks alone, recorded as their own migration_log row; changes nothing. */
int subcommand_check(Run *run, const Options *opts);
/* phase3 finalize: ask, record the run, then each operation's finalize (drops what only a rollback needed). */
int subcommand_finalize(Run *run, const Options *opts);
/* rollback: phase_rollback (phase.h). */
int subcommand_rollback(Run *run, const Options *opts);
/* status: each phase's state, or with --run one run's steps (no lock). */
int subcommand_status(Run *run, const Options *opts);
/* plan: the plan, read from its file (SUB_OFFLINE: RUN is NULL). */
int subcommand_plan(Run *run, const Options *opts);

/* The rows of status and plan, the same in every binary's table. */
#define SUBCOMMAND_STATUS                                                                                              \
	{                                                                                                                  \
		.name = "status", .run = subcommand_status, .flags = SUB_LOCKLESS | SUB_ANY_ORDER,                             \
		.usage = "status --plan FILE [--json] [OPTION]...\n"                                                          \
				 "status --plan FILE --run RUN_ID [--json] [OPTION]...",                                               \
		.help = "show each phase: applied or not, rows, last run, errors;\n"                                          \
				"with --run, one run's steps and figures"                                                              \
	}
#define SUBCOMMAND_PLAN                                                                                                \
	{                                                                                                                  \
		.name = "plan", .run = subcommand_plan, .flags = SUB_OFFLINE, .usage = "plan --plan FILE [--json]",            \
		.help = "print the plan: name, table, key, uid column, operations\n"                                          \
				"(reads no database)"                                                                                  \
	}

/*
 * The main of every phase binary: parse the command line against BINARY's
 * tables; run the subcommand it names: a SUB_OFFLINE one with no database,
 * any other after run_start() (with the plan's lock unless SUB_LOCKLESS),
 * refused (exit 2) when run out of order (phase_in_order) unless
 * SUB_ANY_ORDER; exits with its code.
 */
_Noreturn void run_main(const PhaseBinary *binary, int argc, char **argv);

#endif
