/*
 * status.h: what the operator asks first: for each phase, applied or not,
 * the database, rows done of total, the last run (when, who, outcome), its
 * errors and earlier failed attempts.
 */
#ifndef PHASEMIG_STATUS_H
#define PHASEMIG_STATUS_H

#include "engine/mlog.h"

/* Print the plan's status to stdout (text, or JSON when as_json). */
int status_print(Run *run, bool as_json);

/*
 * status --run RUN_ID: that run's steps and figures from migration_log
 * (summary.h), lock times among them.  RUN_ID may be the id's first 8 (or
 * more) digits, as application_name shows it: exit 2 when it is no run id,
 * or starts no run's or several runs' ids.
 */
int status_print_run(Run *run, const char *run_id, bool as_json);

#endif
