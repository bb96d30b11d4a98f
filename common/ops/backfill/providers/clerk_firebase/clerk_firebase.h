/*
 * clerk_firebase.h: the first identity provider of backfill_from_mapping
 * (ops/backfill/provider.h): users of Clerk moved to Firebase Auth.  What
 * its files share:
 *
 *   clerk_firebase.c  the provider's row: its columns, fields, options, words
 *   mapping.c         reading the mapping (a Firebase Auth export, a JSON
 *                     array of {clerk_user_id, firebase_uid}, or a CSV with
 *                     that header) and Clerk's dashboard export into staging
 *   clerk_json.c      reading Clerk's JSON export (API/CLI) into the same table
 *                     as its dashboard CSV (clerk_user.c: one user, clerk_user.h)
 *   claims.c          the plan's custom_claims: checked, and read from a
 *                     user's metadata into customAttributes (claims.h)
 *   export_user.c     one export user as a staging row (export_user.h)
 *   firebase_uid.c    new Firebase-style uids (firebase_uid.h)
 *   auth_import.c     the files for `firebase auth:import`, one per hash algorithm
 *   hashers.c         Clerk's hashers as Firebase's algorithms (hashers.h)
 *   import_check.c    the import files' values Firebase would refuse, found first
 *   base64.c          base64 (base64.h)
 */
#ifndef PHASEMIG_CLERK_FIREBASE_H
#define PHASEMIG_CLERK_FIREBASE_H

#include <libpq-fe.h>

#include "ops/backfill/provider.h"

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

/* The header of a CSV mapping given to --mapping. */
#define CSV_HEADER_MAPPING "clerk_user_id,firebase_uid"

/* The header of the CSV Clerk's dashboard exports (--clerk-export). */
#define CSV_HEADER_CLERK                                                                                               \
	"id,first_name,last_name,username,primary_email_address,primary_phone_number,"                                     \
	"verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,"             \
	"totp_secret,password_digest,password_hasher"

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
 * pg_temp.phasemig_clerk, what the Clerk export gives each user (CSV or
 * JSON): the dashboard CSV's columns, then image_url, banned,
 * provider_user_info (Firebase's providerUserInfo array), mfa (the second
 * factors Firebase cannot import, "totp, backup_code"), password_enabled,
 * custom_attributes (the customAttributes text with the plan's claims, NULL
 * when the user has none: the JSON export's only) and element (the JSON's).
 */
#define CLERK_TABLE                                                                                                    \
	"CREATE TEMP TABLE IF NOT EXISTS phasemig_clerk (id text, first_name text, last_name text, "                       \
	"username text, primary_email_address text, primary_phone_number text, verified_email_addresses text, "            \
	"unverified_email_addresses text, verified_phone_numbers text, unverified_phone_numbers text, "                    \
	"totp_secret text, password_digest text, password_hasher text, image_url text, banned boolean, "                   \
	"provider_user_info jsonb, mfa text, password_enabled boolean, custom_attributes text, element bigint)"

/*
 * Load a Clerk dashboard CSV export into pg_temp.phasemig_clerk (COPY with
 * HEADER MATCH, so a different header is refused).  Returns an exit code.
 */
int mapping_load_clerk_csv(PGconn *conn, const char *path, long long *loaded);

/*
 * Load Clerk's JSON export (an array of users, as its API and CLI give them)
 * into pg_temp.phasemig_clerk, one user at a time (clerk_json.c), each with
 * the plan's CLAIMS (N) from its metadata.  Returns an exit code.
 */
int clerk_json_load(PGconn *conn, const char *path, const ClaimMap *claims, int n, long long *loaded);

/* import_check.c: the import files' pre-flight (ImportFormat.check_users). */
long long import_check_users(Run *run, const char *candidates, Findings *f, bool skip, long long *refused);

/* auth_import.c: the import file's format (firebase auth:import's JSON). */
extern const ImportFormat firebase_auth_import;

#endif
