/*
 * cli_help.c: a phase binary's --help, built from its tables: the summary,
 * a usage line per subcommand's form, what each subcommand does, the
 * options it takes (its groups, its subcommands) in the table's order with
 * those the operations add after their group's, then the binary's tail.
 * help2man turns it into the man page (Makefile), so the layout is
 * GNU's: options in a left column, what they do from column 27.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "engine/cli.h"

/* Where the text of an option's help starts, and of a subcommand's. */
#define OPTION_COLUMN 27
#define SUBCOMMAND_COLUMN 17

/* TEXT's lines, the first after what is already printed, the others indented by INDENT. */
static void
print_lines(const char *text, int indent)
{
	for (const char *p = text; *p; p++)
	{
		putchar(*p);
		if (*p == '\n')
			printf("%*s", indent, "");
	}
	putchar('\n');
}

/* Whether BINARY has a subcommand that takes option O. */
static bool
taken_by(const PhaseBinary *binary, const CliOption *o)
{
	if (o->group != 0 && !(binary->groups & o->group))
		return false;
	for (const Subcommand *sub = binary->subcommands; sub->name; sub++)
		if (cli_takes(o->subcommands, sub->name))
			return true;
	return false;
}

/* One option: its names, then what it does from OPTION_COLUMN (on the next line when the names reach it). */
static void
print_option(const CliOption *o)
{
	char left[128];
	int n;

	if (o->shown)
		n = snprintf(left, sizeof left, "  %s", o->shown);
	else if (o->short_name)
		n = snprintf(left, sizeof left, "  -%c, --%s%s%s", o->short_name, o->name, o->arg ? "=" : "",
					 o->arg ? o->arg : "");
	else
		n = snprintf(left, sizeof left, "      --%s%s%s", o->name, o->arg ? "=" : "", o->arg ? o->arg : "");
	if (n < OPTION_COLUMN)
		printf("%-*s", OPTION_COLUMN, left);
	else
		printf("%s\n%*s", left, OPTION_COLUMN, "");
	print_lines(o->help, OPTION_COLUMN);
}

static void
print_usage(const PhaseBinary *binary)
{
	bool first = true;

	for (const Subcommand *sub = binary->subcommands; sub->name; sub++)
		for (const char *line = sub->usage; line && *line;)
		{
			size_t len = strcspn(line, "\n");

			printf("%s%s %.*s\n", first ? "Usage: " : "  or:  ", log_progname(), (int) len, line);
			first = false;
			line += len + (line[len] == '\n');
		}
}

void
cli_print_help(const PhaseBinary *binary)
{
	const CliOption *rows = binary->options;
	int n_added;
	const CliOption *const *added = cli_added_options(&n_added);

	printf("%s\n\n", binary->summary);
	print_usage(binary);
	printf("\nSubcommands:\n");
	for (const Subcommand *sub = binary->subcommands; sub->name; sub++)
	{
		printf("  %-*s", SUBCOMMAND_COLUMN - 2, sub->name);
		print_lines(sub->help, SUBCOMMAND_COLUMN);
	}
	printf("\nOptions:\n");
	for (int i = 0; rows[i].name; i++)
	{
		if (taken_by(binary, &rows[i]))
			print_option(&rows[i]);
		/* after the last row of a group, the options the operations add to it */
		if (rows[i].group != 0 && rows[i + 1].group != rows[i].group)
			for (int j = 0; j < n_added; j++)
				if (added[j]->group == rows[i].group && taken_by(binary, added[j]))
					print_option(added[j]);
	}
	printf("\n%s", binary->help_tail);
}
