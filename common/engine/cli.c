/*
 * cli.c: getopt_long over a binary's table of options (PhaseBinary.options)
 * and those the operations add (OpType.added_option): each row says where
 * its value goes, which binaries (group) and which subcommands take it.
 */
#include "engine/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conninfo_secrets.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/mlog.h"
#include "engine/operation.h"

/* getopt_long's value of a long option: its row's index past these bases */
enum
{
	OPT_ROW = 256,   /* + its index in the binary's table */
	OPT_ADDED = 512, /* + its index in added_options */
};

/* The most rows a binary's table may have (cli_parse knows no more). */
#define CLI_MAX_ROWS 64

/* The options the operations of operations() add, each name once (collect_added). */
static const CliOption *added_options[CLI_MAX_ADDED];
static int n_added_options;

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
				"%s: error: --%s must be an integer from %d to %d, not \"%s\"\n"
				"Try \"%s --help\" for more information.\n",
				log_progname(), name, min, max, shown, log_progname());
		free(shown);
		exit(EXIT_BAD_INPUT);
	}
	return (int) v;
}

bool
cli_takes(const char *subcommands, const char *name)
{
	size_t len = strlen(name);

	if (subcommands == NULL)
		return true;
	for (const char *p = subcommands; (p = strstr(p, name)) != NULL; p += len)
		if ((p == subcommands || p[-1] == ' ') && (p[len] == '\0' || p[len] == ' '))
			return true;
	return false;
}

static bool
takes_value(const CliOption *o)
{
	return o->value == CLI_NAMED ? o->has_arg : o->value == CLI_INT || o->value == CLI_TEXT || o->value == CLI_PARSED;
}

/*
 * The options the operations add, from each OpType's added_option (the
 * identity providers' of backfill_from_mapping), the first of a name kept.
 */
static void
collect_added(void)
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
}

const CliOption *const *
cli_added_options(int *n)
{
	*n = n_added_options;
	return added_options;
}

/*
 * getopt_long's tables from ROWS and the added options: ALL (long options,
 * terminated) and SHORTS ("d:j:q...?", -? being --help's other name).
 */
static void
getopt_tables(const CliOption *rows, struct option *all, char *shorts)
{
	int n = 0, k = 0;

	for (int i = 0; rows[i].name; i++, n++)
	{
		all[n] = (struct option){rows[i].name, takes_value(&rows[i]) ? required_argument : no_argument, NULL,
								 OPT_ROW + i};
		if (rows[i].short_name)
		{
			shorts[k++] = rows[i].short_name;
			if (takes_value(&rows[i]))
				shorts[k++] = ':';
		}
	}
	for (int j = 0; j < n_added_options; j++, n++)
		all[n] = (struct option){added_options[j]->name, takes_value(added_options[j]) ? required_argument : no_argument,
								 NULL, OPT_ADDED + j};
	all[n] = (struct option){NULL, 0, NULL, 0};
	shorts[k++] = '?';
	shorts[k] = '\0';
}

/* The row getopt_long returned as C (a long option's value, or a short name), or NULL for '?'. */
static const CliOption *
row_of(const CliOption *rows, int c)
{
	if (c >= OPT_ADDED && c < OPT_ADDED + n_added_options)
		return added_options[c - OPT_ADDED];
	if (c >= OPT_ROW && c < OPT_ADDED)
		return &rows[c - OPT_ROW];
	for (int i = 0; rows[i].name; i++)
		if (rows[i].short_name && rows[i].short_name == c)
			return &rows[i];
	return NULL;
}

const char *
cli_added(const Options *opts, const char *name)
{
	for (int i = 0; i < opts->n_added; i++)
		if (strcmp(opts->added[i].option->name, name) == 0)
			return opts->added[i].value;
	return NULL;
}

/* A getopt error ('?'): --help's -?, or a usage error naming the option. */
static void
help_or_usage_error(const PhaseBinary *binary, char **argv)
{
	if (optopt == 0 && strcmp(argv[optind - 1], "--help") != 0 && strcmp(argv[optind - 1], "-?") != 0)
		usage_error("unrecognized option \"%s\"", argv[optind - 1]);
	if (optopt != 0 && optopt != '?')
		usage_error("invalid or incomplete option \"%s\"", argv[optind - 1]);
	cli_print_help(binary);
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

/* Store row O's value ARG where the row says; --help and --version print and exit. */
static void
set_option(const PhaseBinary *binary, const CliOption *o, const char *arg, Options *opts)
{
	void *field = (char *) opts + o->field;
	const char *error;

	switch (o->value)
	{
		case CLI_NAMED:
			set_added(o, arg, opts);
			break;
		case CLI_SWITCH:
			*(bool *) field = true;
			break;
		case CLI_INT:
			*(int *) field = parse_int(arg, o->name, o->min, o->max);
			break;
		case CLI_TEXT:
			*(const char **) field = arg;
			break;
		case CLI_PARSED:
			if ((error = o->parse(arg, opts)) != NULL)
				usage_error(error, arg);
			break;
		case CLI_HELP:
			cli_print_help(binary);
			exit(EXIT_DONE);
		case CLI_VERSION:
			printf("%s (phasemig) %s\n", log_progname(), PHASEMIG_VERSION);
			exit(EXIT_DONE);
	}
}

/* "a, b and c" of the space-separated list WORDS (malloc'd). */
static char *
words_list(const char *words)
{
	char *out = xcalloc(strlen(words) * 2 + 8, 1);
	const char *last = strrchr(words, ' ');
	char *o = out;

	for (const char *p = words; *p; p++)
		if (*p != ' ')
			*o++ = *p;
		else if (p == last)
			o += sprintf(o, " and ");
		else
			o += sprintf(o, ", ");
	return out;
}

/* Refuse an option GIVEN that the subcommand does not take: "accepted by apply and finalize only". */
static void
check_subcommand(const CliOption *given, const char *subcommand)
{
	char *list, *fmt;

	if (cli_takes(given->subcommands, subcommand))
		return;
	list = words_list(given->subcommands);
	fmt = str_printf("option \"--%s\" is accepted by %s only", given->name, list);
	usage_error("%s", fmt);
}

/* The rules between options, which no single row can say. */
static void
check_together(const Options *opts)
{
	if (opts->lag_query && opts->max_lag_ms == 0)
		usage_error("%s", "option \"--lag-query\" needs --max-lag-ms, the lag to pause at");
	if (opts->pause && opts->resume)
		usage_error("%s", "options \"--pause\" and \"--resume\" cannot be given together");
	if (opts->reset && (opts->pause || opts->resume || opts->next_run || opts->sleep_ms >= 0 || opts->batch_size > 0))
		usage_error("%s", "option \"--reset\" clears every setting: give it alone");
	if (opts->repack_create_extension && !opts->repack)
		usage_error("%s", "option \"--repack-create-extension\" goes with --repack");
}

/* After the options: the subcommand, the options it does not take, and what must be there. */
static void
read_subcommand(int argc, char **argv, const PhaseBinary *binary, const CliOption *const *given, int n_given,
				Options *opts)
{
	bool known = false;

	if (optind >= argc)
		usage_error("%s", "no subcommand given");
	opts->subcommand = argv[optind++];
	for (const Subcommand *sub = binary->subcommands; sub->name; sub++)
		known = known || strcmp(sub->name, opts->subcommand) == 0;
	if (!known)
		usage_error("unknown subcommand \"%s\"", opts->subcommand);
	for (int i = 0; i < n_given; i++)
		check_subcommand(given[i], opts->subcommand);
	check_together(opts);
	if (optind < argc)
		usage_error("too many command-line arguments (first is \"%s\")", argv[optind]);
	if (opts->plan_path == NULL)
		usage_error("%s", "no plan given: use --plan FILE");
}

void
cli_parse(int argc, char **argv, const PhaseBinary *binary, Options *opts)
{
	struct option all[CLI_MAX_ROWS + CLI_MAX_ADDED + 1];
	char shorts[2 * CLI_MAX_ROWS + 2];
	const CliOption *given[CLI_MAX_ROWS + CLI_MAX_ADDED];
	int n_given = 0, n_rows = 0;
	int c;
	int longindex = -1;

	log_init(argv[0]);
	while (binary->options[n_rows].name)
		n_rows++;
	if (n_rows > CLI_MAX_ROWS)
		log_fatal(EXIT_FAILED, "%d options, more than the parser's %d", n_rows, CLI_MAX_ROWS);
	collect_added();
	getopt_tables(binary->options, all, shorts);
	*opts = (Options){.lock_wait_s = 10, .jobs = 1, .sleep_ms = -1, .hook_progress_min = 5};
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-?") == 0))
	{
		cli_print_help(binary);
		exit(EXIT_DONE);
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, all, &longindex)) != -1)
	{
		const CliOption *o = row_of(binary->options, c);
		/* the option as named, not its value ("--jobs 2": argv[optind - 1] is "2") */
		char named[64];
		bool seen = false;

		if (longindex >= 0)
			snprintf(named, sizeof named, "--%s", all[longindex].name);
		else
			snprintf(named, sizeof named, "-%c", c);
		longindex = -1;
		if (o == NULL)
			help_or_usage_error(binary, argv);
		if (o->group != 0 && !(binary->groups & o->group))
			usage_error("option \"%s\" is not accepted here", named);
		if (o->group != 0 && !(opts->groups_given & o->group))
			snprintf(opts->group_named[__builtin_ctz(o->group)], sizeof opts->group_named[0], "%s", named);
		opts->groups_given |= o->group;
		for (int i = 0; i < n_given; i++)
			seen = seen || given[i] == o;
		if (!seen)
			given[n_given++] = o;
		set_option(binary, o, takes_value(o) ? optarg : NULL, opts);
	}
	read_subcommand(argc, argv, binary, given, n_given, opts);
	log_set_progress_quiet(opts->quiet);
}
