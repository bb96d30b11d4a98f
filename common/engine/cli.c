/*
 * cli.c: getopt_long over the options of all three binaries and those the
 * operations add (OpType.added_option); each binary declares which of the
 * phase-specific ones it accepts.
 */
#include "engine/cli.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conninfo_secrets.h"
#include "core/log.h"
#include "engine/mlog.h"
#include "engine/operation.h"

enum
{
	OPT_PLAN = 256,
	OPT_JSON,
	OPT_LOGS_DIR,
	OPT_LOCK_TIMEOUT,
	OPT_MAPPING,
	OPT_GENERATE_MISSING,
	OPT_BATCH_SIZE,
	OPT_SLEEP_MS,
	OPT_MAX_LAG_MS,
	OPT_TARGET_BATCH_MS,
	OPT_ON_INVALID,
	OPT_LOCK_WAIT,
	OPT_DISCARD_GENERATED,
	OPT_SKIP_INVALID,
	OPT_JOBS,
	OPT_RUN,
	OPT_LOG_FORMAT,
	OPT_HOOK,
	OPT_DRY_RUN,
	OPT_YES,
	OPT_QUIET,
	OPT_PAUSE,
	OPT_RESUME,
	OPT_LAG_QUERY,
	OPT_NEXT_RUN,
	OPT_RESET,
	OPT_HOOK_PROGRESS,
	OPT_DISCARD_APP_WRITES,
	/* the options operations add: OPT_ADDED + their index in added_options */
	OPT_ADDED = 512
};

/* The options the operations of operations() add, each name once (collect_added). */
static const CliOption *added_options[CLI_MAX_ADDED];
static int n_added_options;

/* The options that only switch something on, and the field each sets. */
static const struct
{
	int option;
	size_t offset;
} switches[] = {
	{OPT_JSON, offsetof(Options, json)},
	{OPT_SKIP_INVALID, offsetof(Options, skip_invalid_values)},
	{OPT_GENERATE_MISSING, offsetof(Options, generate_missing)},
	{OPT_DISCARD_GENERATED, offsetof(Options, discard_generated_uids)},
	{OPT_DRY_RUN, offsetof(Options, dry_run)},
	{OPT_YES, offsetof(Options, yes)},
	{'y', offsetof(Options, yes)},
	{OPT_QUIET, offsetof(Options, quiet)},
	{'q', offsetof(Options, quiet)},
	{OPT_PAUSE, offsetof(Options, pause)},
	{OPT_RESUME, offsetof(Options, resume)},
	{OPT_NEXT_RUN, offsetof(Options, next_run)},
	{OPT_RESET, offsetof(Options, reset)},
	{OPT_DISCARD_APP_WRITES, offsetof(Options, discard_application_writes)},
};

/* A usage error quoting ARG, with any connection string in it masked (conninfo_secrets.h). */
static _Noreturn void
usage_error(const char *fmt, const char *arg)
{
	char *shown = secrets_mask_arg(arg);

	fprintf(stderr, "%s: error: ", log_progname());
	fprintf(stderr, fmt, shown);
	free(shown);
	fprintf(stderr, "\nTry \"%s --help\" for more information.\n", log_progname());
	exit(EXIT_BAD_INPUT);
}

static int
parse_int(const char *arg, const char *name, int min, int max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || v < min || v > max)
	{
		char *shown = secrets_mask_arg(arg);

		fprintf(stderr,
				"%s: error: %s must be an integer from %d to %d, not \"%s\"\n"
				"Try \"%s --help\" for more information.\n",
				log_progname(), name, min, max, shown, log_progname());
		free(shown);
		exit(EXIT_BAD_INPUT);
	}
	return (int) v;
}

static bool
allowed(const CliSpec *spec, unsigned what)
{
	return (spec->extra & what) != 0;
}

static const struct option long_options[] = {
	{"plan", required_argument, NULL, OPT_PLAN},
	{"dbname", required_argument, NULL, 'd'},
	{"json", no_argument, NULL, OPT_JSON},
	{"logs-dir", required_argument, NULL, OPT_LOGS_DIR},
	{"lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT},
	{"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
	{"mapping", required_argument, NULL, OPT_MAPPING},
	{"generate-missing", no_argument, NULL, OPT_GENERATE_MISSING},
	{"skip-invalid-values", no_argument, NULL, OPT_SKIP_INVALID},
	{"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
	{"sleep-ms", required_argument, NULL, OPT_SLEEP_MS},
	{"max-lag-ms", required_argument, NULL, OPT_MAX_LAG_MS},
	{"target-batch-ms", required_argument, NULL, OPT_TARGET_BATCH_MS},
	{"on-invalid", required_argument, NULL, OPT_ON_INVALID},
	{"discard-generated-uids", no_argument, NULL, OPT_DISCARD_GENERATED},
	{"jobs", required_argument, NULL, OPT_JOBS},
	{"run", required_argument, NULL, OPT_RUN},
	{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
	{"hook", required_argument, NULL, OPT_HOOK},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"yes", no_argument, NULL, OPT_YES},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"pause", no_argument, NULL, OPT_PAUSE},
	{"resume", no_argument, NULL, OPT_RESUME},
	{"lag-query", required_argument, NULL, OPT_LAG_QUERY},
	{"next-run", no_argument, NULL, OPT_NEXT_RUN},
	{"reset", no_argument, NULL, OPT_RESET},
	{"hook-progress-interval", required_argument, NULL, OPT_HOOK_PROGRESS},
	{"discard-application-writes", no_argument, NULL, OPT_DISCARD_APP_WRITES},
	{"help", no_argument, NULL, '?'},
	{"version", no_argument, NULL, 'V'},
};
#define N_LONG_OPTIONS (sizeof long_options / sizeof long_options[0])

/*
 * The options the operations add, from each OpType's added_option (the
 * identity providers' of backfill_from_mapping), the first of a name kept,
 * then getopt_long's table ALL: the built-in options, those, and the
 * terminating row.
 */
static void
collect_added(struct option *all)
{
	const OpType *const *types = operations();

	n_added_options = 0;
	for (int i = 0; types[i]; i++)
		for (int k = 0; types[i]->added_option && types[i]->added_option(k); k++)
		{
			const CliOption *o = types[i]->added_option(k);
			bool known = false;

			for (int j = 0; j < n_added_options; j++)
				known = known || strcmp(added_options[j]->name, o->name) == 0;
			if (!known && n_added_options < CLI_MAX_ADDED)
				added_options[n_added_options++] = o;
		}
	memcpy(all, long_options, sizeof long_options);
	for (int j = 0; j < n_added_options; j++)
		all[N_LONG_OPTIONS + j] = (struct option){
			added_options[j]->name, added_options[j]->has_arg ? required_argument : no_argument, NULL, OPT_ADDED + j};
	all[N_LONG_OPTIONS + n_added_options] = (struct option){NULL, 0, NULL, 0};
}

/* The added option getopt_long returned as C, or NULL for a built-in one. */
static const CliOption *
added_option(int c)
{
	return c >= OPT_ADDED && c < OPT_ADDED + n_added_options ? added_options[c - OPT_ADDED] : NULL;
}

const char *
cli_added(const Options *opts, const char *name)
{
	for (int i = 0; i < opts->n_added; i++)
		if (strcmp(opts->added[i].option->name, name) == 0)
			return opts->added[i].value;
	return NULL;
}

/* SPEC's help, with the help of the added options it accepts where it has CLI_HELP_ADDED_OPTIONS. */
static void
print_help(const CliSpec *spec)
{
	const char *text = spec->help;
	const char *mark;

	while ((mark = strstr(text, CLI_HELP_ADDED_OPTIONS)) != NULL)
	{
		fwrite(text, 1, (size_t) (mark - text), stdout);
		for (int j = 0; j < n_added_options; j++)
			if (allowed(spec, added_options[j]->group))
				fputs(added_options[j]->help, stdout);
		text = mark + strlen(CLI_HELP_ADDED_OPTIONS);
	}
	fputs(text, stdout);
}

/* The group of CliSpec.extra an option belongs to, or 0 for the options every binary takes. */
static unsigned
option_group(int c)
{
	if (added_option(c))
		return added_option(c)->group;
	switch (c)
	{
		case OPT_MAPPING:
		case OPT_GENERATE_MISSING:
		case OPT_SKIP_INVALID:
			return CLI_MAPPING;
		case OPT_BATCH_SIZE:
		case OPT_SLEEP_MS:
		case OPT_MAX_LAG_MS:
		case OPT_LAG_QUERY:
		case OPT_TARGET_BATCH_MS:
			return CLI_BATCH;
		case OPT_ON_INVALID:
			return CLI_ON_INVALID;
		case OPT_DISCARD_GENERATED:
			return CLI_DISCARD_GENERATED;
		case 'j':
		case OPT_JOBS:
			return CLI_JOBS;
		case 'y':
		case OPT_YES:
			return CLI_CONFIRM;
		default:
			return 0;
	}
}

/* --help, -?, or a getopt error: help on stdout, or a usage error naming the option. */
static _Noreturn void
help_or_usage_error(const CliSpec *spec, char **argv)
{
	if (optopt == 0 && strcmp(argv[optind - 1], "--help") != 0 && strcmp(argv[optind - 1], "-?") != 0)
		usage_error("unrecognized option \"%s\"", argv[optind - 1]);
	if (optopt != 0 && optopt != '?')
		usage_error("invalid or incomplete option \"%s\"", argv[optind - 1]);
	print_help(spec);
	exit(EXIT_DONE);
}

/* An added option's value in OPTS: its last one ("" for a switch). */
static void
set_added(const CliOption *o, const char *arg, Options *opts)
{
	int i = 0;

	while (i < opts->n_added && opts->added[i].option != o)
		i++;
	opts->added[i].option = o;
	opts->added[i].value = o->has_arg ? arg : "";
	if (i == opts->n_added)
		opts->n_added++;
}

/* Store option C's value (ARG) in OPTS: a switch, an added option, or one arm per option with a value. */
static void
set_option(int c, const char *arg, Options *opts)
{
	if (added_option(c))
	{
		set_added(added_option(c), arg, opts);
		return;
	}
	for (size_t i = 0; i < sizeof switches / sizeof switches[0]; i++)
		if (switches[i].option == c)
		{
			*(bool *) ((char *) opts + switches[i].offset) = true;
			return;
		}
	switch (c)
	{
		case OPT_PLAN:
			opts->plan_path = arg;
			break;
		case 'd':
			opts->dbname = arg;
			break;
		case OPT_LOGS_DIR:
			opts->logs_dir = arg;
			break;
		case OPT_LOCK_TIMEOUT:
			opts->lock_timeout_ms = parse_int(arg, "--lock-timeout", 10, 600000);
			break;
		case OPT_LOCK_WAIT:
			opts->lock_wait_s = parse_int(arg, "--lock-wait", 0, 86400);
			break;
		case OPT_MAPPING:
			opts->mapping = arg;
			break;
		case OPT_BATCH_SIZE:
			opts->batch_size = parse_int(arg, "--batch-size", 1, 1000000);
			break;
		case OPT_SLEEP_MS:
			opts->sleep_ms = parse_int(arg, "--sleep-ms", 0, 600000);
			break;
		case OPT_MAX_LAG_MS:
			opts->max_lag_ms = parse_int(arg, "--max-lag-ms", 1, 86400000);
			break;
		case OPT_TARGET_BATCH_MS:
			opts->target_batch_ms = parse_int(arg, "--target-batch-ms", 10, 600000);
			break;
		case 'j':
		case OPT_JOBS:
			opts->jobs = parse_int(arg, "--jobs", 1, CLI_MAX_JOBS);
			break;
		case OPT_HOOK:
			opts->hook = arg;
			break;
		case OPT_LAG_QUERY:
			opts->lag_query = arg;
			break;
		case OPT_HOOK_PROGRESS:
		{
			char *end;

			opts->hook_progress_min = strtod(arg, &end);
			if (*arg == '\0' || *end != '\0' || !(opts->hook_progress_min >= 0 && opts->hook_progress_min <= 1440))
				usage_error("--hook-progress-interval must be a number of minutes from 0 to 1440, not \"%s\"", arg);
			break;
		}
		case OPT_LOG_FORMAT:
			if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0)
				usage_error("--log-format must be \"text\" or \"json\", not \"%s\"", arg);
			opts->log_json = strcmp(arg, "json") == 0;
			log_set_json(opts->log_json);
			break;
		case OPT_RUN:
			/* the whole id, or its first 8 (or more) digits as application_name shows them */
			if (strlen(arg) < 8 || strlen(arg) > 36 || strspn(arg, "0123456789abcdefABCDEF-") != strlen(arg))
				usage_error("--run must be a run id (a uuid, or its first 8 digits), not \"%s\"", arg);
			opts->run_id = arg;
			break;
		case OPT_ON_INVALID:
			if (strcmp(arg, "regenerate") == 0)
				opts->regenerate_invalid = true;
			else if (strcmp(arg, "stop") != 0)
				usage_error("--on-invalid must be \"stop\" or \"regenerate\", not \"%s\"", arg);
			break;
		case 'V':
			printf("%s (phasemig) %s\n", log_progname(), PHASEMIG_VERSION);
			exit(EXIT_DONE);
		default:
			usage_error("invalid option \"%s\"", arg);
	}
}

static bool
changes_database(const char *subcommand)
{
	return strcmp(subcommand, "apply") == 0 || strcmp(subcommand, "rollback") == 0
		|| strcmp(subcommand, "finalize") == 0;
}

/* After the options: the subcommand, and the options only some subcommands take. */
static void
read_subcommand(int argc, char **argv, const CliSpec *spec, Options *opts)
{
	bool known = false;

	if (optind >= argc)
		usage_error("%s", "no subcommand given");
	opts->subcommand = argv[optind++];
	for (int i = 0; spec->subcommands[i]; i++)
		if (strcmp(spec->subcommands[i], opts->subcommand) == 0)
			known = true;
	if (!known)
		usage_error("unknown subcommand \"%s\"", opts->subcommand);
	if (opts->discard_generated_uids && strcmp(opts->subcommand, "rollback") != 0)
		usage_error("%s", "option \"--discard-generated-uids\" is accepted by rollback only");
	if (opts->discard_application_writes && strcmp(opts->subcommand, "rollback") != 0)
		usage_error("%s", "option \"--discard-application-writes\" is accepted by rollback only");
	if (opts->jobs > 1 && strcmp(opts->subcommand, "apply") != 0)
		usage_error("%s", "option \"--jobs\" is accepted by apply only");
	if (opts->skip_invalid_values && strcmp(opts->subcommand, "apply") != 0)
		usage_error("%s", "option \"--skip-invalid-values\" is accepted by apply only");
	if (opts->run_id && strcmp(opts->subcommand, "status") != 0)
		usage_error("%s", "option \"--run\" is accepted by status only");
	if (opts->dry_run && !changes_database(opts->subcommand))
		usage_error("%s", "option \"--dry-run\" is accepted by apply, rollback and finalize only");
	if (opts->yes && strcmp(opts->subcommand, "apply") != 0 && strcmp(opts->subcommand, "finalize") != 0)
		usage_error("%s", "option \"--yes\" is accepted by apply and finalize only");
	if ((opts->pause || opts->resume) && strcmp(opts->subcommand, "throttle") != 0)
		usage_error("%s", "options \"--pause\" and \"--resume\" are accepted by throttle only");
	if (opts->lag_query && opts->max_lag_ms == 0)
		usage_error("%s", "option \"--lag-query\" needs --max-lag-ms, the lag to pause at");
	if (opts->pause && opts->resume)
		usage_error("%s", "options \"--pause\" and \"--resume\" cannot be given together");
	if ((opts->next_run || opts->reset) && strcmp(opts->subcommand, "throttle") != 0)
		usage_error("%s", "options \"--next-run\" and \"--reset\" are accepted by throttle only");
	if (opts->reset && (opts->pause || opts->resume || opts->next_run || opts->sleep_ms >= 0 || opts->batch_size > 0))
		usage_error("%s", "option \"--reset\" clears every setting: give it alone");
	if (optind < argc)
		usage_error("too many command-line arguments (first is \"%s\")", argv[optind]);
	if (opts->plan_path == NULL)
		usage_error("%s", "no plan given: use --plan FILE");
}

void
cli_parse(int argc, char **argv, const CliSpec *spec, Options *opts)
{
	struct option all[N_LONG_OPTIONS + CLI_MAX_ADDED + 1];
	int c;
	int longindex = -1;

	log_init(argv[0]);
	collect_added(all);
	*opts = (Options){.lock_wait_s = 10, .jobs = 1, .sleep_ms = -1, .hook_progress_min = 5};
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-?") == 0))
	{
		print_help(spec);
		exit(EXIT_DONE);
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:j:qyhV?", all, &longindex)) != -1)
	{
		/* the option as named, not its value ("--jobs 2": argv[optind - 1] is "2") */
		char named[64];

		if (longindex >= 0)
			snprintf(named, sizeof named, "--%s", all[longindex].name);
		else
			snprintf(named, sizeof named, "-%c", c);
		longindex = -1;
		if (c == 'h')
		{
			print_help(spec);
			exit(EXIT_DONE);
		}
		if (c == '?')
			help_or_usage_error(spec, argv);
		if (option_group(c) != 0 && !allowed(spec, option_group(c)))
			usage_error("option \"%s\" is not accepted here", named);
		if (option_group(c) != 0 && !(opts->groups_given & option_group(c)))
			snprintf(opts->group_named[__builtin_ctz(option_group(c))], sizeof opts->group_named[0], "%s", named);
		opts->groups_given |= option_group(c);
		set_option(c, c == 'V' ? NULL : optarg ? optarg : argv[optind - 1], opts);
	}
	read_subcommand(argc, argv, spec, opts);
	log_set_progress_quiet(opts->quiet);
}
