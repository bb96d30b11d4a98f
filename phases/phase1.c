/*
 * phase1.c: expand.  Additive only: the state table and backup schema,
 * nullable columns, indexes built CONCURRENTLY and the sync triggers that fill
 * new columns of rows the application writes from now on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/catalog.h"
#include "engine/cli.h"
#include "engine/phase.h"
#include "engine/plan_check.h"
#include "engine/run.h"
#include "ops/ops.h"

#include "help.h"

static const char help[] =
	"phase1 adds what the migration needs without changing existing data (expand).\n"
	"\n"
	"Usage: phase1 apply --plan FILE [OPTION]...\n"
	"  or:  phase1 status --plan FILE [--json] [OPTION]...\n"
	"  or:  phase1 status --plan FILE --run RUN_ID [--json] [OPTION]...\n"
	"  or:  phase1 plan --plan FILE [--json]\n"
	"  or:  phase1 rollback --plan FILE [--discard-application-writes] [OPTION]...\n"
	"\n"
	"Subcommands:\n"
	"  apply          create migration_log and the migration_backup schema, add the\n"
	"                 plan's nullable columns, build its indexes CONCURRENTLY and\n"
	"                 install its sync triggers; convert_to_uuid: find every foreign\n"
	"                 key to the column in pg_constraint, add a uuid shadow beside the\n"
	"                 key and each referencing column, with triggers (their indexes\n"
	"                 are built by phase2 apply, once it has filled them); last,\n"
	"                 the plan's before and after schemas of views, one per version\n"
	"                 of the application (its search_path)\n"
	"  status         show each phase: applied or not, rows, last run, errors;\n"
	"                 with --run, one run's steps and figures\n"
	"  plan           print the plan: name, table, key, uid column, operations\n"
	"                 (reads no database)\n"
	"  rollback       drop exactly what apply created (after phase2 rollback); the\n"
	"                 Firebase uids phase2 generated are kept for the next apply\n"
	"\n"
	"Options:\n"
	"  -d, --dbname=CONNINFO    database to migrate: a URI or conninfo string\n"
	"                           (default: PGHOST, PGDATABASE..., else $DATABASE_URL)\n"
	"      --plan=FILE          migration plan: a JSON file, or the name of an\n"
	"                           installed plan (clerk-to-firebase, string-to-uuid)\n"
	"      --lock-timeout=MS    lock_timeout of each DDL attempt (default: the plan's,\n"
	"                           1000); attempts are retried with jittered backoff;\n"
	"                           while autovacuum runs, deadlock_timeout + 200 ms\n" CLI_HELP_LOCK_WAIT
		HELP_DISCARD_GENERATED CLI_HELP_DISCARD_APP_WRITES
	"      --json               status and plan as a JSON object\n" CLI_HELP_PLAN_RUN
	"      --logs-dir=DIR       where run logs go (default: $PHASEMIG_LOGS, else\n"
	"                           $XDG_STATE_HOME/phasemig/DATABASE/PLAN, else\n"
	"                           ~/.local/state/phasemig/DATABASE/PLAN)\n" CLI_HELP_RUN_CONTROL CLI_HELP_LOG_FORMAT
		CLI_HELP_HOOK "  -V, --version            output version information, then exit\n"
	"  -h, -?, --help           show this help, then exit\n"
	"\n" HELP_ENVIRONMENT CLI_HELP_EXIT_STATUS("a pre-flight check refused (nothing changed);");

/* phase1 apply, step by step. */
static int
apply(Run *run, const Options *opts)
{
	int rc;

	/*
	 * 1. Refuse, before creating anything (run_main refused it while phase2
	 * is applied): when this role may not alter every table the plan
	 * changes or create phasemig's state, or when the plan does not fit the
	 * catalog (columns, types, index names).
	 */
	if ((rc = plan_check_rights(run)) != EXIT_DONE || (rc = plan_check_catalog(run)) != EXIT_DONE)
		return rc;
	/*
	 * 2. Create migration_log, the migration_backup schema and the object
	 * registry, and refuse (3) when what is there was not made by phasemig.
	 */
	if ((rc = mlog_create_state(run->conn)) != EXIT_DONE)
		return rc;
	/* 3. Record the run in migration_log. */
	run_begin_phase(run);
	/* 4. In plan order: add columns, build indexes CONCURRENTLY, install sync triggers. */
	rc = phase_apply_ops(run, opts);
	/* 5. The phase-level row, closed by run_finish(), marks phase1 applied. */
	return rc;
}

static int
rollback(Run *run, const Options *opts)
{
	/* In reverse plan order: drop triggers, indexes and columns phasemig created. */
	return phase_rollback(run, opts);
}

int
main(int argc, char **argv)
{
	static const char *const subcommands[] = {"apply", "status", "rollback", "plan", NULL};
	static const Subcommand subs[] = {{"apply", apply}, {"rollback", rollback}, {NULL}};
	const CliSpec spec = {.subcommands = subcommands, .help = help, .extra = CLI_DISCARD_GENERATED};

	/* the operations this binary knows: the engine reads plans against them */
	operations_use(op_types);
	run_main(1, argc, argv, &spec, subs);
}
