/*
 * report_json.c: the records of rehearse-report: one phase run (what
 * scripts/rehearse measured, with the run's steps from migration_log), and
 * the JSON report of the whole rehearsal, its estimate for the source's size
 * included.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static double
number(const json_t *v)
{
	return json_number_value(v);
}

/* Failures by kind, "KIND=COUNT,..." (as scripts/lib/load.sh writes them), as an object KIND: COUNT. */
static json_t *
kinds_object(const char *text)
{
	json_t *o = json_object();
	const char *p = text;

	while (p && *p)
	{
		const char *end = strchr(p, ','), *eq;
		size_t len = end ? (size_t) (end - p) : strlen(p);
		char kind[64];

		eq = memchr(p, '=', len);
		if (eq && (size_t) (eq - p) < sizeof kind)
		{
			memcpy(kind, p, (size_t) (eq - p));
			kind[eq - p] = '\0';
			json_object_set_new(o, kind, json_integer(strtoll(eq + 1, NULL, 10)));
		}
		p = end ? end + 1 : NULL;
	}
	return o;
}

/* The load's figures during one phase, or null when the phase ran without load. */
static json_t *
run_load(const json_t *facts, double secs)
{
	json_t *load;
	json_t *tx;

	if (*fact(facts, "load_tx") == '\0')
		return json_null();
	tx = fact_number(facts, "load_tx");
	load = json_object();
	json_object_set_new(load, "script", json_string(fact(facts, "load_script")));
	json_object_set_new(load, "clients", fact_number(facts, "load_clients"));
	json_object_set_new(load, "transactions", json_incref(tx));
	json_object_set_new(load, "transactions_per_second",
						json_is_number(tx) && secs > 0 ? json_real(round_to(number(tx) / secs, 1)) : json_null());
	json_object_set_new(load, "failed_transactions", fact_number(facts, "load_failed"));
	json_object_set_new(load, "failure_kinds", kinds_object(fact(facts, "load_kinds")));
	json_object_set_new(load, "seconds", fact_number(facts, "load_seconds"));
	json_object_set_new(load, "aborted_clients", fact_number(facts, "load_aborted"));
	json_object_set_new(load, "longest_stall_ms", fact_number(facts, "load_max_ms"));
	json_object_set_new(load, "average_latency_ms", fact_number(facts, "load_avg_ms"));
	json_object_set_new(load, "error", fact_string_or_null(facts, "load_error"));
	json_object_set_new(load, "log", json_string(fact(facts, "load_log")));
	json_decref(tx);
	return load;
}

/* A key of the run as migration_log has it, or DEFAULT when the run left no row. */
static json_t *
from_mlog(const json_t *mlog, const char *key, json_t *dflt)
{
	json_t *v = json_object_get(mlog, key);

	if (v == NULL)
		return dflt;
	json_decref(dflt);
	return json_incref(v);
}

json_t *
report_run(const json_t *facts, const json_t *mlog)
{
	json_t *r = json_object();
	json_t *secs = fact_number(facts, "seconds");
	json_t *rows = from_mlog(mlog, "rows", json_integer(0));
	double s = json_is_number(secs) ? number(secs) : 0;

	json_object_set_new(r, "round", json_string(fact(facts, "round")));
	json_object_set_new(r, "command", json_string(fact(facts, "command")));
	json_object_set_new(r, "exit_code", fact_number(facts, "exit_code"));
	json_object_set_new(r, "seconds", secs);
	json_object_set_new(r, "rows", rows);
	json_object_set_new(r, "rows_per_second",
						number(rows) > 0 && s > 0 ? json_integer((json_int_t) round(number(rows) / s)) : json_null());
	json_object_set_new(r, "ddl_longest_attempt_ms", from_mlog(mlog, "ddl_longest_attempt_ms", json_null()));
	json_object_set_new(r, "ddl_longest_ms", from_mlog(mlog, "ddl_longest_ms", json_null()));
	json_object_set_new(r, "ddl_retries", from_mlog(mlog, "ddl_retries", json_integer(0)));
	json_object_set_new(r, "findings", from_mlog(mlog, "findings", json_array()));
	json_object_set_new(r, "steps", from_mlog(mlog, "steps", json_array()));
	json_object_set_new(r, "output", json_string(fact(facts, "output")));
	{
		json_t *w = fact_lines(facts, "warnings");
		json_t *warnings = json_array();
		size_t i;
		json_t *line;

		json_array_foreach(w, i, line) if (json_string_length(line) > 0) json_array_append(warnings, line);
		json_decref(w);
		json_object_set_new(r, "warnings", warnings);
	}
	{
		json_t *before = fact_number(facts, "table_bytes_before"), *after = fact_number(facts, "table_bytes_after");

		json_object_set_new(r, "wal_bytes", fact_number(facts, "wal_bytes"));
		json_object_set_new(r, "table_bytes_before", before);
		json_object_set_new(r, "table_bytes_after", after);
		json_object_set_new(r, "table_growth_bytes",
							json_is_integer(before) && json_is_integer(after)
								? json_integer(json_integer_value(after) - json_integer_value(before))
								: json_null());
	}
	json_object_set_new(r, "load", run_load(facts, s));
	return r;
}

/* What a comparison of two states found: rollback (start, rolled-back) or reapply (applied, reapplied). */
static json_t *
comparison(const json_t *facts, const char *p, const char *a, const char *b)
{
	char key[32], fa[64], fb[64], diff[96];
	json_t *c = json_object();

#define F(name) (snprintf(key, sizeof key, "%s_%s", p, name), key)
	json_object_set_new(c, "ran", fact_bool(facts, F("ran")));
	json_object_set_new(c, "passed", fact_bool(facts, F("passed")));
	json_object_set_new(c, "schema_equal", fact_bool(facts, F("schema")));
	json_object_set_new(c, "tables_differing", fact_lines(facts, F("tables")));
	json_object_set_new(c, "schema_differences", fact_lines(facts, F("schema_lines")));
	json_object_set_new(c, "schema_dump", fact_string_or_null(facts, F("dump")));
	snprintf(fa, sizeof fa, "%s.schema.sql", a);
	snprintf(fb, sizeof fb, "%s.schema.sql", b);
	snprintf(diff, sizeof diff, "%s-vs-%s.schema.diff", a, b);
	json_object_set_new(c, "schema_dump_files",
						*fact(facts, F("dump")) ? json_pack("[s, s, s]", fa, fb, diff) : json_null());
#undef F
	return c;
}

/* The first round's runs named CMD: the sum of their seconds (NULL when none, or only failed with OK_ONLY). */
static json_t *
first_seconds(const json_t *runs, const char *const *cmds, bool ok_only)
{
	size_t i;
	json_t *r;
	double sum = 0;
	bool any = false;

	json_array_foreach(runs, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "round")), "apply") != 0)
			continue;
		for (int k = 0; cmds[k]; k++)
			if (strcmp(json_string_value(json_object_get(r, "command")), cmds[k]) == 0
				&& (!ok_only || json_integer_value(json_object_get(r, "exit_code")) == 0)
				&& json_is_number(json_object_get(r, "seconds")))
			{
				sum += number(json_object_get(r, "seconds"));
				any = true;
			}
	}
	return any ? json_real(sum) : json_null();
}

static json_t *
num_or_null(bool ok, double v)
{
	return ok ? json_real(v) : json_null();
}

/*
 * The estimate: phase2's rate in rows per second of the tables the plan
 * changes (the plan's table, and the tables referencing it for a conversion
 * to uuid), scaled to the rows of those tables on the source.  est_tables is
 * a line "TABLE<tab>SOURCE ROWS<tab>HOW<tab>REHEARSED ROWS" per table.
 */
static json_t *
estimate(const json_t *facts, const json_t *runs)
{
	static const char *const p1[] = {"phase1 apply", NULL}, *const p2[] = {"phase2 apply", NULL},
							 *const p3[] = {"phase3 check", "phase3 apply", "phase3 finalize", NULL};
	json_t *lines = fact_lines(facts, "est_tables"), *tables = json_array(), *line, *e = json_object();
	json_t *n = NULL, *m = NULL, *s1 = first_seconds(runs, p1, false), *s2 = first_seconds(runs, p2, true),
		   *s3 = first_seconds(runs, p3, false);
	double nsum = 0, msum = 0, rate = 0;
	bool n_ok = false, m_ok = false;
	char how[128] = "";
	size_t i;

	json_array_foreach(lines, i, line)
	{
		char tbl[256] = "", src[32] = "", h[64] = "", reh[32] = "";
		json_t *f = json_object(), *src_n, *reh_n;

		if (json_string_length(line) == 0)
			continue;
		sscanf(json_string_value(line), "%255[^\t]\t%31[^\t]\t%63[^\t]\t%31[^\t]", tbl, src, h, reh);
		json_object_set_new(f, "s", json_string(src));
		json_object_set_new(f, "r", json_string(reh));
		src_n = fact_number(f, "s");
		reh_n = fact_number(f, "r");
		json_decref(f);
		json_array_append_new(
			tables,
			json_pack("{s:s, s:o, s:s, s:o}", "table", tbl, "rows", src_n, "rows_from", h, "rehearsed_rows", reh_n));
		if (json_is_number(src_n))
			nsum += number(src_n), n_ok = true;
		if (json_is_number(reh_n))
			msum += number(reh_n), m_ok = true;
		/* string_agg(DISTINCT how, ' and '): sorted, each once */
		if (strstr(how, h) == NULL)
		{
			char merged[128];

			if (how[0] == '\0')
				snprintf(merged, sizeof merged, "%s", h);
			else
				snprintf(merged, sizeof merged, strcmp(h, how) < 0 ? "%s and %s" : "%2$s and %1$s", h, how);
			memcpy(how, merged, sizeof how);
		}
	}
	json_decref(lines);
	n = json_array_size(tables) ? (n_ok ? json_integer((json_int_t) nsum) : json_null())
								: fact_number(facts, "src_rows");
	m = json_array_size(tables) ? (m_ok ? json_integer((json_int_t) msum) : json_null())
								: fact_number(facts, "staging_rows");
	if (json_array_size(tables) == 0)
		snprintf(how, sizeof how, "%s", fact(facts, "src_rows_how"));
	if (json_is_number(m) && json_is_number(s2) && number(s2) != 0)
		rate = round(number(m) / number(s2));
	json_object_set_new(e, "table_rows", n);
	json_object_set_new(e, "rows_from", json_string(how));
	json_object_set_new(e, "rehearsed_rows", m);
	json_object_set_new(e, "tables", tables);
	json_object_set_new(e, "phase2_rows_per_second",
						json_is_number(m) && json_is_number(s2) && number(s2) != 0 ? json_integer((json_int_t) rate)
																				   : json_null());
	json_object_set_new(e, "phase2_seconds",
						num_or_null(json_is_number(n) && rate != 0, round_to(number(n) / rate, 1)));
	json_object_set_new(e, "phase1_seconds", s1);
	json_object_set_new(e, "phase3_seconds", s3);
	json_object_set_new(e, "phase1_seconds_if_linear",
						num_or_null(json_is_number(s1) && json_is_number(n) && json_is_number(m) && number(m) != 0,
									round_to(number(s1) * number(n) / number(m), 1)));
	json_object_set_new(e, "phase3_seconds_if_linear",
						num_or_null(json_is_number(s3) && json_is_number(n) && json_is_number(m) && number(m) != 0,
									round_to(number(s3) * number(n) / number(m), 1)));
	json_object_set_new(
		e, "note",
		json_string(
			"phase2 = rows of the tables the plan changes (tables) / measured phase2 rate (rows of those tables per second); "
			"phase1 and phase3 are nearly independent of the size, except their CONCURRENTLY index builds (and phase3's "
			"validation scan and the copy of a dropped column), which do not block writes and grow about linearly: "
			"*_if_linear is that upper bound"));
	json_decref(s2);
	return e;
}

/* The refused command's findings in the first round (phase2's conflicts, phase3 check's findings). */
static json_t *
refusal(const json_t *facts, const json_t *runs)
{
	const char *by = fact(facts, "refused");
	json_t *findings = json_array(), *r;
	size_t i;

	json_array_foreach(runs, i, r) if (strcmp(json_string_value(json_object_get(r, "round")), "apply") == 0
									   && strcmp(json_string_value(json_object_get(r, "command")), by) == 0)
		json_array_extend(findings, json_object_get(r, "findings"));
	return json_pack("{s:b, s:o, s:o}", "refused", *by != '\0', "by", fact_string_or_null(facts, "refused"), "findings",
					 findings);
}

/*
 * The load's failures per round and phase against the phase's hold-out (the
 * same load, no phasemig command running): load_comparison is a line
 * "ROUND\tN\tSECONDS\tKINDS\tHOLDOUT SECONDS\tHOLDOUT TX\tHOLDOUT FAILED\t
 * HOLDOUT KINDS\tATTRIBUTABLE" each (the hold-out's fields empty when it did
 * not run).
 */
static json_t *
load_comparison(const json_t *facts)
{
	json_t *lines = fact_lines(facts, "load_comparison"), *out = json_array(), *line;
	size_t i;

	json_array_foreach(lines, i, line)
	{
		char f[9][256] = {{0}};
		const char *p = json_string_value(line);
		json_t *o, *h;
		int k = 0;

		if (json_string_length(line) == 0)
			continue;
		for (k = 0; k < 9 && p; k++)
		{
			const char *tab = strchr(p, '\t');
			size_t len = tab ? (size_t) (tab - p) : strlen(p);

			snprintf(f[k], sizeof f[k], "%.*s", (int) len, p);
			p = tab ? tab + 1 : NULL;
		}
		o = json_object();
		h = json_object();
		json_object_set_new(h, "s", json_string(f[2]));
		json_object_set_new(h, "hs", json_string(f[4]));
		json_object_set_new(h, "htx", json_string(f[5]));
		json_object_set_new(h, "hf", json_string(f[6]));
		json_object_set_new(h, "a", json_string(f[8]));
		json_object_set_new(o, "round", json_string(f[0]));
		json_object_set_new(o, "phase", json_integer(strtoll(f[1], NULL, 10)));
		json_object_set_new(o, "load_seconds", fact_number(h, "s"));
		json_object_set_new(o, "failure_kinds", kinds_object(f[3]));
		json_object_set_new(o, "holdout",
							f[4][0] ? json_pack("{s:o, s:o, s:o, s:o}", "seconds", fact_number(h, "hs"), "transactions",
												fact_number(h, "htx"), "failed_transactions", fact_number(h, "hf"),
												"failure_kinds", kinds_object(f[7]))
									: json_null());
		json_object_set_new(o, "attributable_failures", fact_number(h, "a"));
		json_decref(h);
		json_array_append_new(out, o);
	}
	json_decref(lines);
	return out;
}

/* The load over every phase: the failed transactions and the longest stall (null without load). */
static json_t *
load_totals(const json_t *facts, const json_t *runs)
{
	json_t *r, *failed = json_null(), *stall = json_null();
	size_t i;

	json_array_foreach(runs, i, r)
	{
		json_t *load = json_object_get(r, "load");
		json_t *f = json_object_get(load, "failed_transactions"), *s = json_object_get(load, "longest_stall_ms");

		if (!json_is_object(load))
			continue;
		if (json_is_number(f))
		{
			json_t *sum = json_integer(json_integer_value(failed) + json_integer_value(f));

			json_decref(failed);
			failed = sum;
		}
		if (json_is_number(s) && (json_is_null(stall) || json_number_value(s) > json_number_value(stall)))
		{
			json_decref(stall);
			stall = json_incref(s);
		}
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "enabled", fact_bool(facts, "with_load"), "clients",
					 fact_number(facts, "load_clients"), "failed_transactions", failed, "attributable_failures",
					 fact_number(facts, "load_attributable"), "longest_stall_ms", stall, "rows_removed_after",
					 fact_number(facts, "load_removed"), "holdout_comparison", load_comparison(facts));
}

json_t *
report_build(const json_t *facts, const json_t *runs)
{
	json_t *rep = json_object();

	json_object_set_new(rep, "plan", json_string(fact(facts, "plan")));
	json_object_set_new(rep, "plan_file", json_string(fact(facts, "plan_file")));
	json_object_set_new(rep, "passed", fact_bool(facts, "passed"));
	json_object_set_new(rep, "reasons", fact_lines(facts, "reasons"));
	json_object_set_new(rep, "started_at", json_string(fact(facts, "started_at")));
	json_object_set_new(rep, "finished_at", json_string(fact(facts, "finished_at")));
	json_object_set_new(rep, "source",
						json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "database", fact(facts, "src_db"), "server",
								  fact(facts, "src_server"), "size", fact(facts, "src_size"), "table",
								  fact(facts, "table"), "rows", fact_number(facts, "src_rows"), "rows_from",
								  fact(facts, "src_rows_how")));
	json_object_set_new(rep, "staging",
						json_pack("{s:s, s:o, s:o, s:o, s:o}", "database", fact(facts, "staging_db"), "copy_method",
								  fact_string_or_null(facts, "copy_method"), "copy_seconds",
								  fact_number(facts, "copy_seconds"), "rows", fact_number(facts, "staging_rows"),
								  "kept", fact_bool(facts, "kept")));
	json_object_set_new(rep, "inputs",
						json_pack("{s:o, s:o}", "mapping", fact_string_or_null(facts, "mapping"), "phase2_args",
								  fact_string_or_null(facts, "phase2_args")));
	json_object_set_new(rep, "applied", fact_bool(facts, "applied"));
	json_object_set_new(rep, "refusal", refusal(facts, runs));
	json_object_set_new(rep, "before_rollback",
						*fact(facts, "hook") ? json_pack("{s:s, s:o}", "command", fact(facts, "hook"), "exit_code",
														 fact_number(facts, "hook_rc"))
											 : json_null());
	json_object_set_new(rep, "rollback", comparison(facts, "rb", "start", "rolled-back"));
	json_object_set_new(rep, "reapply", comparison(facts, "ra", "applied", "reapplied"));
	json_object_set_new(json_object_get(rep, "reapply"), "generated_values_differing",
						fact_number(facts, "ra_generated"));
	json_object_set_new(rep, "load", load_totals(facts, runs));
	json_object_set_new(rep, "estimate", estimate(facts, runs));
	/* jsonb_agg of no runs was null */
	json_object_set_new(rep, "runs", json_array_size(runs) ? json_incref((json_t *) runs) : json_null());
	json_object_set_new(rep, "files",
						json_pack("{s:s, s:s, s:s}", "markdown", fact(facts, "md_file"), "json",
								  fact(facts, "json_file"), "artifacts", fact(facts, "work")));
	return rep;
}
