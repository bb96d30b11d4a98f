/*
 * phase2.c: backfill.  Loads the mapping, refuses conflicts before writing,
 * saves originals into migration_backup and fills the new columns in keyset
 * batches, each committed with its checkpoint, so it can be resumed.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "engine/cli.h"
#include "engine/phase.h"
#include "engine/run.h"
#include "engine/throttle.h"
#include "ops/ops.h"

#include "help.h"

static const char help[] =
	"phase2 fills the new columns from a mapping, in small batches (backfill).\n"
	"\n"
	"Usage: phase2 apply --plan FILE [--mapping FILE] [OPTION]...\n"
	"  or:  phase2 status --plan FILE [--json] [OPTION]...\n"
	"  or:  phase2 status --plan FILE --run RUN_ID [--json] [OPTION]...\n"
	"  or:  phase2 plan --plan FILE [--json]\n"
	"  or:  phase2 rollback --plan FILE [--discard-generated-uids] [OPTION]...\n"
	"  or:  phase2 throttle --plan FILE [--pause | --resume] [OPTION]...\n"
	"  or:  phase2 throttle --plan FILE --reset\n"
	"\n"
	"Subcommands:\n"
	"  apply          load the mapping, refuse any conflict before writing, save the\n"
	"                 original values, fill the columns in batches; resumes where an\n"
	"                 interrupted run stopped; run it again to fill rows inserted since.\n"
	"                 convert_to_uuid: sort the keys (canonical, accepted, invalid),\n"
	"                 refuse invalid keys and orphans, fill the uuid shadow columns,\n"
	"                 then index them as the originals are (CONCURRENTLY)\n"
	"  status         show each phase: applied or not, rows, last run, errors;\n"
	"                 with --run, one run's steps and figures\n"
	"  plan           print the plan: name, table, key, uid column, operations\n"
	"                 (reads no database)\n"
	"  throttle       from another terminal: pause, resume, or change the sleep\n"
	"                 between batches and the batch size of the plan's running\n"
	"                 run (phase2 apply or rollback, phase3 rollback), between two\n"
	"                 batches, for that run only; with no option, show what is set\n"
	"  rollback       restore the saved original values (after phase3 rollback)\n"
	"                 where the column still holds what phasemig wrote; the\n"
	"                 generated Firebase uids are kept for the next apply\n"
	"\n"
	"Options:\n"
	"  -d, --dbname=CONNINFO    database to migrate: a URI or conninfo string\n"
	"                           (default: PGHOST, PGDATABASE..., else $DATABASE_URL)\n"
	"      --plan=FILE          migration plan: a JSON file, or the name of an\n"
	"                           installed plan (clerk-to-firebase, string-to-uuid)\n"
	"      --mapping=FILE       Firebase Auth export (firebase auth:export --format=json),\n"
	"                           a JSON array of {clerk_user_id, firebase_uid}, or a CSV\n"
	"                           with the header clerk_user_id,firebase_uid\n"
	"      --generate-missing   give rows with no match new Firebase uids and write a\n"
	"                           file for firebase auth:import with those users\n"
	/* the options the identity providers add (--clerk-export) */
	CLI_HELP_ADDED_OPTIONS "      --skip-invalid-values\n"
	"                           apply: leave empty the export's values that do not\n"
	"                           fit their column (too long, wrong type, out of range)\n"
	"                           and list them, instead of refusing\n" HELP_DISCARD_GENERATED CLI_HELP_DISCARD_APP_WRITES
	"      --on-invalid=stop|regenerate\n"
	"                           convert_to_uuid: stop before writing when a key is not\n"
	"                           a UUID (default), or give each such key a new random\n"
	"                           uuid that every referencing row follows\n"
	"  -j, --jobs=N             apply: fill on N connections at once: the tables of\n"
	"                           the job, and key ranges of a large table (default: 1)\n"
	"      --batch-size=N       rows per batch (default: the plan's, 1000)\n"
	"      --target-batch-ms=MS adapt the batch size so a batch takes about MS\n"
	"      --sleep-ms=MS        pause between batches (default: 0)\n"
	"      --max-lag-ms=MS      pause while a standby's replay lag is over MS (warns\n"
	"                           when no standby is connected)\n"
	"      --lag-query=SQL      with --max-lag-ms: the lag in ms is what SQL returns\n"
	"                           (one row, one number; run read-only before each\n"
	"                           batch), e.g. for a logical replica\n"
	"      --pause, --resume    throttle: pause the running run at its next batch\n"
	"                           boundary, or let it go on\n"
	"      --next-run           throttle, when no run is going: set it for the next\n"
	"                           run that walks batches, and that run only\n"
	"      --reset              throttle: clear every setting (a pause too), of the\n"
	"                           running run and for the next one\n"
	"      --lock-timeout=MS    lock_timeout of each DDL attempt and batch (default:\n"
	"                           the plan's, 1000); while autovacuum runs, DDL\n"
	"                           waits deadlock_timeout + 200 ms\n" CLI_HELP_LOCK_WAIT
	"      --json               status and plan as a JSON object\n" CLI_HELP_PLAN_RUN
	"      --logs-dir=DIR       where run logs and reports go (default:\n"
	"                           $PHASEMIG_LOGS, else\n"
	"                           $XDG_STATE_HOME/phasemig/DATABASE/PLAN, else\n"
	"                           ~/.local/state/phasemig/DATABASE/PLAN)\n" CLI_HELP_RUN_CONTROL CLI_HELP_LOG_FORMAT
		CLI_HELP_HOOK "  -V, --version            output version information, then exit\n"
	"  -h, -?, --help           show this help, then exit\n"
	"\n"
	"Files written to the logs directory:\n"
	"  RUN-ID.log                   the run's log\n"
	"  RUN-ID-unmatched.csv         rows still without a uid, when there are any\n"
	"  RUN-ID-firebase-import.json  with --generate-missing, the users to import:\n"
	"                               each generated user is in exactly one such file;\n"
	"                               RUN-ID-firebase-import.json.partial until its\n"
	"                               users are committed (the next apply finishes it)\n"
	"  RUN-ID-invalid-values.csv    with --skip-invalid-values, the values left empty:\n"
	"                               localId, element, field, column and why\n"
	"\n" HELP_ENVIRONMENT CLI_HELP_EXIT_STATUS(
		"the mapping conflicts with the table, has values that do not fit it or\n"
		"       characters the database's encoding cannot hold, or invalid keys or\n"
		"       orphans (nothing written);");

/* phase2 apply, step by step. */
static int
apply(Run *run, const Options *opts)
{
	/* 1. Record the run in migration_log (run_main checked that phase1 is applied and phase3 is not). */
	run_begin_phase(run);
	/*
	 * 2. For each backfill operation: load the mapping with COPY, refuse
	 * conflicts, save originals and fill the batches with checkpoints.
	 */
	return phase_apply_ops(run, opts);
}

static int
rollback(Run *run, const Options *opts)
{
	/* Restore the original values in batches, then drop the backup. */
	return phase_rollback(run, opts);
}

int
main(int argc, char **argv)
{
	static const char *const subcommands[] = {"apply", "status", "rollback", "plan", "throttle", NULL};
	static const Subcommand subs[] = {
		{"apply", apply}, {"rollback", rollback}, {"throttle", throttle_command, true}, {NULL}};
	const CliSpec spec = {.subcommands = subcommands,
						  .help = help,
						  .extra = CLI_MAPPING | CLI_BATCH | CLI_ON_INVALID | CLI_DISCARD_GENERATED | CLI_JOBS};

	/* the operations this binary knows: the engine reads plans against them */
	operations_use(op_types);
	run_main(2, argc, argv, &spec, subs);
}
