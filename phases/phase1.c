/*
 * phase1.c: expand.  Additive only: the state table and backup schema,
 * nullable columns, indexes built CONCURRENTLY and the sync triggers that fill
 * new columns of rows the application writes from now on.  The binary is its
 * table of subcommands; their steps are the engine's (engine/subcommands.h).
 */
#include "engine/subcommands.h"
#include "ops/ops.h"

#include "help.h"

static const Subcommand subcommands[] = {
	{.name = "apply",
	 .run = subcommand_apply,
	 .flags = SUB_CREATE_STATE,
	 .usage = "apply --plan FILE [OPTION]...",
	 .help = "create migration_log and the migration_backup schema, add the\n"
			 "plan's nullable columns, build its indexes CONCURRENTLY and\n"
			 "install its sync triggers; convert_to_uuid: find every foreign\n"
			 "key to the column in pg_constraint, add a uuid shadow beside the\n"
			 "key and each referencing column, with triggers (their indexes\n"
			 "are built by phase2 apply, once it has filled them); last,\n"
			 "the plan's before and after schemas of views, one per version\n"
			 "of the application (its search_path)"},
	SUBCOMMAND_STATUS,
	SUBCOMMAND_PLAN,
	{.name = "rollback",
	 .run = subcommand_rollback,
	 .usage = "rollback --plan FILE [--discard-application-writes] [OPTION]...",
	 .help = "drop exactly what apply created (after phase2 rollback); the\n"
			 "Firebase uids phase2 generated are kept for the next apply"},
	{NULL},
};

static const PhaseBinary phase1 = {
	.phase = 1,
	.summary = "phase1 adds what the migration needs without changing existing data (expand).",
	.subcommands = subcommands,
	.options = phase_options,
	.groups = CLI_DISCARD_GENERATED,
	.help_tail = HELP_ENVIRONMENT CLI_HELP_EXIT_STATUS("a pre-flight check refused (nothing changed);"),
};

int
main(int argc, char **argv)
{
	/* the operations this binary knows: the engine reads plans against them */
	operations_use(op_types);
	run_main(&phase1, argc, argv);
}
