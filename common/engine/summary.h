/*
 * summary.h: what a tool driving the phases (scripts/rehearse) needs to know,
 * as JSON: a plan's identity and operations (no database), and one run's
 * steps and figures from migration_log.
 */
#ifndef PHASEMIG_SUMMARY_H
#define PHASEMIG_SUMMARY_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/mlog.h"

/* The plan: name, schema, table, key, uid column, operations (caller decrefs). */
json_t *summary_plan(const Plan *plan);

/* "plan --plan FILE [--json]": read the plan, print it; the exit code. */
int summary_print_plan(const char *path, bool as_json);

/*
 * The run RUN_ID of this plan from migration_log: its phase-level row and its
 * steps, the rows they did, the longest DDL lock hold, the DDL retries and
 * what it found (caller decrefs); an empty run when there is no such run (or
 * no migration_log).  NULL when migration_log cannot be read.
 */
json_t *summary_run(Run *run, const char *run_id);

#endif
