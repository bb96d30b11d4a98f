/*
 * phase2.c: backfill.  Loads the mapping, refuses conflicts before writing,
 * saves originals into migration_backup and fills the new columns in keyset
 * batches, each committed with its checkpoint, so it can be resumed.  The
 * binary is its table of subcommands; their steps are the engine's
 * (engine/subcommands.h, engine/throttle.h).
 */
#include "engine/subcommands.h"
#include "engine/throttle.h"
#include "ops/ops.h"

#include "help.h"

static const Subcommand subcommands[] = {
	{.name = "apply",
	 .run = subcommand_apply,
	 .usage = "apply --plan FILE [--mapping FILE] [OPTION]...",
	 .help = "load the mapping, refuse any conflict before writing, save the\n"
			 "original values, fill the columns in batches; resumes where an\n"
			 "interrupted run stopped; run it again to fill rows inserted since.\n"
			 "convert_to_uuid: sort the keys (canonical, accepted, invalid),\n"
			 "refuse invalid keys and orphans, fill the uuid shadow columns,\n"
			 "then index them as the originals are (CONCURRENTLY)"},
	SUBCOMMAND_STATUS,
	SUBCOMMAND_PLAN,
	{.name = "throttle",
	 .run = throttle_command,
	 .flags = SUB_LOCKLESS,
	 .usage = "throttle --plan FILE [--pause | --resume] [OPTION]...\n"
			  "throttle --plan FILE --reset",
	 .help = "from another terminal: pause, resume, or change the sleep\n"
			 "between batches and the batch size of the plan's running\n"
			 "run (phase2 apply or rollback, phase3 rollback), between two\n"
			 "batches, for that run only; with no option, show what is set"},
	{.name = "rollback",
	 .run = subcommand_rollback,
	 .usage = "rollback --plan FILE [--discard-generated-uids] [OPTION]...",
	 .help = "restore the saved original values (after phase3 rollback)\n"
			 "where the column still holds what phasemig wrote; the\n"
			 "generated Firebase uids are kept for the next apply"},
	{NULL},
};

static const PhaseBinary phase2 = {
	.phase = 2,
	.summary = "phase2 fills the new columns from a mapping, in small batches (backfill).",
	.subcommands = subcommands,
	.options = phase_options,
	.groups = CLI_MAPPING | CLI_BATCH | CLI_ON_INVALID | CLI_DISCARD_GENERATED | CLI_JOBS,
	.help_tail = "Files written to the logs directory:\n"
				 "  RUN-ID.log                   the run's log\n"
				 "  RUN-ID-unmatched.csv         rows still without a uid, when there are any\n"
				 "  RUN-ID-firebase-import-ALGO.json\n"
				 "                               with --generate-missing, the users to import, one\n"
				 "                               file per password hash algorithm (bcrypt, scrypt,\n"
				 "                               pbkdf2-sha256-ROUNDS...), each import command in\n"
				 "                               the run log: each generated user is in exactly\n"
				 "                               one such file; FILE.partial until its users are\n"
				 "                               committed (the next apply finishes it)\n"
				 "  RUN-ID-password-reset.csv    the users of the -password-reset import file:\n"
				 "                               imported without their password (a hasher\n"
				 "                               Firebase cannot verify): send each a reset\n"
				 "  RUN-ID-mfa-reenrol.csv       users with TOTP or backup codes in Clerk, which\n"
				 "                               Firebase cannot import: they enrol again\n"
				 "  RUN-ID-invalid-values.csv    with --skip-invalid-values, the values left empty:\n"
				 "                               localId, element, field, column and why\n"
				 "\n" HELP_ENVIRONMENT CLI_HELP_EXIT_STATUS(
					 "the mapping conflicts with the table, has values that do not fit it or\n"
					 "       characters the database's encoding cannot hold, or invalid keys or\n"
					 "       orphans (nothing written);"),
};

int
main(int argc, char **argv)
{
	/* the operations this binary knows: the engine reads plans against them */
	operations_use(op_types);
	run_main(&phase2, argc, argv);
}
