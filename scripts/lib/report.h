/*
 * report.h: bin/rehearse-report, scripts/rehearse's report writer.  The
 * rehearsal's facts come as "key=value" entries separated by NUL bytes (what
 * bash writes without quoting anything); runs and reports are JSON.
 */
#ifndef REHEARSE_REPORT_H
#define REHEARSE_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* the JSON this program writes: indented, keys in order, decimals as written */
#define REPORT_DUMP_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

/* Read a facts file into an object of strings; NULL (said on stderr) when it cannot be read. */
json_t *facts_read(const char *path);
/* A fact, "" when absent. */
const char *fact(const json_t *facts, const char *key);
/* A fact as a JSON number (integer, or real when it has a point), null when empty or not a number. */
json_t *fact_number(const json_t *facts, const char *key);
/* A fact as a JSON boolean: "true" or "t" is true. */
json_t *fact_bool(const json_t *facts, const char *key);
/* A fact's lines as a JSON array of strings, [] when empty. */
json_t *fact_lines(const json_t *facts, const char *key);
/* A fact as a string, null when empty. */
json_t *fact_string_or_null(const json_t *facts, const char *key);

/* A JSON value as text: a string as it is, an integer, a real with DECIMALS places; "" else. */
const char *num_text(const json_t *v, int decimals, char *buf, size_t size);

/* x rounded half away from zero to DECIMALS places. */
double round_to(double x, int decimals);

/* report_json.c: one run's record (facts + "phaseN status --run" JSON, or NULL). */
json_t *report_run(const json_t *facts, const json_t *mlog);
/* report_json.c: the JSON report from the rehearsal's facts and its runs (an array, or NULL). */
json_t *report_build(const json_t *facts, const json_t *runs);

/* report_md.c: the Markdown report of a JSON report. */
void report_markdown(FILE *out, const json_t *rep);

#endif
