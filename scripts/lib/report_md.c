/*
 * report_md.c: the Markdown report of rehearse-report, rendered from the
 * JSON report: the verdict first, then a row per phase command, the WAL and
 * table growth of each, the load against its hold-out, the steps from
 * migration_log, the warnings, the refusals, the estimate and the files.
 */
#include <string.h>

#include "report.h"

#define GET(obj, key) json_object_get((obj), (key))
#define STR(obj, key) json_string_value(GET((obj), (key)))

/* A number (integers as they are, reals with DECIMALS places) or a string; "" for null. */
static const char *
num(const json_t *v, int decimals)
{
	static char buf[16][64];
	static int next;

	next = (next + 1) % 16;
	return num_text(v, decimals, buf[next], sizeof buf[next]);
}

#define NUM(v, decimals) num((v), (decimals))

/* A table cell: "|" escaped; nothing for null. */
static void
cell(FILE *out, const char *s)
{
	for (; s && *s; s++)
		fputs(*s == '|' ? "\\|" : (char[2]){*s, '\0'}, out);
}

/* S with every backquote made a quote (so that it fits between backquotes), "|" escaped. */
static void
code(FILE *out, const char *s)
{
	fputc('`', out);
	for (; s && *s; s++)
		fputs(*s == '|' ? "\\|" : *s == '`' ? "'" : (char[2]){*s, '\0'}, out);
	fputc('`', out);
}

static const char *
yes(const json_t *b)
{
	return json_is_true(b) ? "yes" : "**NO**";
}

/* A value of a finding or a step's metadata as text: strings as they are, JSON else. */
static void
value(FILE *out, const json_t *v)
{
	if (json_is_string(v))
		fputs(json_string_value(v), out);
	else if (v && !json_is_null(v))
		json_dumpf(v, out, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
}

/* The schema differences of a comparison, as fingerprint lines (the first 5). */
static void
diffs(FILE *out, const json_t *c)
{
	const json_t *d = GET(c, "schema_differences");
	size_t i, n = json_array_size(d);

	for (i = 0; i < n && i < 5; i++)
	{
		if (i > 0)
			fputs("; ", out);
		code(out, json_string_value(json_array_get(d, i)));
	}
	if (n > 5)
		fprintf(out, " and %zu more (JSON: schema_differences)", n - 5);
}

/* What the pg_dump --schema-only files of a comparison say (they are kept for a diff). */
static void
dump_verdict(FILE *out, const json_t *c)
{
	const char *how = STR(c, "schema_dump");
	const json_t *files = GET(c, "schema_dump_files");

	if (how && strcmp(how, "equal") == 0)
		fprintf(out, "identical (`%s`, `%s`)", json_string_value(json_array_get(files, 0)),
				json_string_value(json_array_get(files, 1)));
	else if (how && strcmp(how, "column_order") == 0)
		fprintf(out,
				"differ **only in the order of columns** (a column dropped and added back comes back last in its "
				"table; `SELECT *` and an `INSERT` without a column list see the new order): `%s`",
				json_string_value(json_array_get(files, 2)));
	else if (how && strcmp(how, "different") == 0)
		fprintf(out, "**differ** beyond the order of columns: `%s`", json_string_value(json_array_get(files, 2)));
	else
		fputs("not compared", out);
}

/* "the schema differs: ...; these tables differ: a, b" of a comparison that failed. */
static void
differences(FILE *out, const json_t *c)
{
	const json_t *tables = GET(c, "tables_differing");
	bool schema = !json_is_true(GET(c, "schema_equal"));

	if (schema)
	{
		fputs("the schema differs: ", out);
		diffs(out, c);
	}
	for (size_t i = 0; i < json_array_size(tables); i++)
		fprintf(out, "%s%s",
				i > 0        ? ", "
					: schema ? "; these tables differ: "
							 : "these tables differ: ",
				json_string_value(json_array_get(tables, i)));
}

static void
header(FILE *out, const json_t *j)
{
	const json_t *src = GET(j, "source"), *stg = GET(j, "staging"), *in = GET(j, "inputs"), *load = GET(j, "load");
	size_t i;
	json_t *x;

	fprintf(out, "# Rehearsal of plan %s: %s\n", STR(j, "plan"), json_is_true(GET(j, "passed")) ? "PASSED" : "FAILED");
	if (json_array_size(GET(j, "reasons")) > 0)
	{
		fputc('\n', out);
		json_array_foreach(GET(j, "reasons"), i, x) fprintf(out, "- **FAILED**: %s\n", json_string_value(x));
	}
	fputs("\n| | |\n|---|---|\n| plan | `", out);
	cell(out, STR(j, "plan_file"));
	fputs("` |\n| source | database `", out);
	cell(out, STR(src, "database"));
	fputs("` on `", out);
	cell(out, STR(src, "server"));
	fprintf(out, "` (%s); table ", NUM(GET(src, "size"), 0));
	cell(out, STR(src, "table"));
	fprintf(out, ": %s rows (%s) |\n| staging copy | `", NUM(GET(src, "rows"), 0), NUM(GET(src, "rows_from"), 0));
	cell(out, STR(stg, "database"));
	fprintf(out, "`, made with %s in %s s; %s |\n",
			json_is_string(GET(stg, "copy_method")) ? STR(stg, "copy_method") : "(not made)",
			NUM(GET(stg, "copy_seconds"), 3), json_is_true(GET(stg, "kept")) ? "kept (--keep)" : "dropped at the end");
	fputs("| phase2 arguments | ", out);
	if (json_is_string(GET(in, "mapping")) || (json_is_string(GET(in, "phase2_args")) && *STR(in, "phase2_args")))
	{
		fputc('`', out);
		if (json_is_string(GET(in, "mapping")))
		{
			fputs("--mapping ", out);
			cell(out, STR(in, "mapping"));
		}
		if (json_is_string(GET(in, "phase2_args")) && *STR(in, "phase2_args"))
		{
			fputs(json_is_string(GET(in, "mapping")) ? " " : "", out);
			cell(out, STR(in, "phase2_args"));
		}
		fputs("` |\n", out);
	}
	else
		fputs("none |\n", out);
	if (json_is_true(GET(load, "enabled")))
		fprintf(out,
				"| application load | %s pgbench clients during every apply (scripts below); %s rows they created "
				"removed before the comparisons |\n",
				NUM(GET(load, "clients"), 0), NUM(GET(load, "rows_removed_after"), 0));
	else
		fputs("| application load | none (--with-load not given) |\n", out);
	fprintf(out, "| started, finished | %s, %s |\n", STR(j, "started_at"), STR(j, "finished_at"));
}

static void
verdict(FILE *out, const json_t *j)
{
	const json_t *ref = GET(j, "refusal"), *hook = GET(j, "before_rollback"), *rb = GET(j, "rollback"),
				 *ra = GET(j, "reapply"), *load = GET(j, "load");
	static const char same[] = "yes: same schema fingerprint and the same checksum for every table";

	fprintf(out, "## Verdict\n\n| check | result |\n|---|---|\n| the three phases applied | %s |\n",
			yes(GET(j, "applied")));
	fputs("| the mapping, the keys and the pre-flight checks | ", out);
	if (json_is_true(GET(ref, "refused")))
		fprintf(out, "**REFUSED** by %s: %zu problem(s), listed below |\n", STR(ref, "by"),
				json_array_size(GET(ref, "findings")));
	else
		fprintf(out, "%s |\n", json_is_true(GET(j, "applied")) ? "accepted" : "not reached");
	if (json_is_object(hook))
	{
		fputs("| --before-rollback `", out);
		cell(out, STR(hook, "command"));
		fprintf(out, "` | exit %s |\n", NUM(GET(hook, "exit_code"), 0));
	}
	fputs("| rollback 3, 2, 1 gave back the start | ", out);
	if (!json_is_true(GET(rb, "ran")))
		fputs("**FAILED**: a rollback did not complete (see Phases)", out);
	else if (json_is_true(GET(rb, "passed")))
		fputs(same, out);
	else
	{
		fputs("**FAILED**: ", out);
		differences(out, rb);
	}
	fputs(" |\n| applied again, same result as the first time | ", out);
	if (!json_is_true(GET(ra, "ran")))
		fputs("**NO**: not run", out);
	else if (!json_is_true(GET(ra, "passed")))
	{
		fputs("**NO**: ", out);
		differences(out, ra);
	}
	else if (json_integer_value(GET(ra, "generated_values_differing")) > 0)
		fprintf(out,
				"yes: same schema; every table the same except %s uids generated for unmatched rows (random on "
				"each run), equal once those are masked",
				NUM(GET(ra, "generated_values_differing"), 0));
	else
		fputs(same, out);
	fputs(" |\n| pg_dump --schema-only: the start and after the rollback | ", out);
	dump_verdict(out, rb);
	fputs(" |\n| pg_dump --schema-only: the first and the second apply | ", out);
	dump_verdict(out, ra);
	fputs(" |\n| application load: failed transactions | ", out);
	if (json_is_true(GET(load, "enabled")))
	{
		const json_t *a = GET(load, "attributable_failures");

		fprintf(out, "%s",
				json_is_number(GET(load, "failed_transactions")) ? NUM(GET(load, "failed_transactions"), 0) : "0");
		if (json_is_integer(a) && json_integer_value(a) > 0)
			fprintf(out, ", **%s beyond the hold-out** (the same load without phasemig)", NUM(a, 0));
		else if (json_is_integer(a) && json_integer_value(GET(load, "failed_transactions")) > 0)
			fputs(", none beyond the hold-out (the workload's own)", out);
		fprintf(out, " (longest stall %s ms) |\n", NUM(GET(load, "longest_stall_ms"), 1));
	}
	else
		fputs("no load |\n", out);
}

static bool
phases(FILE *out, const json_t *j)
{
	const json_t *runs = GET(j, "runs");
	size_t i;
	json_t *r;
	bool any = false;

	if (json_array_size(runs) == 0)
		return false;
	fputs(
		"## Phases\n\nSeconds are wall-clock. The longest lock hold is phasemig's longest single DDL transaction, "
		"its wait for the lock included (ddl_longest_attempt_ms): the longest the application could have been "
		"blocked. A VALIDATE and the refill of phase2's stored mapping block no writes and are not counted. The "
		"longest stall the load saw is what the application felt; the warnings below say what made a phase wait.\n\n"
		"| round | command | exit | seconds | rows | rows/s | longest lock hold ms | DDL retries | load tx | failed tx "
		"| longest stall ms |\n|---|---|---|---|---|---|---|---|---|---|---|",
		out);
	json_array_foreach(runs, i, r)
	{
		const json_t *load = GET(r, "load");

		fprintf(out, "\n| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", STR(r, "round"), STR(r, "command"),
				NUM(GET(r, "exit_code"), 0), NUM(GET(r, "seconds"), 3), NUM(GET(r, "rows"), 0),
				NUM(GET(r, "rows_per_second"), 0), NUM(GET(r, "ddl_longest_attempt_ms"), 1),
				NUM(GET(r, "ddl_retries"), 0), NUM(GET(load, "transactions"), 0),
				NUM(GET(load, "failed_transactions"), 0), NUM(GET(load, "longest_stall_ms"), 1));
	}
	/* the load scripts, each once, sorted (as string_agg(DISTINCT ...) lists them) */
	{
		const char *done = "";
		bool started = false;

		for (;;)
		{
			const char *next = NULL;

			json_array_foreach(runs, i, r)
			{
				const char *script = STR(GET(r, "load"), "script");

				if (script && strcmp(script, done) > 0 && (next == NULL || strcmp(script, next) < 0))
					next = script;
			}
			if (next == NULL)
				break;
			fprintf(out, "%s`%s`", started ? ", " : "\n\nLoad scripts: ", next);
			started = true;
			done = next;
		}
	}
	json_array_foreach(runs, i, r) if (json_is_string(GET(GET(r, "load"), "error")))
	{
		fprintf(out, "%s- %s: %s", any ? "\n" : "\n\nLoad errors:\n", STR(r, "command"), STR(GET(r, "load"), "error"));
		any = true;
	}
	fputs("\n", out);
	return true;
}

/* BYTES as MB with one decimal; "" for null. */
static const char *
mb(const json_t *bytes)
{
	static char buf[8][32];
	static int next;

	next = (next + 1) % 8;
	if (!json_is_number(bytes))
		return "";
	snprintf(buf[next], sizeof buf[next], "%.1f", round_to(json_number_value(bytes) / 1048576.0, 1));
	return buf[next];
}

/* The WAL each phase command wrote and how the plan's tables grew (when measured). */
static bool
storage(FILE *out, const json_t *j)
{
	const json_t *runs = GET(j, "runs");
	size_t i;
	json_t *r;
	bool any = false;

	json_array_foreach(runs, i, r) any = any || json_is_number(GET(r, "wal_bytes"));
	if (!any)
		return false;
	fputs("## WAL and table growth\n\nWAL written: pg_current_wal_lsn() before and after the command, so the load's "
		  "writes (and any other database's on the server) are included. Tables: pg_total_relation_size (indexes and "
		  "TOAST included) of the tables the plan changes, before and after.\n\n"
		  "| round | command | WAL written MB | tables before MB | tables after MB | growth MB |\n"
		  "|---|---|---|---|---|---|\n",
		  out);
	json_array_foreach(runs, i, r)
		fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", STR(r, "round"), STR(r, "command"), mb(GET(r, "wal_bytes")),
				mb(GET(r, "table_bytes_before")), mb(GET(r, "table_bytes_after")), mb(GET(r, "table_growth_bytes")));
	return true;
}

/* "KIND COUNT, ..." of a failure_kinds object; "none" when empty. */
static void
kinds(FILE *out, const json_t *k)
{
	const char *key;
	json_t *v;
	const char *sep = "";

	if (json_object_size(k) == 0)
	{
		fputs("none", out);
		return;
	}
	json_object_foreach((json_t *) k, key, v)
	{
		fprintf(out, "%s%s %s", sep, key, NUM(v, 0));
		sep = ", ";
	}
}

/* The load's failures per round and phase beside its hold-out's. */
static bool
holdouts(FILE *out, const json_t *j)
{
	const json_t *cmp = GET(GET(j, "load"), "holdout_comparison");
	size_t i;
	json_t *c;

	if (json_array_size(cmp) == 0)
		return false;
	fputs("## The load against its hold-out\n\nAfter each phase's rollback (the copy as it was before that phase), "
		  "the same load ran for as long with no phasemig command running: the failures the workload has anyway. A "
		  "failure counts against the plan only beyond those: more of a kind (scaled to the same time), or a kind "
		  "the hold-out never had (55P03 lock timeout, 57014 statement cancelled, 42703 or 42883 a column or function "
		  "phasemig changed). Kinds are SQLSTATEs; `failed` is a failure pgbench did not say the kind of.\n\n"
		  "| round | phase | load s | failures by kind | hold-out s | hold-out tx | hold-out failures by kind | "
		  "beyond the hold-out |\n|---|---|---|---|---|---|---|---|\n",
		  out);
	json_array_foreach(cmp, i, c)
	{
		const json_t *h = GET(c, "holdout");

		fprintf(out, "| %s | phase%s | %s | ", STR(c, "round"), NUM(GET(c, "phase"), 0),
				NUM(GET(c, "load_seconds"), 1));
		kinds(out, GET(c, "failure_kinds"));
		if (json_is_object(h))
		{
			fprintf(out, " | %s | %s | ", NUM(GET(h, "seconds"), 0), NUM(GET(h, "transactions"), 0));
			kinds(out, GET(h, "failure_kinds"));
		}
		else
			fputs(" | not run | | ", out);
		fprintf(out, " | %s%s%s |\n", json_integer_value(GET(c, "attributable_failures")) > 0 ? "**" : "",
				NUM(GET(c, "attributable_failures"), 0),
				json_integer_value(GET(c, "attributable_failures")) > 0 ? "**" : "");
	}
	return true;
}

static void
step_notes(FILE *out, const json_t *m)
{
	const char *sep = "";

#define NOTE(key, fmt, decimals)                                                                                       \
	if (json_is_number(GET(m, key)) || json_is_string(GET(m, key)))                                                    \
	{                                                                                                                  \
		fprintf(out, "%s" fmt, sep, NUM(GET(m, key), decimals));                                                       \
		sep = ", ";                                                                                                    \
	}
	NOTE("batches", "%s batches", 0);
	NOTE("rows_per_second", "%s rows/s in the batches", 0);
	NOTE("longest_batch_ms", "longest batch %s ms", 1);
	NOTE("unmatched", "%s unmatched", 0);
	NOTE("generated", "%s uids generated", 0);
#undef NOTE
}

static bool
steps(FILE *out, const json_t *j)
{
	size_t i, k;
	json_t *r, *s;
	bool any = false;

	json_array_foreach(GET(j, "runs"), i, r)
	{
		if (strcmp(STR(r, "round"), "apply") != 0 && strcmp(STR(r, "round"), "rollback") != 0)
			continue;
		json_array_foreach(GET(r, "steps"), k, s)
		{
			const json_t *m = GET(s, "metadata");

			if (!any)
				fputs(
					"## Steps\n\nFrom migration_log of the copy, first apply and rollback.\n\n| round | command | step "
					"| status | seconds | rows | longest lock hold ms | DDL retries | notes |\n"
					"|---|---|---|---|---|---|---|---|---|",
					out);
			any = true;
			fprintf(out, "\n| %s | %s | ", STR(r, "round"), STR(r, "command"));
			cell(out, STR(s, "operation"));
			fprintf(out, " | %s | %s | %s | %s | ", STR(s, "status"), NUM(GET(s, "seconds"), 3),
					NUM(GET(s, "rows_done"), 0), NUM(GET(m, "ddl_longest_attempt_ms"), 1));
			value(out, GET(m, "ddl_retries"));
			fputs(" | ", out);
			step_notes(out, m);
			fputs(" |", out);
		}
	}
	if (any)
		fputs("\n", out);
	return any;
}

static void
warnings(FILE *out, const json_t *j)
{
	size_t i, k;
	json_t *r, *w;
	bool any = false;

	fputs("## Warnings\n\nWhat the phases warned about, as they printed it: a lock not available within the lock "
		  "timeout (and retried), an autovacuum worker in the way (waited past deadlock_timeout so that the server "
		  "cancels it).\n\n",
		  out);
	json_array_foreach(GET(j, "runs"), i, r) json_array_foreach(GET(r, "warnings"), k, w)
	{
		fprintf(out, "%s- %s, %s: ", any ? "\n" : "", STR(r, "round"), STR(r, "command"));
		fputc('`', out);
		for (const char *c = json_string_value(w); c && *c; c++)
			fputc(*c == '`' ? '\'' : *c, out);
		fputc('`', out);
		any = true;
	}
	fputs(any ? "\n" : "none\n", out);
}

static void
refusals(FILE *out, const json_t *j)
{
	const json_t *ref = GET(j, "refusal");
	size_t i;
	json_t *f;

	fputs("## Refusals\n\nWhat phase2 (mapping conflicts, invalid keys, orphans) or phase3 check (pre-flight checks) "
		  "refused, with counts and sample keys; see docs/runbook.md for what to do about each.\n\n",
		  out);
	json_array_foreach(GET(ref, "findings"), i, f)
	{
		fprintf(out, "%s- %s: check `", i > 0 ? "\n" : "", json_is_string(GET(ref, "by")) ? STR(ref, "by") : "");
		value(out, GET(f, "check"));
		fputs("` on `", out);
		value(out, GET(f, "subject"));
		fputs("`: ", out);
		value(out, GET(f, "count"));
		fputs(" found; samples: ", out);
		value(out, GET(f, "samples"));
	}
	if (json_array_size(GET(ref, "findings")) == 0)
	{
		if (json_is_true(GET(ref, "refused")))
			fprintf(out, "refused (see the output of %s)", STR(ref, "by"));
		else
			fputs(json_is_true(GET(j, "applied")) ? "none: nothing was refused" : "not reached", out);
	}
	fputc('\n', out);
}

/* A number of the estimate, "?" when it could not be made. */
static const char *
est(const json_t *e, const char *key, int decimals)
{
	return json_is_number(GET(e, key)) ? NUM(GET(e, key), decimals) : "?";
}

static void
estimate(FILE *out, const json_t *j)
{
	const json_t *e = GET(j, "estimate"), *tables = GET(e, "tables");
	size_t i;
	json_t *t;

	fputs("## Estimate for the source's size\n\nThe plan changes ", out);
	json_array_foreach(tables, i, t)
		fprintf(out, "%s%s (%s rows)", i > 0 ? ", " : "", STR(t, "table"), NUM(GET(t, "rows"), 0));
	if (json_array_size(tables) == 0)
		fputs(STR(GET(j, "source"), "table"), out);
	fprintf(out, ": %s rows in all on the source (%s); the rehearsal ran on %s.\n\n", NUM(GET(e, "table_rows"), 0),
			NUM(GET(e, "rows_from"), 0), est(e, "rehearsed_rows", 0));
	fputs("| phase | estimate | how |\n|---|---|---|\n", out);
	fprintf(out,
			"| phase1 apply | %s s (at most %s s) | measured; nearly size-independent except its index builds "
			"(CONCURRENTLY), which grow about linearly |\n",
			est(e, "phase1_seconds", 3), est(e, "phase1_seconds_if_linear", 1));
	fprintf(out, "| phase2 apply | %s s | %s rows / %s rows of those tables per second, measured |\n",
			est(e, "phase2_seconds", 1), NUM(GET(e, "table_rows"), 0), est(e, "phase2_rows_per_second", 0));
	fprintf(out,
			"| phase3 check and apply (and finalize) | %s s (at most %s s) | measured; nearly size-independent "
			"except the steps that read the whole table (checks, index builds CONCURRENTLY, constraint validation, "
			"the copy of a dropped column), none of which blocks writes, and which grow about linearly |\n",
			est(e, "phase3_seconds", 3), est(e, "phase3_seconds_if_linear", 1));
	fputs("\nThe longest lock hold should not grow with the table: each DDL transaction changes the catalog under "
		  "lock_timeout; what makes it longer is waiting for the application's own locks, which a rehearsal with "
		  "--with-load shows.\n",
		  out);
}

void
report_markdown(FILE *out, const json_t *rep)
{
	const json_t *files = GET(rep, "files");

	header(out, rep);
	fputc('\n', out);
	verdict(out, rep);
	fputc('\n', out);
	if (phases(out, rep))
		fputc('\n', out);
	if (storage(out, rep))
		fputc('\n', out);
	if (holdouts(out, rep))
		fputc('\n', out);
	if (steps(out, rep))
		fputc('\n', out);
	warnings(out, rep);
	fputc('\n', out);
	refusals(out, rep);
	fputc('\n', out);
	estimate(out, rep);
	fputc('\n', out);
	fprintf(out,
			"## Files\n\n- this report: `%s`\n- JSON: `%s`\n- phase outputs, run logs, state snapshots and "
			"comparisons, load logs: `%s/`\n\n",
			STR(files, "markdown"), STR(files, "json"), STR(files, "artifacts"));
}
