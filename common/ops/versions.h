/*
 * versions.h: the plan's versioned schemas of views (versions.c): a *before*
 * schema showing every table the plan changes as the application knows it
 * today and an *after* schema showing them as they will be, each a plain
 * column list an application picks with search_path.  Every plan has them
 * (the implicit operation versioned_views, op_type_versioned_views of ops.h);
 * versions_view.c builds the views.  The operations that drop what the
 * before views read (convert_to_uuid's finalize, drop_column) drop the before
 * schema in the same transaction.
 */
#ifndef PHASEMIG_VERSIONS_H
#define PHASEMIG_VERSIONS_H

#include "ops/ops.h"

#define VERSIONS_BEFORE 0
#define VERSIONS_AFTER 1
/* The registry's kind for a versioned schema (its detail: the order of its views' columns). */
#define VERSIONS_KIND "versioned_schema"

/* What the reader fills (Op.data): the two schemas' names, VERSIONS_BEFORE and VERSIONS_AFTER. */
typedef struct VersionsSpec
{
	char *schemas[2];
} VersionsSpec;

/* "before", "after". */
extern const char *const versions_names[2];

/* The name of the plan's VERSION schema. */
const char *versions_schema(const Plan *plan, int version);
/*
 * The plan's two schema names and every other plan's, as a JSON array
 * (malloc'd): what catalog_dependents() leaves out.
 */
char *versions_except_schemas(const Plan *plan);
/*
 * The sessions holding locks on the views of VERSION's schema, "pid N
 * (application_name 'x')", comma separated; NULL when none (malloc'd).
 */
char *versions_holders(Run *run, int version);
/*
 * Refuse (EXIT_REFUSED, naming the schema and each session: pid,
 * application_name) while other sessions hold locks on the views of VERSION's
 * schema; EXIT_DONE when none does or the schema is not there.
 */
int versions_refuse_if_held(Run *run, int version);
/*
 * The statements dropping VERSION's schema and its views (one LOCK of them
 * all first), for the caller's transaction of DDL (malloc'd; NULL when the
 * schema is not there); *N_VIEWS (when not NULL) the number of views, for
 * the caller's lock_timeout.  The registry keeps its record (the order of its
 * columns) for a rollback.
 */
char *versions_drop_sql(Run *run, int version, int *n_views);
/*
 * The DROP VIEW of other plans' versioned views that read column COLUMN of
 * table QTABLE, for the caller's transaction that drops it (malloc'd; NULL
 * when none), each named in a warning: a table two plans share.
 */
char *versions_drop_others_reading_sql(Run *run, const char *qtable, const char *column);
/* The plan's convert_to_uuid job into JOB when its phase1 is recorded (versions_view.c). */
struct UuidJob;
bool versions_uuid_job(Run *run, struct UuidJob *job);
/* Create VERSION's schema (or replace its views) in one transaction; EXIT_DONE or EXIT_FAILED. */
int versions_create(Run *run, int version);

#endif
