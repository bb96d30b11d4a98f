/*
 * provider.h: the identity providers of backfill_from_mapping.  A provider
 * is a pair, the accounts a table's users have (the source: Clerk) and the
 * accounts they move to (the target: Firebase), and everything the
 * operation knows of either: the columns of the mapping it stages, the
 * export it reads and the fields a plan's "set" may name, the command-line
 * options it adds, how it makes a new target id, and the file that imports
 * the users given one.  The rest of the operation, the online fill (sync
 * trigger, backup of originals, batches, restore), is the same for every
 * provider and reads this table only.
 *
 * A new provider is a folder providers/<name>/ defining its IdProvider,
 * plus its line in providers/providers.c; a plan picks it with the
 * operation's "provider" (default: the table's first, clerk-firebase).
 */
#ifndef PHASEMIG_BACKFILL_PROVIDER_H
#define PHASEMIG_BACKFILL_PROVIDER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine/cli.h"
#include "engine/findings.h"
#include "engine/mlog.h"

/* The longest target id a provider makes (new_uid), in bytes. */
#define BF_MAX_UID 128

/*
 * How an email is compared, on both sides, in SQL: blanks around it trimmed,
 * lower-cased with the database's rules.  A printf format of the column
 * (%s) after the literal PREFIX ("t.", "NEW.").
 */
#define BF_EMAIL_NORM(prefix) "lower(btrim(" prefix "%s::text, E' \\t\\r\\n'))"

/*
 * The staging table a provider's reader fills, with its columns and the
 * export's fields it could not use, {"field": "reason"} (their columns hold
 * NULL; NULL when none): value_check.c refuses or skips them.
 */
#define BF_STAGING "pg_temp.phasemig_staging"
#define BF_STAGING_INVALID "invalid jsonb"

/*
 * A list the operator acts on after the import, written beside the import
 * files from the same users (a password reset to send, a second factor to
 * enrol again): RUN-ID<suffix> in the logs directory, CSV with a header.
 */
typedef struct ImportList
{
	const char *suffix; /* "-password-reset.csv" */
	const char *key;    /* its count in the run's summary (migration_log metadata): "password_reset" */
	const char *what;   /* in the log: "users need a password reset" */
	/* the list's rows, a SELECT over USERS (a users_sql query, its columns by name); malloc'd */
	char *(*sql)(const char *users);
} ImportList;

/*
 * The import files of the users phasemig gave a target id: the query that
 * lists them and how the files are written.  import_file.c writes them under
 * temporary names, commits the marks of their users, then renames them.
 * The users are split into files by the column import_group (one
 * `firebase auth:import` call takes one hash algorithm): each group is the
 * file RUN-ID<suffix>-<group><extension>.
 */
typedef struct ImportFormat
{
	const char *suffix;    /* "-firebase-import" */
	const char *extension; /* ".json" */
	/*
	 * The users to list, one row each with the columns the writer reads by
	 * name, import_group (letters, digits and '-') first and ordered by it:
	 * the generated ids in GENERATED (aliased g) for which WHICH holds (SQL
	 * over g), joined to the plan's table QTABLE by its uid column Q_UID
	 * (Q_EMAIL: its email column, NULL when it has none), and what OPTS's
	 * added options gave (malloc'd).
	 */
	char *(*users_sql)(const char *generated, const char *which, const char *qtable, const char *q_uid,
					   const char *q_email, const Options *opts);
	const char *head, *tail; /* written before a file's first user and after its last */
	/* one user, row ROW of RES (FIRST: its file's first) */
	void (*user)(FILE *fp, const PGresult *res, int row, bool first);
	/* the exact command that imports the file PATH of GROUP (malloc'd; never a secret in it) */
	char *(*import_command)(const char *path, const char *group);
	/*
	 * phase2's pre-flight, before anything is written: the values of the
	 * users the files would list that the target would refuse at import.
	 * CANDIDATES is a query of them (source_id, email, target_id: NULL until
	 * generated).  Adds a finding per problem; SKIP (--skip-invalid-values):
	 * leaves the field out of the file instead and lists the user in
	 * pg_temp.phasemig_skipped.  Returns the number of bad values (and
	 * *refused those that skipping cannot leave out).  NULL: no check.
	 */
	long long (*check_users)(Run *run, const char *candidates, Findings *f, bool skip, long long *refused);
	const ImportList *lists; /* {NULL}-terminated; NULL: none */
} ImportFormat;

/*
 * One pair of the plan's "custom_claims": a claim of the target's accounts
 * and the path in the source's export it is read from (claim_problem says
 * which paths a provider takes).
 */
typedef struct ClaimMap
{
	char *claim;
	char *path;
} ClaimMap;

typedef struct IdProvider
{
	const char *name; /* the plan's "provider": "clerk-firebase" */

	/*
	 * The mapping's columns, in the plan's source table and in the staging
	 * table (and the generated uids' table: source_id, target_id): the
	 * source's and the target's user id, and the rest as CREATE TABLE
	 * takes them and as INSERT lists them.  Besides the fields a plan may
	 * set, they hold the columns the fill reads: email_norm, origin text
	 * NOT NULL DEFAULT 'file', element bigint.
	 */
	const char *source_id; /* "clerk_user_id" */
	const char *target_id; /* "firebase_uid" */
	const char *columns;
	const char *column_list;
	/* the source's id in the names of objects: "clerk" (index source_clerk, lookup by_clerk_id) */
	const char *source_key;

	/* The export's fields a plan's "set" may name, and the one of the target's id. */
	const char *field_kind; /* in messages: "Firebase field" */
	const char *uid_field;  /* "localId" */
	const char *email_field;
	/* a field's source-table column and the SQL type it is staged as; NULL: no such field */
	const char *(*field_column)(const char *field);
	const char *(*field_type)(const char *field);

	/*
	 * Read the mapping PATH (--mapping) into BF_STAGING, created here with
	 * the columns above and BF_STAGING_INVALID; *loaded: the users read.
	 * Returns EXIT_DONE, EXIT_BAD_INPUT (logged with the element or line),
	 * EXIT_REFUSED or EXIT_FAILED.
	 */
	int (*load_mapping)(PGconn *conn, const char *path, long long *loaded);
	const char *mapping_kinds; /* what --mapping takes, for the error without one */
	/*
	 * The options it adds ({NULL}-terminated; cli.h), and reading the files
	 * they name, after the mapping, with the plan's CLAIMS (N_CLAIMS) to
	 * carry into the import files.
	 */
	const CliOption *options;
	int (*load_options)(Run *run, const Options *opts, const ClaimMap *claims, int n_claims);
	/*
	 * Why the plan's custom claim CLAIM cannot be read from PATH (a sentence
	 * for the plan's error), or NULL when it can; NULL: the provider takes
	 * no "custom_claims".
	 */
	const char *(*claim_problem)(const char *claim, const char *path);

	/* Words of messages. */
	const char *target_user; /* "Firebase user" */
	const char *source_ids;  /* "Clerk ids" */
	const char *target_ids;  /* "Firebase uids" */

	/* A new target id for a row that matches nobody (--generate-missing): OUT holds BF_MAX_UID + 1 bytes. */
	void (*new_uid)(char *out);
	const ImportFormat *import;
} IdProvider;

/* The providers, NULL-terminated (providers/providers.c); the first is a plan's default. */
extern const IdProvider *const bf_providers[];

/* The provider named NAME, or NULL. */
const IdProvider *bf_provider(const char *name);
/* The I'th option of every provider, from 0; NULL past the last (OpType.added_option). */
const CliOption *bf_provider_option(int i);

#endif
