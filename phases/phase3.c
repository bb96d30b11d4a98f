/*
 * phase3.c: contract.  Pre-flight checks (NULLs, duplicates, dependent
 * objects) that refuse with counts and samples, then NOT NULL, UNIQUE and the
 * drop of old columns, each under a short lock_timeout.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "engine/cli.h"
#include "engine/phase.h"
#include "engine/run.h"
#include "ops/ops.h"

#include "help.h"

static const char help[] =
	"phase3 enforces the new constraints and removes the old columns (contract).\n"
	"\n"
	"Usage: phase3 check --plan FILE [--json] [OPTION]...\n"
	"  or:  phase3 apply --plan FILE [OPTION]...\n"
	"  or:  phase3 finalize --plan FILE [OPTION]...\n"
	"  or:  phase3 status --plan FILE [--json] [OPTION]...\n"
	"  or:  phase3 status --plan FILE --run RUN_ID [--json] [OPTION]...\n"
	"  or:  phase3 plan --plan FILE [--json]\n"
	"  or:  phase3 rollback --plan FILE [--discard-application-writes] [OPTION]...\n"
	"\n"
	"Subcommands:\n"
	"  check          pre-flight checks only: NULL or empty values, duplicates, views,\n"
	"                 rules and foreign keys depending on a column to drop; for\n"
	"                 convert_to_uuid, values not converted, invalid values, orphans,\n"
	"                 and views or rules on any converted column; prints each\n"
	"                 problem with its count and up to 10 sample keys; changes nothing\n"
	"  apply          run the checks, then NOT NULL (through a validated CHECK), UNIQUE\n"
	"                 (an index built CONCURRENTLY, then USING INDEX), remove the sync\n"
	"                 triggers and drop old columns (their values kept in\n"
	"                 migration_backup); convert_to_uuid: build the text key's index\n"
	"                 CONCURRENTLY, then swap each column with its uuid shadow in\n"
	"                 one short transaction (the text values stay in\n"
	"                 <column>_legacy, kept current by triggers)\n"
	"  finalize       convert_to_uuid: save the legacy values into migration_backup\n"
	"                 and drop the <column>_legacy columns and their triggers; a later\n"
	"                 rollback restores them from migration_backup; drop the before\n"
	"                 schema of views (refused while sessions hold its views)\n"
	"  status         show each phase: applied or not, rows, last run, errors;\n"
	"                 with --run, one run's steps and figures\n"
	"  plan           print the plan: name, table, key, uid column, operations\n"
	"                 (reads no database)\n"
	"  rollback       undo apply: add dropped columns back with their values\n"
	"                 (restored in resumable batches), constraints and indexes; drop\n"
	"                 the new constraints; swap uuid columns back to their text\n"
	"                 originals (after finalize too, the legacy keys restored in\n"
	"                 batches first)\n"
	"\n"
	"Options:\n"
	"  -d, --dbname=CONNINFO    database to migrate: a URI or conninfo string\n"
	"                           (default: PGHOST, PGDATABASE..., else $DATABASE_URL)\n"
	"      --plan=FILE          migration plan: a JSON file, or the name of an\n"
	"                           installed plan (clerk-to-firebase, string-to-uuid)\n"
	"      --batch-size=N       rows per batch of a rollback's restores (a dropped\n"
	"                           column's values, legacy keys after finalize;\n"
	"                           default: the plan's, 1000)\n"
	"      --target-batch-ms=MS adapt the batch size so a batch takes about MS\n"
	"      --sleep-ms=MS        pause between batches (default: 0)\n"
	"      --max-lag-ms=MS      pause while a standby's replay lag is over MS (warns\n"
	"                           when no standby is connected)\n"
	"      --lag-query=SQL      with --max-lag-ms: the lag in ms is what SQL returns\n"
	"                           (one row, one number; run read-only before each batch)\n"
	"      --lock-timeout=MS    lock_timeout of each DDL attempt (default: the plan's,\n"
	"                           1000); attempts are retried with jittered backoff;\n"
	"                           while autovacuum runs, deadlock_timeout + 200 ms\n" CLI_HELP_LOCK_WAIT
	"  -y, --yes                apply, finalize: go on without asking; needed off a\n"
	"                           terminal (on one they say what they drop or swap\n"
	"                           and ask on /dev/tty: only the word yes goes on)\n" CLI_HELP_DISCARD_APP_WRITES
	"      --json               check, status and plan output as JSON\n" CLI_HELP_PLAN_RUN
	"      --logs-dir=DIR       where run logs go (default: $PHASEMIG_LOGS, else\n"
	"                           $XDG_STATE_HOME/phasemig/DATABASE/PLAN, else\n"
	"                           ~/.local/state/phasemig/DATABASE/PLAN)\n" CLI_HELP_RUN_CONTROL CLI_HELP_LOG_FORMAT
		CLI_HELP_HOOK "  -V, --version            output version information, then exit\n"
	"  -h, -?, --help           show this help, then exit\n"
	"\n" HELP_ENVIRONMENT CLI_HELP_EXIT_STATUS("a pre-flight check refused (nothing changed);");

static int
check(Run *run, const Options *opts)
{
	return phase_check_ops(run, opts, true);
}

/* phase3 apply, step by step. */
static int
apply(Run *run, const Options *opts)
{
	int rc;

	/* 1. Record the run in migration_log (run_main checked that phase2 is applied). */
	run_begin_phase(run);
	/* 2. Pre-flight checks: any problem refuses before a single change. */
	if ((rc = phase_check_ops(run, opts, false)) != EXIT_DONE)
		return rc;
	/* 3. Say what it drops and swaps and ask on the terminal (--yes answers; no terminal: --yes needed). */
	if (!phase_confirm_apply(run, opts))
		return EXIT_BAD_INPUT;
	/* 4. In plan order: NOT NULL, UNIQUE, remove sync triggers, drop old columns. */
	return phase_apply_ops(run, opts);
}

static int
finalize(Run *run, const Options *opts)
{
	/* 1. Say what it drops and ask on the terminal (--yes answers; no terminal: --yes needed). */
	if (!phase_confirm_finalize(run, opts))
	{
		/* a "no" is recorded, as 'declined' */
		if (run->declined)
			run_begin_phase(run);
		return EXIT_BAD_INPUT;
	}
	run_begin_phase(run);
	/* 2. Save the legacy values, then drop the legacy columns and their triggers. */
	return phase_finalize_ops(run, opts);
}

static int
rollback(Run *run, const Options *opts)
{
	/* In reverse plan order: restore dropped columns, drop the new constraints. */
	return phase_rollback(run, opts);
}

int
main(int argc, char **argv)
{
	static const char *const subcommands[] = {"check", "apply", "finalize", "status", "rollback", "plan", NULL};
	static const Subcommand subs[] = {
		{"check", check}, {"apply", apply}, {"finalize", finalize}, {"rollback", rollback}, {NULL}};
	const CliSpec spec = {.subcommands = subcommands, .help = help, .extra = CLI_BATCH | CLI_CONFIRM};

	/* the operations this binary knows: the engine reads plans against them */
	operations_use(op_types);
	run_main(3, argc, argv, &spec, subs);
}
