/*
 * phase3.c: contract.  Pre-flight checks (NULLs, duplicates, dependent
 * objects) that refuse with counts and samples, then NOT NULL, UNIQUE and the
 * drop of old columns, each under a short lock_timeout.  The binary is its
 * table of subcommands; their steps are the engine's (engine/subcommands.h).
 */
#include "engine/subcommands.h"
#include "ops/ops.h"

#include "help.h"

static const Subcommand subcommands[] = {
	{.name = "check",
	 .run = subcommand_check,
	 .usage = "check --plan FILE [--json] [OPTION]...",
	 .help = "pre-flight checks only: NULL or empty values, duplicates, views,\n"
			 "rules and foreign keys depending on a column to drop; for\n"
			 "convert_to_uuid, values not converted, invalid values, orphans,\n"
			 "and views or rules on any converted column; prints each\n"
			 "problem with its count and up to 10 sample keys; changes nothing"},
	{.name = "apply",
	 .run = subcommand_apply,
	 .flags = SUB_PREFLIGHT | SUB_CONFIRM,
	 .usage = "apply --plan FILE [OPTION]...",
	 .help = "run the checks, then NOT NULL (through a validated CHECK), UNIQUE\n"
			 "(an index built CONCURRENTLY, then USING INDEX), remove the sync\n"
			 "triggers and drop old columns (their values kept in\n"
			 "migration_backup); convert_to_uuid: build the text key's index\n"
			 "CONCURRENTLY, then swap each column with its uuid shadow in\n"
			 "one short transaction (the text values stay in\n"
			 "<column>_legacy, kept current by triggers)"},
	{.name = "finalize",
	 .run = subcommand_finalize,
	 .flags = SUB_CONFIRM,
	 .usage = "finalize --plan FILE [OPTION]...",
	 .help = "convert_to_uuid: save the legacy values into migration_backup\n"
			 "and drop the <column>_legacy columns and their triggers; a later\n"
			 "rollback restores them from migration_backup; drop the before\n"
			 "schema of views (refused while sessions hold its views)"},
	SUBCOMMAND_STATUS,
	SUBCOMMAND_PLAN,
	{.name = "rollback",
	 .run = subcommand_rollback,
	 .usage = "rollback --plan FILE [--discard-application-writes] [OPTION]...",
	 .help = "undo apply: add dropped columns back with their values\n"
			 "(restored in resumable batches), constraints and indexes; drop\n"
			 "the new constraints; swap uuid columns back to their text\n"
			 "originals (after finalize too, the legacy keys restored in\n"
			 "batches first)"},
	{NULL},
};

static const PhaseBinary phase3 = {
	.phase = 3,
	.summary = "phase3 enforces the new constraints and removes the old columns (contract).",
	.subcommands = subcommands,
	.options = phase_options,
	.groups = CLI_BATCH | CLI_CONFIRM | CLI_JOBS,
	.help_tail = HELP_ENVIRONMENT CLI_HELP_EXIT_STATUS("a pre-flight check refused (nothing changed);"),
};

int
main(int argc, char **argv)
{
	/* the operations this binary knows: the engine reads plans against them */
	operations_use(op_types);
	run_main(&phase3, argc, argv);
}
