/*
 * subcommands.c: the subcommands every phase binary is made of, each a
 * numbered list of steps, and run_main, which runs the one the command line
 * names from the binary's table.
 */
#include "engine/subcommands.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/phase.h"
#include "engine/plan_check.h"
#include "engine/plan_find.h"
#include "engine/repack.h"
#include "engine/run.h"
#include "engine/status.h"
#include "engine/summary.h"

int
subcommand_apply(Run *run, const Options *opts)
{
	int rc;

	/*
	 * 1. phase1 (SUB_CREATE_STATE), before creating anything: refuse when
	 * this role may not alter every table the plan changes or create
	 * phasemig's state, or when the plan does not fit the catalog; then
	 * create migration_log, the migration_backup schema and the object
	 * registry, refusing (3) when what is there was not made by phasemig.
	 */
	if (run->sub_flags & SUB_CREATE_STATE)
	{
		if ((rc = plan_check_rights(run)) != EXIT_DONE || (rc = plan_check_catalog(run)) != EXIT_DONE)
			return rc;
		if ((rc = mlog_create_state(run->conn)) != EXIT_DONE)
			return rc;
	}
	/* 2. Record the run in migration_log (run_main checked the order: phase_in_order). */
	run_begin_phase(run);
	/* 3. phase3 (SUB_PREFLIGHT): the pre-flight checks; any problem refuses before a single change. */
	if ((run->sub_flags & SUB_PREFLIGHT) && (rc = phase_check_ops(run, opts, false)) != EXIT_DONE)
		return rc;
	/* 4. phase3 (SUB_CONFIRM): say what it drops and swaps and ask (--yes answers; no terminal: --yes needed). */
	if ((run->sub_flags & SUB_CONFIRM) && !phase_confirm_apply(run, opts))
		return EXIT_BAD_INPUT;
	/*
	 * 5. Each operation's apply, in plan order (phase1: add columns, build
	 * indexes CONCURRENTLY, install sync triggers; phase2: load the
	 * mapping, refuse conflicts, save originals, fill in batches; phase3:
	 * NOT NULL, UNIQUE, swaps, drops).  The phase-level row, closed by
	 * run_finish(), marks the phase applied.
	 */
	return phase_apply_ops(run, opts);
}

int
subcommand_check(Run *run, const Options *opts)
{
	return phase_check_ops(run, opts, true);
}

int
subcommand_finalize(Run *run, const Options *opts)
{
	RepackSetup repack = {0};
	int rc;

	/* 1. --repack: refuse (3) before any change when pg_repack cannot run here (program, extension, role, keys). */
	if (opts->repack && (rc = repack_check(run, opts, &repack)) != EXIT_DONE)
	{
		repack_setup_free(&repack);
		return rc;
	}
	/* 2. Say what it drops and ask on the terminal (--yes answers; no terminal: --yes needed). */
	if (!phase_confirm_finalize(run, opts))
	{
		/* a "no" is recorded, as 'declined' */
		if (run->declined)
			run_begin_phase(run);
		repack_setup_free(&repack);
		return EXIT_BAD_INPUT;
	}
	/* 3. Record the run in migration_log. */
	run_begin_phase(run);
	/* 4. Save the legacy values, then drop the legacy columns and their triggers. */
	rc = phase_finalize_ops(run, opts);
	/* 5. --repack: then compact every table the plan rewrote, online, one at a time. */
	if (rc == EXIT_DONE && opts->repack)
		rc = repack_tables(run, opts, &repack);
	repack_setup_free(&repack);
	return rc;
}

int
subcommand_rollback(Run *run, const Options *opts)
{
	return phase_rollback(run, opts);
}

int
subcommand_status(Run *run, const Options *opts)
{
	return opts->run_id ? status_print_run(run, opts->run_id, opts->json) : status_print(run, opts->json);
}

int
subcommand_plan(Run *run, const Options *opts)
{
	(void) run;
	return summary_print_plan(opts->plan_path, opts->json);
}

void
run_main(const PhaseBinary *binary, int argc, char **argv)
{
	Options opts;
	const Subcommand *sub = binary->subcommands;
	Run *run;

	cli_parse(argc, argv, binary, &opts);
	/* --plan NAME: the installed plan of that name (plan_find.h) */
	if (opts.plan_path && (opts.plan_path = plan_find(opts.plan_path)) == NULL)
		exit(EXIT_BAD_INPUT);
	/* cli_parse accepted the name: it is a row of the table */
	while (strcmp(sub->name, opts.subcommand) != 0)
		sub++;
	if (sub->flags & SUB_OFFLINE)
		exit(sub->run(NULL, &opts));
	run = run_start(binary->phase, &opts, !(sub->flags & SUB_LOCKLESS));
	run->sub_flags = sub->flags;
	opts.logs_dir = run->logs_dir;
	/* before the subcommand does anything: a command run out of order changes nothing (exit 2) */
	if (!(sub->flags & SUB_ANY_ORDER) && !phase_in_order(run))
		run_finish(run, EXIT_BAD_INPUT, NULL);
	run_finish(run, sub->run(run, &opts), NULL);
}
