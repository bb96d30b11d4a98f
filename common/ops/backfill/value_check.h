/*
 * value_check.h: phase2's check, before anything is written, that every value
 * staged from the export fits the plan's target column (length, type) and
 * had the JSON type the export format says.
 */
#ifndef PHASEMIG_VALUE_CHECK_H
#define PHASEMIG_VALUE_CHECK_H

#include "engine/findings.h"
#include "engine/plan.h"

/*
 * Check pg_temp.phasemig_staging against the columns of OP's "set" list and
 * add a finding per problem (count, up to SAMPLE_LIMIT users by their id in
 * the export, localId, and element).  SKIP (--skip-invalid-values): also
 * stage each bad value as NULL and list its user in pg_temp.phasemig_skipped
 * ("localId", element, field, "column", problem).  Returns the number of bad values; exits on a failed
 * query.
 */
long long value_check_staging(Run *run, const Op *op, Findings *f, bool skip);

#endif
