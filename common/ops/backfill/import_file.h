/*
 * import_file.h: the files phase2 writes for the target provider's import
 * (`firebase auth:import`), listing each generated user exactly once over a
 * plan's life, in the provider's format (ImportFormat, provider.h).  A file
 * is written as RUN<suffix>.partial and renamed only once the transaction
 * that marks its users (and adds its row to the plan's ledger) has
 * committed; a later run finishes or removes a partial file, asking the
 * ledger.
 */
#ifndef PHASEMIG_IMPORT_FILE_H
#define PHASEMIG_IMPORT_FILE_H

#include <jansson.h>

#include "engine/mlog.h"
#include "ops/backfill/provider.h"

typedef struct ImportFile
{
	const char *logs_dir;
	const char *ledger;         /* quoted migration_backup."<plan>:import_files" */
	const ImportFormat *format; /* the provider's: the file's name and how a user is written */
	const char *uid_column;     /* the provider's target id: pg_temp.phasemig_to_import's column */
	/*
	 * Marks the users to list with $1 (this run's id) and puts their uids
	 * into pg_temp.phasemig_to_import (uid_column text).
	 */
	const char *mark_sql;
	/* A query over pg_temp.phasemig_to_import, one row per user, as format->user reads them. */
	const char *users_sql;
	/* out: the files written, [{"file", "group", "users", "command"}] (new reference; NULL: none) */
	json_t *files;
} ImportFile;

/*
 * Finish the partial files that runs of this plan left in logs_dir: a run
 * whose ledger row committed gets its files renamed to their final names, any
 * other partial file of this plan's runs is removed (its users were never
 * marked, so the next file lists them).  Files of other plans are left alone.
 */
void import_file_finish_partials(Run *run, const ImportFile *f);

/*
 * Mark the users, write them to the partial files (one per group), commit,
 * rename.  Returns
 * EXIT_DONE, or EXIT_FAILED (logged) leaving either nothing or partial
 * files that the next run resolves.
 */
int import_file_write(Run *run, ImportFile *f);

#endif
