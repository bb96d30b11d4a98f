/*
 * cli.h: the command line every phase binary shares, declared as tables: a
 * binary's subcommands (PhaseBinary) and its options (CliOption rows); one
 * options struct, one getopt_long parser and one --help built from them,
 * usage errors that exit 2 with a pointer to --help.
 */
#ifndef PHASEMIG_CLI_H
#define PHASEMIG_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/stop.h"

enum
{
	CLI_MAPPING = 1 << 0,           /* --mapping, --generate-missing, --skip-invalid-values, a provider's options */
	CLI_BATCH = 1 << 1,             /* --batch-size, --sleep-ms, --max-lag-ms, --lag-query, --target-batch-ms */
	CLI_ON_INVALID = 1 << 2,        /* --on-invalid=stop|regenerate */
	CLI_DISCARD_GENERATED = 1 << 3, /* --discard-generated-uids (rollback only) */
	CLI_JOBS = 1 << 4,              /* -j, --jobs (apply, phase3 check, rollback) */
	CLI_CONFIRM = 1 << 5,           /* -y, --yes (phase3: what drops or swaps asks first) */
};

typedef struct Options Options;
struct Run;

/* How an option's value is kept in Options (CliOption.value). */
typedef enum CliValue
{
	CLI_NAMED = 0, /* in Options.added, by name (cli_added()): the options operations add */
	CLI_SWITCH,    /* a bool at .field, set when given */
	CLI_INT,       /* an int at .field, from .min to .max */
	CLI_TEXT,      /* the text as given, at .field (const char *) */
	CLI_PARSED,    /* .parse reads and stores it */
	CLI_HELP,      /* print --help, exit 0 */
	CLI_VERSION,   /* print the version, exit 0 */
} CliValue;

/*
 * One option of the command line, declared once: its names, where its value
 * goes, which binaries (group) and subcommands take it, and its --help.  The
 * built-in ones are the rows of the binaries' table (PhaseBinary.options:
 * phases/options.c); an operation
 * adds its own the same way (OpType.added_option, CLI_NAMED), read with
 * cli_added().  A new option is one row, plus the code that reads it.
 */
typedef struct CliOption
{
	const char *name; /* the long name, without "--" */
	char short_name;  /* -X, or 0 */
	CliValue value;
	size_t field; /* CLI_SWITCH, CLI_INT, CLI_TEXT: offsetof(Options, ...) */
	int min, max; /* CLI_INT: the values accepted */
	/* CLI_PARSED: store ARG in OPTS; NULL, or a usage error's format (ARG is its %s) */
	const char *(*parse)(const char *arg, Options *opts);
	bool has_arg;            /* CLI_NAMED: takes a value (--name=VALUE) */
	const char *file;        /* CLI_NAMED: a file read whole, checked before connecting: what it is; NULL: no file */
	unsigned group;          /* the CLI_* group a binary must accept (PhaseBinary.groups); 0: every binary's */
	const char *subcommands; /* the subcommands that take it, space-separated ("apply rollback"); NULL: all */
	const char *arg;         /* its value in --help: "N" shows "--batch-size=N"; NULL: a switch */
	const char *shown;       /* --help's left column when not built from the names ("-h, -?, --help") */
	const char *help;        /* what it does, for --help: lines separated by \n, no indentation */
} CliOption;

/* The most options the operations may add, all of them together (cli_parse knows no more). */
#define CLI_MAX_ADDED 8

struct Options
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
	bool repack;                  /* phase3 finalize: then pg_repack every table the plan rewrote */
	bool repack_create_extension; /* with --repack: CREATE EXTENSION pg_repack when missing */
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
};

/* --jobs's ceiling: each job is a connection (and max_connections is shared). */
#define CLI_MAX_JOBS STOP_MAX_WATCHED

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

/* The flags of a subcommand (Subcommand.flags). */
enum
{
	SUB_OFFLINE = 1 << 0,   /* reads no database (plan): its handler gets no Run */
	SUB_LOCKLESS = 1 << 1,  /* runs beside a run of the plan (status, throttle): no lock, no run log, no hook */
	SUB_ANY_ORDER = 1 << 2, /* runs whatever state the phases are in (status): phase_in_order is not asked */
	/* the apply sequence's steps only some phases have (subcommands.c, subcommand_apply) */
	SUB_CREATE_STATE = 1 << 3, /* phase1: check rights and catalog, create migration_log and migration_backup */
	SUB_PREFLIGHT = 1 << 4,    /* phase3: the pre-flight checks, refusing before any change */
	SUB_CONFIRM = 1 << 5,      /* phase3: say what it drops or swaps and ask first (--yes answers) */
};

/* A subcommand of a phase binary: one row of its table (PhaseBinary.subcommands). */
typedef struct Subcommand
{
	const char *name;
	/* its steps (subcommands.h has those the binaries share); RUN is NULL for SUB_OFFLINE */
	int (*run)(struct Run *run, const Options *opts);
	unsigned flags;    /* SUB_* */
	const char *usage; /* its lines of --help's usage after "phaseN ", separated by \n */
	const char *help;  /* what it does, under "Subcommands:": lines separated by \n, no indentation */
} Subcommand;

/* A phase binary, declared as data: its main() is operations_use() and run_main() of this. */
typedef struct PhaseBinary
{
	int phase;
	const char *summary;           /* --help's first line */
	const Subcommand *subcommands; /* {NULL}-terminated, in --help's order */
	const CliOption *options;      /* every option, {NULL}-terminated, in --help's order */
	unsigned groups;               /* the CLI_* option groups it takes */
	const char *help_tail;         /* --help after the options: files it writes, environment, exit status */
} PhaseBinary;

/*
 * Parse argv into opts against BINARY's subcommands and option groups, the
 * options every operation of operations() adds among them; prints
 * --help/--version and exits 0, bad usage exits 2.
 */
void cli_parse(int argc, char **argv, const PhaseBinary *binary, Options *opts);
/* The value an added option (CliOption) NAME was given ("" for a switch), or NULL when it was not. */
const char *cli_added(const Options *opts, const char *name);
/* The options the operations add, each name once, in operations() order; N: how many (cli.c). */
const CliOption *const *cli_added_options(int *n);
/* Whether the space-separated list SUBCOMMANDS (NULL: all) has NAME. */
bool cli_takes(const char *subcommands, const char *name);
/* BINARY's --help on stdout: summary, usage, subcommands, the options it takes, its tail (cli_help.c). */
void cli_print_help(const PhaseBinary *binary);

#endif
