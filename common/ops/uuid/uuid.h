/*
 * op_uuid.h: internals shared by the two files of convert_to_uuid: the job
 * (the key column and every foreign key column pointing at it, found in
 * pg_constraint at phase1 and recorded in the object registry) and its names.
 */
#ifndef PHASEMIG_OP_UUID_H
#define PHASEMIG_OP_UUID_H

#include "ops/ops.h"

typedef struct UuidTarget
{
	int index;				/* 0 is the key column of the plan's table */
	char *table;			/* quoted, schema-qualified */
	char *column;			/* the original column's name */
	char *q_col;			/* quoted original name */
	char *q_shadow;			/* quoted "<column>_uuid" */
	char *q_legacy;			/* quoted "<column>_legacy" */
	char *shadow;			/* unquoted "<column>_uuid" */
	char *legacy;			/* unquoted "<column>_legacy" */
	char *q_key;			/* quoted single-column primary key of the table */
	char *constraint;		/* foreign key name (children only) */
	char *fk_def;			/* pg_get_constraintdef of the foreign key, without NOT VALID */
	bool fk_validated;		/* it was validated before the migration (re-validated after each swap) */
	bool not_null;
	char *regname;			/* registry name */
} UuidTarget;

/* An index that includes a converted column, mirrored on the shadow column. */
typedef struct UuidIndex
{
	char *table;			/* quoted */
	char *name;				/* the index's name */
	char *mirror;			/* the mirror's name */
	char *legacy;			/* the name the original gets after the swap */
	char *columns;			/* the mirror's column list, quoted */
	char *legacy_columns;	/* the column list on the legacy column, quoted */
	bool unique;
	char *constraint;		/* name of the unique constraint it backs, or NULL */
} UuidIndex;

typedef struct UuidJob
{
	Run *run;
	const Op *op;
	UuidTarget *t;
	int n;
	UuidIndex *ix;
	int n_ix;
	char *pk_name;			/* the key's primary key constraint */
	char *pk_mirror;		/* unique index on the key's shadow, becomes the primary key */
	char *pk_legacy;		/* unique index on the legacy key, for rollback after the swap */
	char *map;				/* migration_backup."<plan>:uuid_map": old text -> new uuid */
	char *try_fn;			/* migration_backup."<plan>:try_uuid"(text): uuid or NULL */
	char *legacy_backup;	/* migration_backup."<plan>:uuid_legacy": new uuid -> legacy text */
} UuidJob;

/* Load the job recorded by phase1; logs and returns false when there is none. */
bool uuid_job_load(UuidJob *job, Run *run, const Op *op);
void uuid_job_free(UuidJob *job);
/* Trigger functions of target i: forward (shadow from original), reverse (legacy from new). */
char *uuid_fn_name(const UuidJob *job, const char *direction, int i);
/* CREATE FUNCTION + CREATE TRIGGER statements (2) for the forward or reverse trigger of target i. */
void uuid_trigger_sql(const UuidJob *job, int i, bool reverse, char **fn, char **trigger);
/* Quoted name of the forward or reverse trigger of target i (caller frees). */
char *uuid_trigger_name(const UuidJob *job, int i, bool reverse);
/* Statement that drops the forward or reverse trigger of target i. */
char *uuid_drop_trigger_sql(const UuidJob *job, int i, bool reverse);
bool uuid_is_registered(const UuidJob *job, const char *kind);
/*
 * Set COLUMN (quoted) of target i's rows to VALUE where COND holds (both SQL
 * over the alias t), in keyset batches on the table's primary key that lock
 * only the rows they change (ops_undo_batches: resumable, one commit each).
 */
int uuid_undo_batches(UuidJob *job, const Options *opts, int i, const char *label, const char *column,
					  const char *value, const char *cond);

/* phase3 (op_uuid_swap.c) */
long long uuid_check(Run *run, const Op *op, Findings *f);
int uuid_swap(Run *run, const Op *op, const Options *opts);
int uuid_unswap(Run *run, const Op *op, const Options *opts);
int uuid_finalize(Run *run, const Op *op, const Options *opts);
/* Build the unique index that becomes the primary key and every mirrored index (CONCURRENTLY). */
int uuid_build_mirrors(UuidJob *job);

#endif
