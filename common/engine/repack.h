/*
 * repack.h: phase3 finalize --repack: after finalize's steps, every table the
 * plan rewrote (the plan's table and each operation's rewritten_tables)
 * compacted online by pg_repack, one migration_log row per table with its
 * sizes before and after; refused before anything changes when pg_repack
 * cannot run here (repack_check.c).
 */
#ifndef PHASEMIG_REPACK_H
#define PHASEMIG_REPACK_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/cli.h"
#include "engine/mlog.h"

/* pg_repack's wait for its ACCESS EXCLUSIVE lock, in seconds, before it gives the table up (--wait-timeout). */
#define REPACK_WAIT_TIMEOUT_S 60

/* What the checks found, for the run (repack_setup_free frees it). */
typedef struct RepackSetup
{
	char *command;           /* the pg_repack program's path */
	char *version;           /* its version ("1.4.8"), which the extension's must equal */
	bool create_extension;   /* the extension is missing and --repack-create-extension allows creating it */
	bool no_superuser_check; /* not a superuser: the extension (1.5.2 on) lets the table's owner run it */
	json_t *tables;          /* the tables, as regclass text, in the order they are compacted */
} RepackSetup;

/*
 * Before finalize changes anything: the pg_repack program on PATH, the
 * extension in the database (or allowed to be created and available on the
 * server), both of one version, a role pg_repack runs as (a superuser for
 * 1.4), and on every table a primary key or a unique index on NOT NULL
 * columns.  EXIT_DONE with SETUP filled, else EXIT_REFUSED after saying
 * what is missing and what to do.
 */
int repack_check(Run *run, const Options *opts, RepackSetup *setup);
void repack_setup_free(RepackSetup *setup);
/*
 * After finalize's steps: create the extension when allowed, then each
 * table: clean what an interrupted pg_repack left on it, run pg_repack,
 * check that it swapped the table, record the sizes (every run compacts
 * every table again: pg_repack's result does not depend on it).  A dry run prints
 * the commands.  Stops at the first failure (the same command resumes).
 */
int repack_tables(Run *run, const Options *opts, const RepackSetup *setup);
/* status: the newest compaction of each table into phase 3's object OBJ ("repack"). */
void repack_status(Run *run, json_t *obj);
/* status's text of that, when phase 3's object PH has it. */
void repack_print(json_t *ph);

#endif
