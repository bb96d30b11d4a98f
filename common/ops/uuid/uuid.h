/*
 * uuid.h: internals shared by the files of convert_to_uuid.  The job (the key
 * column and every foreign key column pointing at it, found in pg_constraint
 * by phase1 and recorded in the object registry), with every name its
 * phases use built once when it is loaded; the SQL pieces they share; and
 * the steps each file implements, which uuid.c lists per handler.
 *
 *   uuid.c              the handlers: each a list of steps over the job
 *   uuid_spec.c         what a plan says of it (UuidSpec), its checks, its OpType
 *   job.c               loading the job, its names, registry records, trigger SQL
 *   sql.c               SQL pieces several phases share (a text key's uuid, ...)
 *   discover.c          phase1's reading of the catalog into the registry
 *   implicit.c          columns holding the key without a foreign key: warned, checked
 *   expand.c            phase1: map, shadows and forward triggers, and their undo
 *   fill_shadows.c      phase2: classify, regenerate, fill; rollback batches
 *   check.c             phase3's pre-flight
 *   ddl_transactions.c  statement lists, the swap's LOCK, foreign keys
 *   tables.c            phase3's per-table builds and validations, on --jobs connections
 *   views.c             views on converted columns, recreated around a swap
 *   swap.c              phase3 apply, and the teardown/rebuild the swap back shares
 *   unswap.c            phase3 rollback
 *   finalize.c          finalize and its undo
 */
#ifndef PHASEMIG_OP_UUID_H
#define PHASEMIG_OP_UUID_H

#include <jansson.h>

#include "core/strbuf.h"
#include "ops/ops.h"

/*
 * A step's result when the job needs no later step of its list (already done
 * by an earlier run); the list ends there with EXIT_DONE.  Not an exit code.
 */
#define UUID_FINISHED (-1)

/*
 * A column of the plan's "also_convert" or "not_references": one that holds
 * the key's values without a foreign key.
 */
typedef struct ColumnRef
{
	char *schema; /* NULL: the plan's schema */
	char *table;
	char *column;
	bool add_foreign_key; /* also_convert: a foreign key to the key added at the swap */
	char *on_delete;      /* its actions, upper case ("NO ACTION" by default) */
	char *on_update;
} ColumnRef;

/* What the plan says of the operation beyond its column (Op.data, uuid_spec.c). */
typedef struct UuidSpec
{
	bool recreate_views;     /* views on the columns are recreated around the swap */
	ColumnRef *also_convert; /* columns converted with the foreign keys */
	int n_also_convert;
	ColumnRef *not_references; /* columns that look like references and are not */
	int n_not_references;
} UuidSpec;

/* OP's UuidSpec. */
const UuidSpec *uuid_spec(const Op *op);

typedef struct UuidTarget
{
	int index;          /* 0 is the key column of the plan's table */
	char *table;        /* quoted, schema-qualified */
	char *column;       /* the original column's name */
	char *q_col;        /* quoted original name */
	char *q_shadow;     /* quoted "<column>_uuid" */
	char *q_legacy;     /* quoted "<column>_legacy" */
	char *shadow;       /* unquoted "<column>_uuid" */
	char *legacy;       /* unquoted "<column>_legacy" */
	char *q_key;        /* quoted single-column primary key of the table */
	char *constraint;   /* foreign key name (children only) */
	char *q_constraint; /* the same, quoted (children only) */
	char *fk_def;       /* pg_get_constraintdef of the foreign key, without NOT VALID */
	bool fk_validated;  /* it was validated before the migration (re-validated after each swap) */
	bool fk_added;      /* an also_convert column's: the swap adds it, the swap back drops it */
	bool not_null;
	char *regname;    /* registry name: "<table>.<column>" */
	char *fn[2];      /* two-way trigger functions, [0] before the swap ("forward"), [1] after it ("reverse") */
	char *trigger[2]; /* their triggers, quoted */
} UuidTarget;

/*
 * The names of an index on a converted column (or of the key's primary key)
 * and of its two counterparts: the mirror built on the shadow, and the name
 * the original gets after the swap.
 */
typedef struct UuidIndexNames
{
	char *name;
	char *mirror;
	char *legacy;
	char *q_name; /* the three, quoted */
	char *q_mirror;
	char *q_legacy;
} UuidIndexNames;

/* An index that includes a converted column, mirrored on the shadow column. */
typedef struct UuidIndex
{
	char *table; /* quoted */
	UuidIndexNames names;
	char *columns;        /* the mirror's column list, quoted */
	char *legacy_columns; /* the column list on the legacy column, quoted */
	bool unique;
	char *constraint; /* name of the unique constraint it backs, or NULL */
} UuidIndex;

typedef struct UuidJob
{
	Run *run;
	const Op *op;
	const Options *opts; /* NULL for the pre-flight check */
	UuidTarget *t;
	int n;
	UuidIndex *ix;
	int n_ix;
	/*
	 * The key's primary key constraint; its mirror, the unique index on the
	 * key's shadow that becomes the primary key; its legacy copy, a unique
	 * index on the legacy key for a rollback after the swap.
	 */
	UuidIndexNames pk;
	char *map;           /* migration_backup."<plan>:uuid_map": old text -> new uuid */
	char *try_fn;        /* migration_backup."<plan>:try_uuid"(text): uuid or NULL */
	char *legacy_backup; /* migration_backup."<plan>:uuid_legacy": new uuid -> legacy text */
	/* phase3's state when the job was loaded */
	bool swapped;   /* the columns are native uuid (uuid_swapped) */
	bool finalized; /* the legacy columns are dropped (uuid_finalized) */
} UuidJob;

/*
 * One step of a handler: an exit code, or UUID_FINISHED.  The functions of
 * the form int uuid_x(UuidJob *job) below are steps, listed by uuid.c.
 */
typedef int (*UuidStep)(UuidJob *job);

/* ---- job.c ---- */

/* Whether phase1 recorded the job (its primary key) for OP. */
bool uuid_job_recorded(Run *run, const Op *op);
/* Load the job recorded by phase1; logs and returns false when there is none. */
bool uuid_job_load(UuidJob *job, Run *run, const Op *op, const Options *opts);
void uuid_job_free(UuidJob *job);
bool uuid_is_registered(const UuidJob *job, const char *kind);
/*
 * Record KIND/NAME of the plan with DETAIL (stolen) in the object registry,
 * replacing an older record, in a statement of its own.
 */
void uuid_record(Run *run, int phase, const char *kind, const char *name, json_t *detail);
/* The detail of record KIND of the job's column, parsed, or NULL. */
json_t *uuid_recorded_detail(const UuidJob *job, const char *kind);
/*
 * CREATE FUNCTION + CREATE TRIGGER statements for target i's two-way trigger
 * before the swap (forward) or after it (reverse) (malloc'd).
 */
void uuid_trigger_sql(const UuidJob *job, int i, bool reverse, char **fn, char **trigger);
/* Statement that drops the forward or reverse trigger of target i (malloc'd). */
char *uuid_drop_trigger_sql(const UuidJob *job, int i, bool reverse);

/* ---- sql.c ---- */

/*
 * In these, ALIAS.QCOL is the column of the row a piece reads (ALIAS NULL:
 * the column alone).
 *
 * The uuid a text key stands for, as the choices of a coalesce(): the one
 * regenerated for it in the map, else the text as uuid (NULL when invalid).
 */
void uuid_append_choices(StrBuf *sb, const UuidJob *job, const char *alias, const char *qcol);
/* coalesce() of those choices (malloc'd). */
char *uuid_value_sql(const UuidJob *job, const char *alias, const char *qcol);
/*
 * "(SELECT p.<PARENT_COLUMN> FROM <key table> p WHERE p.<key> = <alias>.<qcol>)":
 * the parent row of a child's value (PARENT_COLUMN NULL: SELECT 1).
 */
void uuid_append_parent(StrBuf *sb, const UuidJob *job, const char *parent_column, const char *alias, const char *qcol);
/* A key neither a uuid nor regenerated: the condition on it (malloc'd). */
char *uuid_invalid_sql(const UuidJob *job, const char *alias, const char *qcol);
/*
 * The text as uuid, as the try function gives it, read off QSHADOW when the
 * text is already that shadow's canonical form (malloc'd): for checks that
 * read every row, where the try function's regular expression is most of
 * the cost.
 */
char *uuid_text_as_uuid_sql(const UuidJob *job, const char *alias, const char *qcol, const char *qshadow);
/*
 * Record as CHECK the keys of the key table that are one uuid (UUID_EXPR over
 * its columns), ten samples of their groups; returns the groups.
 */
long long uuid_find_equal_keys(UuidJob *job, Findings *f, const char *check, const char *uuid_expr);

/* ---- discover.c (phase1) ---- */

/* Find the foreign keys and indexes in the catalog and record them; EXIT_BAD_INPUT if unsupported. */
int uuid_discover(Run *run, const Op *op);

/* ---- implicit.c ---- */

/* The regular expression a column's snake-case name matches when it refers to TABLE's KEY (malloc'd). */
char *uuid_reference_pattern(const char *table, const char *key);
/* The columns that look like references to the key without a foreign key, unlisted (rel, attname, q_col). */
PGresult *uuid_reference_candidates(Run *run, const Op *op);
/* phase1: warn of each (sampled), record them in the step's metadata; never refuses. */
void uuid_warn_references(Run *run, const Op *op);
/* phase3's pre-flight: those whose rows would point at nothing after the swap; returns the problems. */
long long uuid_check_references(UuidJob *job, Findings *f);

/* ---- expand.c (phase1) ---- */

int uuid_log_job(UuidJob *job);
int uuid_create_map(UuidJob *job);
int uuid_add_shadows(UuidJob *job);
int uuid_drop_shadows(UuidJob *job);
int uuid_drop_map(UuidJob *job);

/* ---- fill_shadows.c (phase2) ---- */

int uuid_fill(UuidJob *job);
int uuid_discard_regenerated(UuidJob *job);
int uuid_reset_shadows(UuidJob *job);
/*
 * Set COLUMN (quoted) of target i's rows to VALUE where COND holds (both SQL
 * over the alias t), in keyset batches on the table's primary key that lock
 * only the rows they change (ops_undo_batches: resumable, one commit each).
 */
int uuid_undo_batches(UuidJob *job, int i, const char *label, const char *column, const char *value, const char *cond);

/* ---- check.c (phase3) ---- */

long long uuid_check(Run *run, const Op *op, Findings *f);

/* ---- ddl_transactions.c ---- */

/* Statements of one transaction of DDL, each malloc'd. */
typedef struct UuidStmts
{
	char **s;
	int n;
} UuidStmts;

void uuid_stmts_add(UuidStmts *st, char *sql);
/* Run them in one transaction (ops_ddl) and empty the list. */
int uuid_stmts_run(Run *run, const char *what, UuidStmts *st);
/* SET LOCAL lock_timeout and one LOCK TABLE of every table the job alters and of VIEWS (may be NULL). */
void uuid_add_lock_tables(UuidStmts *st, const UuidJob *job, json_t *views);
/* Drop every foreign key pointing at the key, or add each back NOT VALID. */
void uuid_add_foreign_keys(UuidStmts *st, const UuidJob *job, bool drop);

/* ---- tables.c (phase3, one table per task on --jobs connections) ---- */

/*
 * Before the swap: per table, its indexes on the shadow (the key's also the
 * unique index on the text key, under its legacy name: the swap renames the
 * key to <key>_legacy and drops the primary key's index, and this one
 * follows the column so that the old version's lookups by text key keep an
 * index; the swap back makes it the primary key again, finalize drops it
 * with the column) and its shadows' NOT NULL CHECKs validated.
 */
int uuid_prepare_tables(UuidJob *job);
/* Each foreign key validated in its own transaction; one the application left NOT VALID stays so. */
int uuid_validate_foreign_keys(UuidJob *job);

/* ---- views.c ---- */

/*
 * Views on any converted column, each with the statements that recreate it
 * as it is, one JSON array.  A view other views depend on, or a materialized
 * view, is reported in *blocked instead (malloc'd, or NULL).
 */
json_t *uuid_dependent_views(const UuidJob *job, char **blocked);
void uuid_add_view_drops(UuidStmts *st, json_t *views);
void uuid_add_view_creates(UuidStmts *st, json_t *views);

/* ---- swap.c (phase3 apply) ---- */

int uuid_validate_if_swapped(UuidJob *job);
int uuid_build_mirrors(UuidJob *job);
/*
 * The key's unique index on its shadow and every mirror, each unless it is
 * there; ADOPTED_ONLY: only the key's and those backing a unique constraint,
 * the ones the swap's constraints take with them when it is undone.
 */
int uuid_build_shadow_indexes(UuidJob *job, bool adopted_only);
int uuid_enforce_shadows_not_null(UuidJob *job);
int uuid_swap_columns(UuidJob *job);
/* What the swap and the swap back share in their one transaction, before and after the renames. */
void uuid_add_swap_teardown(UuidStmts *st, const UuidJob *job, json_t *views, bool forward);
void uuid_add_swap_rebuild(UuidStmts *st, const UuidJob *job, json_t *views, bool forward);

/* ---- unswap.c (phase3 rollback) ---- */

int uuid_drop_shadows_not_null(UuidJob *job);
int uuid_build_legacy_key(UuidJob *job);
int uuid_swap_back(UuidJob *job);
int uuid_restore_mirrors(UuidJob *job);
int uuid_drop_reverse_functions(UuidJob *job);
/* phase2 rollback: the indexes phase2 built on the shadows. */
int uuid_drop_mirrors(UuidJob *job);

/* ---- finalize.c ---- */

int uuid_finalize_ready(UuidJob *job);
int uuid_save_legacy_keys(UuidJob *job);
int uuid_drop_legacy_columns(UuidJob *job);
int uuid_unfinalize(UuidJob *job);

/* The registry kinds discover() records; a refused discovery or a finished phase1 rollback removes them. */
extern const char *const uuid_job_kinds[];

#endif
