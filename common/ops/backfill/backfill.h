/*
 * backfill.h: what the files of backfill_from_mapping share, internal to
 * ops/backfill/: what a plan says of it (BackfillSpec), the names and SQL
 * pieces the operation builds once per handler call (BackfillSql, in the
 * manner of pg_repack's repack_table), the state one phase2 apply passes
 * through its steps (BackfillRun), and each file's steps.  The operation is
 * the generic online fill of a table's new columns from a mapping; what the
 * mapping is, which export it comes from and what the ids look like is the
 * plan's identity provider's (provider.h, providers/).
 *
 *   backfill.c      the handlers: each phase's apply and rollback as numbered steps
 *   backfill_spec.c what a plan says of it, checked against the catalog; its OpType
 *   backfill_sql.c  BackfillSql, and the small SQL helpers every file uses
 *   trigger.c       phase1's sync trigger
 *   source.c        the source table: created by phase1, built aside and swapped in by phase2
 *   backup.c        the backup table of originals, and restoring from it
 *   match.c         phase2's staging tables, matching and conflict checks
 *   generate.c      uids for rows that match nobody, kept for good
 *   fill_batches.c  the lookups and the batch statement of the fill
 *   report.c        unmatched rows, skipped values, the import file, the summary
 * and, with headers of their own: value_check.c (values that do not fit)
 * and import_file.c (writing the import file under a temporary name).
 */
#ifndef PHASEMIG_BACKFILL_H
#define PHASEMIG_BACKFILL_H

#include "core/keyset.h"
#include "engine/fill.h"
#include "ops/backfill/provider.h"
#include "ops/ops.h"

/* One "column": "export field" pair of the plan's "set". */
typedef struct FieldMap
{
	char *column;
	char *field;
} FieldMap;

/* What the plan says of a backfill_from_mapping (Op.data, backfill_spec.c). */
typedef struct BackfillSpec
{
	const IdProvider *provider; /* "provider", else the first of bf_providers */
	char *match_column;         /* the source's id column */
	char *email_column;         /* the email fallback, may be NULL */
	FieldMap *set;              /* the columns filled from the export */
	int n_set;
	const char *uid_column; /* the column set from the export's uid field */
	ClaimMap *claims;       /* "custom_claims", in the plan's order */
	int n_claims;
} BackfillSpec;

/* OP's BackfillSpec (backfill_spec.c). */
const BackfillSpec *bf_spec(const Op *op);

/* The names and SQL text one handler call builds once (bf_sql_init) and its steps share. */
typedef struct BackfillSql
{
	const IdProvider *prov; /* the plan's provider: the mapping's columns, the export's fields */

	/* the operation's own tables, all migration_backup."<plan>:<what>" */
	char *source;       /* the mapping the trigger and the batches read */
	char *backup;       /* "backfill": originals and written values */
	char *generated;    /* uids phasemig gave, kept for good */
	char *import_files; /* the ledger of import files */
	char *sync_fn;      /* "sync": the trigger's function */
	char *trigger;      /* quoted trigger name on the table */
	char *trigger_name; /* unquoted */

	/* the plan's columns, quoted */
	char *q_match; /* the source's id */
	char *q_email; /* NULL without an email column */
	char *q_uid;
	int n_set;
	char **q_set; /* BackfillSpec.set[i].column */

	/* SQL pieces of the backup table (backup.c), used by the trigger and the batches */
	char *backup_columns; /* "original_1, written_1, ..." */
	char *backup_upsert;  /* ON CONFLICT (key) DO UPDATE list, the table aliased bk */

	/* the lookups the batches probe: temporary, or (--jobs) unlogged in migration_backup */
	char *by_source_id; /* "by_<source_key>_id" */
	char *by_email;
	char *profile;

	/* the fill's batch statement (fill_batches.c), and the text it points into */
	KeysetBatch batch;
	char *batch_columns;
	char *batch_steps;
} BackfillSql;

/* One phase2 apply, as its steps see it. */
typedef struct BackfillRun
{
	Run *run;
	const Op *op;
	const Options *opts;
	BackfillSql sql;
	long long loaded;    /* users read from the mapping */
	long long generated; /* uids given by this run */
	long long skipped;   /* export values left empty (--skip-invalid-values) */
	FillTable fill;
} BackfillRun;

/* backfill_sql.c */
void bf_sql_init(BackfillSql *n, const Run *run, const Op *op);
void bf_sql_free(BackfillSql *n);
void bf_use_session_lookups(BackfillSql *n);
/* --jobs's lookups dropped: those this run MADE, else any a killed run left. */
void bf_drop_shared_lookups(Run *run, const BackfillSql *n, bool made);
bool bf_table_exists(Run *run, const char *qname);
/* db_exec(SQL), then free it: for statements built only to be run once. */
void bf_exec_free(Run *run, char *sql);
/* Drop table QNAME if registered as KIND/NAME, then unregister it.  Exit code. */
int bf_drop_registered_table(Run *run, const char *qname, const char *kind, const char *name);

/* trigger.c */
int bf_install_sync_trigger(Run *run, const Op *op, const BackfillSql *n);
int bf_drop_sync_trigger(Run *run, const BackfillSql *n);

/* backup.c */
int bf_ensure_backup_table(Run *run, const BackfillSql *n, int phase);
int bf_restore_backup(Run *run, const BackfillSql *n, const Options *opts);

/* match.c */
int bf_stage_inputs(BackfillRun *s);
int bf_check_staging(BackfillRun *s);

/* source.c */
int bf_create_source_table(Run *run, const BackfillSql *n);
/* The staged mapping built as the new source table under another name, then swapped in. */
int bf_replace_source(BackfillRun *s);
/* Drop the build table a killed phase2 left, when registered; an exit code. */
int bf_drop_source_build(Run *run);

/* generate.c */
int bf_ensure_generated_tables(Run *run, const BackfillSql *n);
int bf_adopt_source_generated(Run *run, const BackfillSql *n);
int bf_generate_missing(BackfillRun *s);
void bf_discard_generated(Run *run, const BackfillSql *n, bool drop);
/* The users the import files would list, for the provider's check_users (ImportFormat); malloc'd. */
char *bf_import_candidates_sql(const Run *run, const BackfillSql *n);

/* fill_batches.c */
int bf_fill(BackfillRun *s);
int bf_fill_before_resume_point(BackfillRun *s);

/* report.c */
int bf_write_skipped(Run *run, const Options *opts);
int bf_report(BackfillRun *s, int rc);
/* --dry-run: the rows the fill would fill and those without a match, on stdout. */
int bf_dry_run_report(BackfillRun *s);

#endif
