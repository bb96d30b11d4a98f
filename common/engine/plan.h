/*
 * plan.h: a migration plan read from JSON: the table, its key and the ordered
 * operations.  Unknown keys, missing keys and wrong types are refused.
 */
#ifndef PHASEMIG_PLAN_H
#define PHASEMIG_PLAN_H

#include <libpq-fe.h>
#include <stdbool.h>

struct OpType; /* operation.h */

/*
 * One operation of the plan: what every operation has; what only it reads
 * is in DATA, which its reader fills and its OpType frees and describes.
 */
typedef struct Op
{
	const struct OpType *kind; /* what it is: its name, reader and handlers (operation.h) */
	int index;                 /* position in the plan, from 0 */
	char *label;               /* "add_column <column>": migration_log.operation */
	char *column;              /* the column the operation is about */
	void *data;                /* the operation's own (OpType.read fills it, OpType.free frees it) */
} Op;

/* One of the plan's "trusted_triggers": a trigger of another role's function, reviewed and allowed. */
typedef struct TrustedTrigger
{
	char *schema; /* defaults to the plan's schema */
	char *table;
	char *trigger;
} TrustedTrigger;

/*
 * How long a batch should take, by default: the batch size follows the
 * measured cost of the batches before (batch.c's adapt).  Long enough that a
 * batch's fixed costs (three round trips, the commit's WAL flush, the keyset
 * step) are a small part of it; short enough that an application write
 * waiting on one of the batch's rows waits a tenth of a second at most.
 */
#define PLAN_TARGET_BATCH_MS 100

typedef struct Plan
{
	char *path;
	char *name;
	char *description;
	char *schema;
	char *table;
	char *key;
	int lock_timeout_ms;
	int batch_size;      /* the first batch's rows */
	int target_batch_ms; /* the batch size adapts so a batch takes about this; 0: fixed */
	int ddl_attempts;
	Op *ops;
	int n_ops;
	TrustedTrigger *trusted_triggers;
	int n_trusted_triggers;

	/* filled by plan_bind() */
	PGconn *conn;
	char *q_table; /* "schema"."table" */
	char *q_key;
	char *key_type; /* format_type() of the key column */
} Plan;

/*
 * Read and validate a plan.  Returns NULL after logging one clear message
 * (file, position, key) when the file is missing, malformed or not a plan.
 */
Plan *plan_load(const char *path);
void plan_free(Plan *plan);
/*
 * The tables besides the plan's that its operations write and alter
 * (OpType.extra_tables), like the tables whose foreign keys point at the
 * key: JSON text [[schema, table], ...] (malloc'd).
 */
char *plan_extra_tables(const Plan *plan);

/*
 * Check the plan against the database (table and key exist, types parse) and
 * fill the quoted names.  Logs and returns false when they do not match.
 */
bool plan_bind(Plan *plan, PGconn *conn);

/* Name of a phasemig-owned object for this plan: "<plan>:<what>", quoted. */
char *plan_backup_table(const Plan *plan, const char *what);
char *plan_object_name(const Plan *plan, const char *what);

/* NAME quoted as an identifier (sql_ident, core/strbuf.h: the one way SQL is quoted); caller frees. */
char *plan_ident(const Plan *plan, const char *name);

#endif
