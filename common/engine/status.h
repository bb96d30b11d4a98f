/*
 * status.h: what the operator asks first: for each phase, applied or not,
 * rows done of total, the last run (when, who, outcome) and recent errors.
 */
#ifndef PHASEMIG_STATUS_H
#define PHASEMIG_STATUS_H

#include "engine/mlog.h"

/* Print the plan's status to stdout (text, or JSON when as_json). */
int status_print(Run *run, bool as_json);

#endif
