/*
 * findings.h: what a pre-flight check found: per problem a count and up to
 * ten sample keys, printed for people and as JSON for machines.
 */
#ifndef PHASEMIG_FINDINGS_H
#define PHASEMIG_FINDINGS_H

#include <jansson.h>

#include "engine/mlog.h"

#define SAMPLE_LIMIT 10
/*
 * The separator of the samples a check's SQL aggregates (string_agg(k,
 * FINDINGS_SEP)): the unit separator, which no key holds.
 */
#define FINDINGS_SEP "E'\\x1f'"

typedef struct Finding
{
	char *check;   /* "null", "duplicate", "dependent_view", ... */
	char *subject; /* what it is about, e.g. the column */
	long long count;
	json_t *samples; /* an array of strings: sample keys (or rows), may be empty */
	bool keys;       /* the samples are keys: printed for people as quoted literals */
	char *hint;      /* what the operator does next, or NULL */
} Finding;

typedef struct Findings
{
	Finding *items;
	int n;
	int cap;
} Findings;

void findings_init(Findings *f);
void findings_free(Findings *f);
void findings_add(Findings *f, const char *check, const char *subject, long long count, const char *samples);
/*
 * What to do about the findings added since FROM (f->n before the check ran):
 * printed as a hint after each, and kept in its JSON.  Each refusal says it.
 */
void findings_hint(Findings *f, int from, const char *hint);

/*
 * Run SQL returning one row (count bigint, samples: text joined by
 * FINDINGS_SEP) and record a finding
 * when count > 0.  Returns the count.  Exits on a failed query.
 */
long long findings_query(Run *run, Findings *f, const char *check, const char *subject, const char *sql);
/* The same, its samples being keys (printed quoted, 'like this'). */
long long findings_query_keys(Run *run, Findings *f, const char *check, const char *subject, const char *sql);
/* Count rows of the plan's table matching COND, with sample keys. */
long long findings_rows_where(Run *run, Findings *f, const char *check, const char *subject, const char *cond);

void findings_print(const Findings *f);
/* A JSON array of the findings (new reference). */
json_t *findings_json(const Findings *f);

#endif
