/*
 * ops.h: the operations (each an OpType of engine/operation.h: what it does
 * in each phase, how it undoes that, what it checks before phase3) and the
 * steps several of them share.  Nothing here exits except through db_*() on
 * a failed query: every step returns an exit code.
 */
#ifndef PHASEMIG_OPS_H
#define PHASEMIG_OPS_H

#include "core/keyset.h"
#include "engine/batch.h"
#include "engine/operation.h"

/* The table of every operation (op_types.c), which the binaries give the engine (operations_use). */
extern const OpType *const op_types[];

/*
 * The types other operations and the tests name (operation.h).  The
 * handlers of the two families in folders of their own, which their types
 * reference.
 */
extern const OpType op_type_add_column;
extern const OpType op_type_create_index;
extern const OpType op_type_add_unique;
extern const OpType op_type_check_unique;
extern const OpType op_type_set_not_null;
extern const OpType op_type_drop_column;
extern const OpType op_type_backfill_from_mapping;
extern const OpType op_type_convert_to_uuid;
extern const OpType op_type_versioned_views;
extern const OpHandlers op_backfill_from_mapping;
extern const OpHandlers op_convert_to_uuid;

/*
 * What the readers of the one-file operations fill (Op.data): add_column's
 * type is read by the operations after it; the others by the tests.
 */
typedef struct AddColumnSpec
{
	char *type; /* as the plan gives it: "varchar(128)" */
} AddColumnSpec;

typedef struct IndexSpec /* create_index, add_unique, check_unique */
{
	char *name;     /* create_index, add_unique: the index or constraint */
	char **columns; /* create_index */
	int n_columns;
	bool unique;      /* create_index */
	bool ignore_case; /* check_unique */
} IndexSpec;

typedef struct NotNullSpec
{
	bool reject_empty; /* '' counts as missing too */
} NotNullSpec;

/* The type an add_column operation gives its column. */
const char *add_column_type(const Op *op);

/*
 * How every phasemig trigger function is declared: it runs with its owner's
 * rights (the application's role may not read migration_backup) and a fixed
 * search_path (its body names everything with its schema).
 */
#define OPS_TRIGGER_FUNCTION                                                                                           \
	"RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS"

/*
 * The WHEN of every sync trigger: not called for the rows of a fill batch
 * (engine/batch.h's quiet_triggers), whose writes it would leave as they
 * are; the application's writes, and phasemig's others, still call it.
 */
#define OPS_TRIGGER_WHEN "WHEN (pg_catalog.current_setting('" BATCH_FILL_SETTING "', true) IS DISTINCT FROM 'on')"

/* Shared steps. */
/*
 * Build index NAME on QTABLE with CREATE [UNIQUE] INDEX CONCURRENTLY unless a
 * valid one exists; an INVALID one is rebuilt, and one a failed build leaves
 * INVALID is dropped.  EXIT_DONE or EXIT_FAILED.
 */
int ops_build_index_on(Run *run, const char *qtable, const char *name, const char *columns_sql, bool unique);
/* DROP INDEX CONCURRENTLY IF EXISTS index NAME of table QTABLE; EXIT_DONE or EXIT_FAILED. */
int ops_drop_index_on(Run *run, const char *qtable, const char *name);
/* "schema"."index" for index NAME of table QTABLE (caller frees). */
char *ops_qualified_index(Run *run, const char *qtable, const char *name);
/* The same on the plan's table, recorded in the object registry as KIND first. */
int ops_build_index(Run *run, const char *name, const char *columns_sql, bool unique, const char *kind);
/* SET NOT NULL through a validated CHECK (col IS NOT NULL) NOT VALID. */
int ops_enforce_not_null(Run *run, const char *column);
int ops_enforce_not_null_on(Run *run, const char *qtable, const char *column);
/*
 * Its first two steps, which a --jobs worker may run: the CHECK added NOT
 * VALID (a short lock) and validated (a scan that lets writes go on), or
 * dropped again when a NULL is found.  *ALREADY: the column is NOT NULL, so
 * there was nothing to do.  Never exits: EXIT_DONE or EXIT_FAILED.
 */
int ops_prepare_not_null_on(Run *run, const char *qtable, const char *column, bool *already);
/*
 * Its last step, after ops_prepare_not_null_on ran: SET NOT NULL through the
 * valid CHECK (a short lock, no scan), then the CHECK dropped; nothing when
 * the column is NOT NULL already, all three steps when the CHECK is not
 * there and valid.
 */
int ops_finish_not_null_on(Run *run, const char *qtable, const char *column);
/*
 * Name of an object phasemig creates outside migration_backup (trigger,
 * constraint, index): "phasemig_<plan, first 24 bytes>_<hash of the plan's
 * name>_<WHAT>"; over 63 bytes, cut to 54 and "_<hash of WHAT>" added.
 * Deterministic, and two plans never share one.  Caller frees.
 */
char *ops_object_name(const Plan *plan, const char *what);
/* Name of the temporary CHECK behind SET NOT NULL (caller frees). */
char *ops_not_null_check_name(const Plan *plan, const char *column);
/*
 * A rollback's keyset batches of K (one statement and its checkpoint per
 * commit) under a migration_log row of their own named LABEL, ROWS_TOTAL the
 * rows they will walk (-1: unknown).  A run of the same step killed since
 * the phase was last applied is resumed after its checkpoint; one that
 * finished is not repeated (the triggers kept rows written since right).
 * With --jobs N (OPTS) and rows enough, a new pass is N key ranges, rows
 * "LABEL [i/n]", run on N connections at once and resumed range by range
 * (undo_batches.c).  Adds the rows changed to run->op_rows.  Returns an exit
 * code.
 */
int ops_undo_batches(Run *run, const Options *opts, const char *label, const KeysetBatch *k, long long rows_total);
/* Run one transaction of DDL under lock_timeout with retry; EXIT_DONE or EXIT_FAILED. */
int ops_ddl(Run *run, const char *what, const char *const *stmts, int n);
/* The same, removing the registry's record of KIND NAME in that transaction: an undo. */
int ops_ddl_forget(Run *run, const char *what, const char *const *stmts, int n, const char *kind, const char *name);
/*
 * The lock_timeout of one LOCK TABLE of RELATIONS relations taken before a
 * DDL transaction's changes: deadlock_timeout - 100 ms shared among them (at
 * most the retry's lock timeout, at least 20 ms), so that an application
 * transaction queued behind the LOCK runs its deadlock check only after the
 * LOCK has its locks or has given up, and phasemig retries, never the
 * application (see uuid_add_lock_tables).
 */
long long ops_lock_share_ms(Run *run, int relations);
/*
 * The value phasemig wrote into COLUMN of the row aliased t: what the plan's
 * backfill_from_mapping recorded as written there in its backup table, as
 * *JOIN, a LEFT JOIN of that table aliased b, and the expression over b it
 * returns (both malloc'd); NULL (and *JOIN NULL) when no backfill of the plan
 * fills COLUMN or its backup table is gone (backfill/backup.c).
 */
char *bf_written_value_sql(Run *run, const char *column, char **join);
/*
 * ALTER TABLE qtable VALIDATE CONSTRAINT qconstraint in its own transaction:
 * SHARE UPDATE EXCLUSIVE, so the application reads and writes while it scans.
 */
int ops_validate(Run *run, const char *qtable, const char *qconstraint);

#endif
