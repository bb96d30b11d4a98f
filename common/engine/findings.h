/*
 * findings.h: what a pre-flight check found: per problem a count and up to
 * ten sample keys, printed for people and as JSON for machines.
 */
#ifndef PHASEMIG_FINDINGS_H
#define PHASEMIG_FINDINGS_H

#include <jansson.h>

#include "engine/mlog.h"

#define SAMPLE_LIMIT 10

typedef struct Finding
{
	char *check;   /* "null", "duplicate", "dependent_view", ... */
	char *subject; /* what it is about, e.g. the column */
	long long count;
	char *samples; /* comma-separated sample keys, may be empty */
	char *hint;    /* what the operator does next, or NULL */
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
 * Run SQL returning one row (count bigint, samples text) and record a finding
 * when count > 0.  Returns the count.  Exits on a failed query.
 */
long long findings_query(Run *run, Findings *f, const char *check, const char *subject, const char *sql);
/* Count rows of the plan's table matching COND, with sample keys. */
long long findings_rows_where(Run *run, Findings *f, const char *check, const char *subject, const char *cond);

void findings_print(const Findings *f);
/* A JSON array of the findings (new reference). */
json_t *findings_json(const Findings *f);

#endif
