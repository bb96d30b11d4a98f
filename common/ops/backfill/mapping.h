/*
 * mapping.h: loads the mapping an operator gives phase2 into a temporary
 * staging table with COPY: a Firebase Auth export, a JSON array of
 * {clerk_user_id, firebase_uid}, or a CSV with that header.
 */
#ifndef PHASEMIG_MAPPING_H
#define PHASEMIG_MAPPING_H

#include <libpq-fe.h>

/*
 * Columns of the staging table and of the plan's persistent source table.
 */
#define MAPPING_COLUMNS                                                                                                \
	"firebase_uid text NOT NULL, clerk_user_id text, email text, email_norm text, "                                    \
	"email_verified boolean, display_name text, photo_url text, phone_number text, "                                   \
	"last_signed_in_at timestamptz, created_at timestamptz, disabled boolean, "                                        \
	"origin text NOT NULL DEFAULT 'file', element bigint"
#define MAPPING_COLUMN_LIST                                                                                            \
	"firebase_uid, clerk_user_id, email, email_norm, email_verified, display_name, photo_url, "                        \
	"phone_number, last_signed_in_at, created_at, disabled, origin, element"

/*
 * Staging only: the export's fields that were of the wrong JSON type or out
 * of range, {"field": "reason"} (their columns hold NULL); NULL when none.
 */
#define MAPPING_INVALID_COLUMN "invalid jsonb"

/*
 * How an email is compared, on both sides, in SQL: blanks around it trimmed,
 * lower-cased with the database's rules.  A printf format of the column
 * (%s) after the literal PREFIX ("t.", "NEW.").
 */
#define MAPPING_EMAIL_NORM(prefix) "lower(btrim(" prefix "%s::text, E' \\t\\r\\n'))"

/* Source-table column a Firebase field lands in ("displayName" -> "display_name"). */
const char *mapping_field_column(const char *field);
/* The SQL type a Firebase field is staged as ("emailVerified" -> "boolean"). */
const char *mapping_field_type(const char *field);

/*
 * Create pg_temp.phasemig_staging and fill it from PATH, one element at a
 * time.  Returns EXIT_DONE, EXIT_BAD_INPUT (logged with the element or line)
 * or EXIT_FAILED.  *loaded receives the number of users read.
 */
int mapping_load(PGconn *conn, const char *path, long long *loaded);

/*
 * Load a Clerk dashboard CSV export into pg_temp.phasemig_clerk (COPY with
 * HEADER MATCH, so a different header is refused).  Returns an exit code.
 */
int mapping_load_clerk_csv(PGconn *conn, const char *path, long long *loaded);

#endif
