/*
 * cli.h: the command line every phase binary shares: one options struct, one
 * getopt_long parser, usage errors that exit 2 with a pointer to --help.
 */
#ifndef PHASEMIG_CLI_H
#define PHASEMIG_CLI_H

#include <stdbool.h>

#include "core/stop.h"

enum
{
	CLI_MAPPING = 1 << 0,           /* --mapping, --generate-missing, --skip-invalid-values, a provider's options */
	CLI_BATCH = 1 << 1,             /* --batch-size, --sleep-ms, --max-lag-ms, --lag-query, --target-batch-ms */
	CLI_ON_INVALID = 1 << 2,        /* --on-invalid=stop|regenerate */
	CLI_DISCARD_GENERATED = 1 << 3, /* --discard-generated-uids (rollback only) */
	CLI_JOBS = 1 << 4,              /* -j, --jobs (apply only) */
	CLI_CONFIRM = 1 << 5,           /* -y, --yes (phase3: what drops or swaps asks first) */
};

/*
 * An option an operation adds to the command line (OpType.added_option):
 * declared there, parsed here as the built-in ones.  A binary whose CliSpec
 * lacks its group refuses it; its help lines are printed where the binary's
 * help has CLI_HELP_ADDED_OPTIONS.
 */
typedef struct CliOption
{
	const char *name; /* the long name, without "--" */
	bool has_arg;     /* takes a value: --name=VALUE */
	unsigned group;   /* one CLI_* group */
	const char *file; /* a file read whole, checked before connecting: what it is, in messages; NULL: no file */
	const char *help; /* its lines of --help */
} CliOption;

/* The most options the operations may add, all of them together (cli_parse knows no more). */
#define CLI_MAX_ADDED 8

typedef struct Options
{
	const char *subcommand;
	const char *plan_path;
	const char *dbname;
	const char *logs_dir;
	bool json;
	const char *run_id;  /* status --run: one run's steps */
	int lock_timeout_ms; /* 0: the plan's setting */
	int lock_wait_s;     /* how long to wait for the plan's lock (default 10) */
	const char *mapping;
	bool generate_missing;
	bool skip_invalid_values; /* phase2 apply: export values that do not fit are left NULL and listed */
	int batch_size;           /* 0: the plan's setting */
	int sleep_ms;
	int max_lag_ms;              /* 0: do not watch standbys */
	const char *lag_query;       /* --lag-query: the lag in ms, instead of the standbys' replay lag */
	int target_batch_ms;         /* 0: fixed batch size */
	bool regenerate_invalid;     /* --on-invalid=regenerate */
	bool log_json;               /* --log-format=json */
	const char *hook;            /* --hook CMD (else $PHASEMIG_HOOK) */
	unsigned groups_given;       /* the option groups (CLI_*) the command line used */
	char group_named[6][64];     /* per group bit, its first option as written ("--mapping") */
	bool discard_generated_uids; /* rollback: forget the generated uids */
	int jobs;                    /* connections filling at once (default 1) */
	bool dry_run;                /* print the statements and what they would do; change nothing */
	bool yes;                    /* phase3: do not ask before dropping or swapping */
	bool quiet;                  /* no progress lines */
	bool pause, resume;          /* phase2 throttle */
	bool next_run;               /* phase2 throttle: for the next run, none going */
	bool reset;                  /* phase2 throttle: clear every setting */
	double hook_progress_min;    /* --hook-progress-interval: minutes between progress events, 0: none */
	/* rollback: go on although it discards values the application wrote */
	bool discard_application_writes;
	/* the options operations add (CliOption) the command line gave, each once: its last value ("" for a switch) */
	struct
	{
		const CliOption *option;
		const char *value;
	} added[CLI_MAX_ADDED];
	int n_added;
} Options;

/* --jobs's ceiling: each job is a connection (and max_connections is shared). */
#define CLI_MAX_JOBS STOP_MAX_WATCHED

/*
 * Lines of --help every binary shares; those that describe what the
 * operations read are the binaries' own (phases/help.h).
 */
#define CLI_HELP_LOCK_WAIT                                                                                             \
	"      --lock-wait=SECONDS  wait up to SECONDS for the plan's lock when another\n"                                 \
	"                           session holds it, e.g. a killed run's statement the\n"                                 \
	"                           server is still ending (default: 10; 0: do not wait)\n"
#define CLI_HELP_DISCARD_APP_WRITES                                                                                    \
	"      --discard-application-writes\n"                                                                             \
	"                           rollback: go on although it drops or empties values\n"                                 \
	"                           the application wrote (counted first; without it\n"                                    \
	"                           such a rollback asks on a terminal, refuses off one)\n"
#define CLI_HELP_PLAN_RUN                                                                                              \
	"      --run=RUN_ID         status: only that run's steps and figures from\n"                                      \
	"                           migration_log (rows, longest lock hold, retries);\n"                                     \
	"                           RUN_ID may be its first 8 digits, as shown in\n"                                        \
	"                           application_name\n"
/* The exit codes; REFUSED is the binary's own line for code 3. */
/* --dry-run and --quiet, every binary's. */
#define CLI_HELP_RUN_CONTROL                                                                                           \
	"      --dry-run            apply, rollback, finalize: print every statement it\n"                                 \
	"                           would run, in order, with the lock each takes and\n"                                   \
	"                           whether it scans or rewrites the table; change nothing\n"                              \
	"                           (exit code: the real run's, 3 for a refusal)\n"                                        \
	"  -q, --quiet              no progress lines (the run log still has them)\n"
#define CLI_HELP_HOOK                                                                                                  \
	"      --hook=CMD           run CMD with sh at the start and end of every run, an\n"                               \
	"                           event (JSON) on its input; its failure is only logged\n"                               \
	"                           (default: $PHASEMIG_HOOK)\n"                                                           \
	"      --hook-progress-interval=MIN\n"                                                                             \
	"                           also a progress event every MIN minutes while a run\n"                                 \
	"                           walks batches (default: 5; 0: none; a fraction too)\n"

#define CLI_HELP_LOG_FORMAT                                                                                            \
	"      --log-format=FORMAT  text (default) or json: each message one JSON object\n"                                \
	"                           per line (time in UTC, level, step, message, figures)\n"

/*
 * REFUSED: what exit 3 means for this binary, as the text after "  3    ",
 * its continuation lines indented by 7 (help2man makes each code a tagged
 * paragraph; the Makefile makes "Exit status:" the page's EXIT STATUS).
 */
#define CLI_HELP_EXIT_STATUS(refused)                                                                                  \
	"Exit status:\n"                                                                                                   \
	"  0    done\n"                                                                                                    \
	"  1    failed or interrupted (a statement failed, the connection was lost or\n"                                   \
	"       the database could not be reached, SIGINT/SIGTERM): run the same\n"                                        \
	"       command again to continue where it stopped\n"                                                              \
	"  2    bad usage or bad input, or a command run before its phase can run\n"                                       \
	"       (or after): nothing changed; the message says what to run first\n"                                         \
	"  3    " refused "\n"                                                                                             \
	"       also: migration_log or migration_backup holds an object phasemig did\n"                                    \
	"       not make (a trigger, another owner...): nothing is used or changed;\n"                                     \
	"       a trigger on a table the plan writes runs a function another role\n"                                       \
	"       than the table's owner owns, and the plan's trusted_triggers omit it\n"                                    \
	"  4    another run held the plan's lock for all of --lock-wait\n"

/*
 * Where a binary's help lists the options operations add (CliOption.help)
 * of the groups it accepts: a byte no help text holds otherwise.
 */
#define CLI_HELP_ADDED_OPTIONS "\x1d"

typedef struct CliSpec
{
	const char *const *subcommands; /* NULL-terminated */
	const char *help;               /* printed by --help */
	unsigned extra;                 /* CLI_* options this binary accepts */
} CliSpec;

/*
 * Parse argv into opts, the options every operation of operations() adds
 * among them; prints --help/--version and exits 0, bad usage exits 2.
 */
void cli_parse(int argc, char **argv, const CliSpec *spec, Options *opts);
/* The value an added option (CliOption) NAME was given ("" for a switch), or NULL when it was not. */
const char *cli_added(const Options *opts, const char *name);

#endif
