/*
 * status.h: what the operator asks first: for each phase, applied or not,
 * rows done of total, the last run (when, who, outcome) and recent errors.
 */
#ifndef PHASEMIG_STATUS_H
#define PHASEMIG_STATUS_H

#include "engine/mlog.h"

/* Print the plan's status to stdout (text, or JSON when as_json). */
int status_print(Run *run, bool as_json);

/* status --run RUN_ID: that run's steps and figures from migration_log (summary.h). */
int status_print_run(Run *run, const char *run_id, bool as_json);

#endif
