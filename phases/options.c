/*
 * options.c: every option of the three phase binaries, one row each (cli.h's
 * CliOption): its names, where its value goes, which binaries (group) and
 * subcommands take it, and its --help, in --help's order.  cli.c parses the
 * command line from this table and prints --help from it; a new option is
 * one row here plus the code that reads its field.  The options an identity
 * provider adds are its own rows (ops/backfill/provider.h), listed in --help
 * after the rows of their group.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/cli.h"

#include "help.h"

#define FIELD(f) offsetof(Options, f)

/* --on-invalid=stop|regenerate */
static const char *
parse_on_invalid(const char *arg, Options *opts)
{
	if (strcmp(arg, "regenerate") != 0 && strcmp(arg, "stop") != 0)
		return "--on-invalid must be \"stop\" or \"regenerate\", not \"%s\"";
	opts->regenerate_invalid = strcmp(arg, "regenerate") == 0;
	return NULL;
}

/* --log-format=text|json, in effect at once: what the parser says next is in it */
static const char *
parse_log_format(const char *arg, Options *opts)
{
	if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0)
		return "--log-format must be \"text\" or \"json\", not \"%s\"";
	opts->log_json = strcmp(arg, "json") == 0;
	log_set_json(opts->log_json);
	return NULL;
}

/* --run: the whole id, or its first 8 (or more) digits as application_name shows them */
static const char *
parse_run(const char *arg, Options *opts)
{
	if (strlen(arg) < 8 || strlen(arg) > 36 || strspn(arg, "0123456789abcdefABCDEF-") != strlen(arg))
		return "--run must be a run id (a uuid, or its first 8 digits), not \"%s\"";
	opts->run_id = arg;
	return NULL;
}

/* --hook-progress-interval: minutes, a fraction too */
static const char *
parse_minutes(const char *arg, Options *opts)
{
	char *end;

	opts->hook_progress_min = strtod(arg, &end);
	if (*arg == '\0' || *end != '\0' || !(opts->hook_progress_min >= 0 && opts->hook_progress_min <= 1440))
		return "--hook-progress-interval must be a number of minutes from 0 to 1440, not \"%s\"";
	return NULL;
}

const CliOption phase_options[] = {
	{.name = "dbname",
	 .short_name = 'd',
	 .value = CLI_TEXT,
	 .field = FIELD(dbname),
	 .arg = "CONNINFO",
	 .help = "database to migrate: a URI or conninfo string\n"
			 "(default: PGHOST, PGDATABASE..., else $DATABASE_URL)"},
	{.name = "plan",
	 .value = CLI_TEXT,
	 .field = FIELD(plan_path),
	 .arg = "FILE",
	 .help = "migration plan: a JSON file, or the name of an\n"
			 "installed plan (clerk-to-firebase, string-to-uuid)"},
	{.name = "mapping",
	 .value = CLI_TEXT,
	 .field = FIELD(mapping),
	 .group = CLI_MAPPING,
	 .arg = "FILE",
	 .help = "Firebase Auth export (firebase auth:export --format=json),\n"
			 "a JSON array of {clerk_user_id, firebase_uid}, or a CSV\n"
			 "with the header clerk_user_id,firebase_uid"},
	{.name = "generate-missing",
	 .value = CLI_SWITCH,
	 .field = FIELD(generate_missing),
	 .group = CLI_MAPPING,
	 .help = "give rows with no match new Firebase uids and write\n"
			 "files for firebase auth:import with those users"},
	{.name = "skip-invalid-values",
	 .value = CLI_SWITCH,
	 .field = FIELD(skip_invalid_values),
	 .group = CLI_MAPPING,
	 .subcommands = "apply",
	 .help = "apply: leave empty the export's values that do not\n"
			 "fit their column (too long, wrong type, out of range)\n"
			 "and list them, instead of refusing"},
	{.name = "discard-generated-uids",
	 .value = CLI_SWITCH,
	 .field = FIELD(discard_generated_uids),
	 .group = CLI_DISCARD_GENERATED,
	 .subcommands = "rollback",
	 .help = "rollback: also forget the generated Firebase uids and\n"
			 "the ledger of import files, and the uuids\n"
			 "convert_to_uuid regenerated; only when no import file\n"
			 "was imported (the next apply generates new ones)"},
	{.name = "discard-application-writes",
	 .value = CLI_SWITCH,
	 .field = FIELD(discard_application_writes),
	 .subcommands = "rollback",
	 .help = "rollback: go on although it drops or empties values\n"
			 "the application wrote (counted first; without it\n"
			 "such a rollback asks on a terminal, refuses off one)"},
	{.name = "on-invalid",
	 .value = CLI_PARSED,
	 .parse = parse_on_invalid,
	 .group = CLI_ON_INVALID,
	 .arg = "stop|regenerate",
	 .help = "convert_to_uuid: stop before writing when a key is not\n"
			 "a UUID (default), or give each such key a new random\n"
			 "uuid that every referencing row follows"},
	{.name = "jobs",
	 .short_name = 'j',
	 .value = CLI_INT,
	 .field = FIELD(jobs),
	 .min = 1,
	 .max = CLI_MAX_JOBS,
	 .group = CLI_JOBS,
	 .subcommands = "apply check rollback",
	 .arg = "N",
	 .help = "work on N connections at once (default: 1): phase2\n"
			 "apply fills the job's tables and key ranges of a large\n"
			 "table; phase3 check and apply read, build indexes and\n"
			 "validate constraints one table per connection, largest\n"
			 "first (the swap and SET NOT NULL stay on the run's own\n"
			 "connection); rollback restores in key ranges"},
	{.name = "batch-size",
	 .value = CLI_INT,
	 .field = FIELD(batch_size),
	 .min = 1,
	 .max = 1000000,
	 .group = CLI_BATCH,
	 .arg = "N",
	 .help = "rows of the first batch of a fill or of a rollback's\n"
			 "restores (default: the plan's, 1000); given without\n"
			 "--target-batch-ms, of every batch"},
	{.name = "target-batch-ms",
	 .value = CLI_INT,
	 .field = FIELD(target_batch_ms),
	 .min = 10,
	 .max = 600000,
	 .group = CLI_BATCH,
	 .arg = "MS",
	 .help = "adapt the batch size so a batch takes about MS\n"
			 "(default: the plan's, 100)"},
	{.name = "sleep-ms",
	 .value = CLI_INT,
	 .field = FIELD(sleep_ms),
	 .min = 0,
	 .max = 600000,
	 .group = CLI_BATCH,
	 .arg = "MS",
	 .help = "pause between batches (default: 0)"},
	{.name = "max-lag-ms",
	 .value = CLI_INT,
	 .field = FIELD(max_lag_ms),
	 .min = 1,
	 .max = 86400000,
	 .group = CLI_BATCH,
	 .arg = "MS",
	 .help = "pause while a standby's replay lag is over MS (warns\n"
			 "when no standby is connected)"},
	{.name = "lag-query",
	 .value = CLI_TEXT,
	 .field = FIELD(lag_query),
	 .group = CLI_BATCH,
	 .arg = "SQL",
	 .help = "with --max-lag-ms: the lag in ms is what SQL returns\n"
			 "(one row, one number; run read-only before each\n"
			 "batch), e.g. for a logical replica"},
	{.name = "pause",
	 .value = CLI_SWITCH,
	 .field = FIELD(pause),
	 .subcommands = "throttle",
	 .help = "throttle: pause the running run at its next batch\n"
			 "boundary"},
	{.name = "resume",
	 .value = CLI_SWITCH,
	 .field = FIELD(resume),
	 .subcommands = "throttle",
	 .help = "throttle: let a paused run go on"},
	{.name = "next-run",
	 .value = CLI_SWITCH,
	 .field = FIELD(next_run),
	 .subcommands = "throttle",
	 .help = "throttle, when no run is going: set it for the next\n"
			 "run that walks batches, and that run only"},
	{.name = "reset",
	 .value = CLI_SWITCH,
	 .field = FIELD(reset),
	 .subcommands = "throttle",
	 .help = "throttle: clear every setting (a pause too), of the\n"
			 "running run and for the next one"},
	{.name = "lock-timeout",
	 .value = CLI_INT,
	 .field = FIELD(lock_timeout_ms),
	 .min = 10,
	 .max = 600000,
	 .arg = "MS",
	 .help = "lock_timeout of each DDL attempt and batch (default:\n"
			 "the plan's, 1000); attempts are retried with jittered\n"
			 "backoff; while autovacuum runs, DDL waits\n"
			 "deadlock_timeout + 200 ms"},
	{.name = "lock-wait",
	 .value = CLI_INT,
	 .field = FIELD(lock_wait_s),
	 .min = 0,
	 .max = 86400,
	 .arg = "SECONDS",
	 .help = "wait up to SECONDS for the plan's lock when another\n"
			 "session holds it, e.g. a killed run's statement the\n"
			 "server is still ending (default: 10; 0: do not wait)"},
	{.name = "yes",
	 .short_name = 'y',
	 .value = CLI_SWITCH,
	 .field = FIELD(yes),
	 .group = CLI_CONFIRM,
	 .subcommands = "apply finalize",
	 .help = "apply, finalize: go on without asking; needed off a\n"
			 "terminal (on one they say what they drop or swap\n"
			 "and ask on /dev/tty: only the word yes goes on)"},
	{.name = "repack",
	 .value = CLI_SWITCH,
	 .field = FIELD(repack),
	 .group = CLI_CONFIRM,
	 .subcommands = "finalize",
	 .help = "finalize: then compact every table the plan rewrote\n"
			 "with pg_repack, online (ACCESS EXCLUSIVE for moments at\n"
			 "its start and end, each wait cut at 1 s; it never\n"
			 "cancels the application's sessions); sizes before and\n"
			 "after in the log, migration_log and status; refused\n"
			 "(exit 3, nothing changed) without the pg_repack command\n"
			 "or extension; needs a superuser (pg_repack 1.4)"},
	{.name = "repack-create-extension",
	 .value = CLI_SWITCH,
	 .field = FIELD(repack_create_extension),
	 .group = CLI_CONFIRM,
	 .subcommands = "finalize",
	 .help = "with --repack: CREATE EXTENSION pg_repack in the\n"
			 "database when it lacks it (never without this option)"},
	{.name = "json",
	 .value = CLI_SWITCH,
	 .field = FIELD(json),
	 .help = "status, plan and phase3 check output as JSON"},
	{.name = "run",
	 .value = CLI_PARSED,
	 .parse = parse_run,
	 .subcommands = "status",
	 .arg = "RUN_ID",
	 .help = "status: only that run's steps and figures from\n"
			 "migration_log (rows, longest lock hold, retries);\n"
			 "RUN_ID may be its first 8 digits, as shown in\n"
			 "application_name"},
	{.name = "logs-dir",
	 .value = CLI_TEXT,
	 .field = FIELD(logs_dir),
	 .arg = "DIR",
	 .help = "where run logs and reports go (default:\n"
			 "$PHASEMIG_LOGS, else\n"
			 "$XDG_STATE_HOME/phasemig/DATABASE/PLAN, else\n"
			 "~/.local/state/phasemig/DATABASE/PLAN)"},
	{.name = "dry-run",
	 .value = CLI_SWITCH,
	 .field = FIELD(dry_run),
	 .subcommands = "apply rollback finalize",
	 .help = "apply, rollback, finalize: print every statement it\n"
			 "would run, in order, with the lock each takes and\n"
			 "whether it scans or rewrites the table; change nothing\n"
			 "(exit code: the real run's, 3 for a refusal)"},
	{.name = "quiet",
	 .short_name = 'q',
	 .value = CLI_SWITCH,
	 .field = FIELD(quiet),
	 .help = "no progress lines (the run log still has them)"},
	{.name = "log-format",
	 .value = CLI_PARSED,
	 .parse = parse_log_format,
	 .arg = "FORMAT",
	 .help = "text (default) or json: each message one JSON object\n"
			 "per line (time in UTC, level, step, message, figures)"},
	{.name = "hook",
	 .value = CLI_TEXT,
	 .field = FIELD(hook),
	 .arg = "CMD",
	 .help = "run CMD with sh at the start and end of every run, an\n"
			 "event (JSON) on its input; its failure is only logged\n"
			 "(default: $PHASEMIG_HOOK)"},
	{.name = "hook-progress-interval",
	 .value = CLI_PARSED,
	 .parse = parse_minutes,
	 .arg = "MIN",
	 .help = "also a progress event every MIN minutes while a run\n"
			 "walks batches (default: 5; 0: none; a fraction too)"},
	{.name = "version",
	 .short_name = 'V',
	 .value = CLI_VERSION,
	 .help = "output version information, then exit"},
	{.name = "help", .short_name = 'h', .value = CLI_HELP, .shown = "-h, -?, --help", .help = "show this help, then exit"},
	{NULL},
};
