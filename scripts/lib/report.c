/*
 * report.c: bin/rehearse-report, the writer of scripts/rehearse's reports.
 * scripts/rehearse collects facts (durations, comparisons, the load's
 * figures) and each phase's run ("phaseN status --run ID --json"); this
 * program turns them into the JSON report, renders that as Markdown, and
 * prints the summary for stdout.  It reads no database.
 *
 * Usage:
 *   rehearse-report run FACTS [MLOG_JSON]  one phase run's record (JSON)
 *   rehearse-report json FACTS RUNS_JSON   the JSON report
 *   rehearse-report markdown REPORT_JSON   the Markdown report
 *   rehearse-report summary REPORT_JSON    the lines for stdout
 *   rehearse-report short FACTS            the short JSON report (no runs)
 *   rehearse-report short-markdown FACTS   the short Markdown report
 *   rehearse-report fields JSON KEY...     the values of top-level keys of JSON
 *                                          ("-": stdin), each ended by a NUL byte:
 *                                          strings as they are, null as nothing
 * Exit 0; 2 with a message when an input cannot be read.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static int
fail(const char *what, const char *path)
{
	fprintf(stderr, "rehearse-report: cannot %s \"%s\"%s%s\n", what, path, errno ? ": " : "",
			errno ? strerror(errno) : "");
	return 2;
}

json_t *
facts_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	json_t *facts;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do
	{
		if (len + 65536 > cap)
		{
			char *grown = realloc(buf, cap = len + 65536 + cap);

			if (grown == NULL)
				break;
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	if (buf == NULL)
		return NULL;
	facts = json_object();
	for (size_t at = 0; at < len;)
	{
		size_t entry = strnlen(buf + at, len - at);
		char *eq = memchr(buf + at, '=', entry);

		if (eq)
			json_object_setn_new(facts, buf + at, eq - (buf + at), json_stringn(eq + 1, entry - (eq + 1 - (buf + at))));
		at += entry + 1;
	}
	free(buf);
	return facts;
}

const char *
fact(const json_t *facts, const char *key)
{
	const char *v = json_string_value(json_object_get(facts, key));

	return v ? v : "";
}

json_t *
fact_number(const json_t *facts, const char *key)
{
	const char *v = fact(facts, key);
	char *end;

	if (*v == '\0')
		return json_null();
	if (strpbrk(v, ".eE"))
	{
		double d = strtod(v, &end);

		return *end == '\0' && isfinite(d) ? json_real(d) : json_null();
	}
	{
		long long i = strtoll(v, &end, 10);

		return *end == '\0' ? json_integer(i) : json_null();
	}
}

json_t *
fact_bool(const json_t *facts, const char *key)
{
	const char *v = fact(facts, key);

	return json_boolean(strcmp(v, "true") == 0 || strcmp(v, "t") == 0);
}

json_t *
fact_lines(const json_t *facts, const char *key)
{
	const char *v = fact(facts, key);
	json_t *lines = json_array();

	while (*v)
	{
		const char *nl = strchr(v, '\n');
		size_t n = nl ? (size_t) (nl - v) : strlen(v);

		json_array_append_new(lines, json_stringn(v, n));
		if (nl == NULL)
			break;
		v = nl + 1;
		if (*v == '\0') /* "a\n": ["a", ""], as regexp_split_to_table did */
			json_array_append_new(lines, json_string(""));
	}
	return lines;
}

json_t *
fact_string_or_null(const json_t *facts, const char *key)
{
	const char *v = fact(facts, key);

	return *v ? json_string(v) : json_null();
}

double
round_to(double x, int decimals)
{
	double scale = pow(10, decimals);

	return round(x * scale) / scale;
}

const char *
num_text(const json_t *v, int decimals, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, size, "%lld", (long long) json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, size, "%.*f", decimals, round_to(json_real_value(v), decimals)); /* as round() in SQL */
	else
		buf[0] = '\0';
	return buf;
}

/* The summary for stdout: the verdict, a line per run, the reasons. */
static void
print_summary(const json_t *rep)
{
	size_t i;
	json_t *r;

	printf("rehearsal of %s: %s\n", json_string_value(json_object_get(rep, "plan")),
		   json_is_true(json_object_get(rep, "passed")) ? "PASSED" : "FAILED");
	json_array_foreach(json_object_get(rep, "runs"), i, r)
	{
		char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
		const json_t *load = json_object_get(r, "load");
		const json_t *rps = json_object_get(r, "rows_per_second");
		const json_t *lock = json_object_get(r, "ddl_longest_attempt_ms");
		const json_t *failed = json_object_get(load, "failed_transactions");
		const json_t *stall = json_object_get(load, "longest_stall_ms");

		printf("  %-9s %-16s exit %s %9s s", json_string_value(json_object_get(r, "round")),
			   json_string_value(json_object_get(r, "command")),
			   num_text(json_object_get(r, "exit_code"), 0, b1, sizeof b1),
			   num_text(json_object_get(r, "seconds"), 3, b2, sizeof b2));
		if (json_is_number(rps))
			printf(", %s rows/s", num_text(rps, 0, b3, sizeof b3));
		if (json_is_number(lock))
			printf(", longest lock hold %s ms", num_text(lock, 1, b4, sizeof b4));
		if (json_is_number(json_object_get(r, "wal_bytes")))
			printf(", WAL %.1f MB", round_to(json_number_value(json_object_get(r, "wal_bytes")) / 1048576.0, 1));
		if (json_is_number(failed) && json_is_number(stall))
			printf(", load: %s failed, longest stall %s ms", num_text(failed, 0, b5, sizeof b5),
				   num_text(stall, 1, b6, sizeof b6));
		putchar('\n');
	}
	json_array_foreach(json_object_get(rep, "reasons"), i, r) printf("  FAILED: %s\n", json_string_value(r));
}

/* The short report, when the full one cannot be made: the verdict and why, what ran, the files. */
static json_t *
short_report(const json_t *facts)
{
	json_t *rep = json_object();

	json_object_set_new(rep, "plan", json_string(fact(facts, "plan")));
	json_object_set_new(rep, "plan_file", json_string(fact(facts, "plan_file")));
	json_object_set_new(rep, "passed", json_false());
	json_object_set_new(rep, "reasons", fact_lines(facts, "reasons"));
	json_object_set_new(rep, "started_at", json_string(fact(facts, "started_at")));
	json_object_set_new(rep, "finished_at", json_string(fact(facts, "finished_at")));
	json_object_set_new(
		rep, "source", json_pack("{s:s, s:s}", "database", fact(facts, "src_db"), "server", fact(facts, "src_server")));
	json_object_set_new(
		rep, "staging",
		json_pack("{s:s, s:o}", "database", fact(facts, "staging_db"), "kept", fact_bool(facts, "kept")));
	json_object_set_new(rep, "runs_completed", fact_number(facts, "runs_completed"));
	json_object_set_new(rep, "short", json_true());
	json_object_set_new(rep, "files",
						json_pack("{s:s, s:s, s:s, s:s++}", "markdown", fact(facts, "md_file"), "json",
								  fact(facts, "json_file"), "artifacts", fact(facts, "work"), "runs",
								  fact(facts, "work"), "/runs.json"));
	return rep;
}

static void
print_short_markdown(const json_t *facts)
{
	size_t i;
	json_t *r, *reasons = fact_lines(facts, "reasons");
	const char *work = fact(facts, "work");

	printf("# Rehearsal of plan %s: FAILED\n\n", fact(facts, "plan"));
	json_array_foreach(reasons, i, r) printf("- **FAILED**: %s\n", json_string_value(r));
	printf("\nA short report: the full one could not be rendered. %s phase command(s) completed; their\n",
		   fact(facts, "runs_completed"));
	printf("figures are in `%s/runs.json`, their output, the snapshots and the load logs in `%s/`.\n\n", work, work);
	printf("| | |\n|---|---|\n| plan | `%s` |\n| source | database `%s` on `%s` |\n", fact(facts, "plan_file"),
		   fact(facts, "src_db"), fact(facts, "src_server"));
	printf("| staging copy | `%s`, %s |\n", fact(facts, "staging_db"),
		   json_is_true(json_object_get(facts, "kept")) || strcmp(fact(facts, "kept"), "true") == 0
			   ? "kept (--keep)"
			   : "dropped at the end");
	printf("| started, finished | %s, %s |\n", fact(facts, "started_at"), fact(facts, "finished_at"));
	json_decref(reasons);
}

/* fields: values of a JSON object for bash (read -d '' / mapfile -d ''). */
static int
print_fields(int argc, char **argv)
{
	json_error_t err;
	json_t *obj = strcmp(argv[2], "-") == 0 ? json_loadf(stdin, 0, &err) : json_load_file(argv[2], 0, &err);

	if (!json_is_object(obj))
	{
		fprintf(stderr, "rehearse-report: \"%s\": %s\n", argv[2], obj ? "not a JSON object" : err.text);
		json_decref(obj);
		return 2;
	}
	for (int i = 3; i < argc; i++)
	{
		const json_t *v = json_object_get(obj, argv[i]);

		if (json_is_string(v))
			fputs(json_string_value(v), stdout);
		else if (v && !json_is_null(v))
			json_dumpf(v, stdout, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
		putchar('\0');
	}
	json_decref(obj);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
dump(json_t *obj, size_t flags)
{
	int rc = obj && json_dumpf(obj, stdout, flags) == 0 && putchar('\n') != EOF ? 0 : 1;

	json_decref(obj);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 2 ? argv[1] : "";
	json_t *in, *second = NULL;
	json_error_t err;
	int rc;

	errno = 0;
	if (strcmp(cmd, "fields") == 0)
		return print_fields(argc, argv);
	if (strcmp(cmd, "markdown") == 0 || strcmp(cmd, "summary") == 0)
	{
		if ((in = json_load_file(argv[2], 0, &err)) == NULL)
		{
			fprintf(stderr, "rehearse-report: \"%s\": %s (line %d)\n", argv[2], err.text, err.line);
			return 2;
		}
		if (cmd[0] == 'm')
			report_markdown(stdout, in);
		else
			print_summary(in);
		json_decref(in);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (strcmp(cmd, "run") != 0 && strcmp(cmd, "json") != 0 && strncmp(cmd, "short", 5) != 0)
	{
		fprintf(stderr, "usage: rehearse-report run|json|markdown|summary|short|short-markdown|fields FILE [ARG]...\n");
		return 2;
	}
	if ((in = facts_read(argv[2])) == NULL)
		return fail("read the facts", argv[2]);
	if (argc > 3 && (second = json_load_file(argv[3], JSON_DECODE_ANY, &err)) == NULL)
	{
		fprintf(stderr, "rehearse-report: \"%s\": %s (line %d)\n", argv[3], err.text, err.line);
		json_decref(in);
		return 2;
	}
	if (strcmp(cmd, "run") == 0)
		rc = dump(report_run(in, second), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	else if (strcmp(cmd, "json") == 0)
		rc = dump(report_build(in, second), REPORT_DUMP_FLAGS);
	else if (strcmp(cmd, "short") == 0)
		rc = dump(short_report(in), REPORT_DUMP_FLAGS);
	else
	{
		print_short_markdown(in);
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
	json_decref(second);
	json_decref(in);
	return rc;
}
