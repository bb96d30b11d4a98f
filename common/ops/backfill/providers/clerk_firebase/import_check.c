/*
 * import_check.c: phase2's pre-flight of the import files, before anything
 * is written: the values of the users the files would list that Firebase's
 * import refuses per record (an email it cannot parse or one two accounts
 * would share, a phone number not E.164, a display name over 256
 * characters, a photo URL that is not a URL, a uid over 128 characters,
 * customAttributes over 1,000 bytes), and SCRYPT digests without the
 * parameters to import them.  Found as the export's bad values are
 * (value_check.c): refused, exit 3 naming the users, or with
 * --skip-invalid-values left out of the file and listed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/providers/clerk_firebase/claims.h"
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"
#include "ops/backfill/providers/clerk_firebase/hashers.h"

/* Firebase's limits on an imported record (docs/formats.md). */
#define MAX_DISPLAY_NAME 256
#define MAX_UID 128

/* One check: the users (u: pg_temp.phasemig_import_users) matching COND, the import field it concerns. */
typedef struct ImportCheck
{
	const char *check;  /* the finding's name */
	const char *field;  /* the import file's key */
	bool refuse;        /* not a field skipping can leave out: always refused */
	const char *cond;   /* SQL over u */
	const char *detail; /* SQL text: what is wrong with this user's value (never a secret) */
} ImportCheck;

/* The users to check: CANDIDATES with what the Clerk export gives them. */
static void
stage_users(Run *run, const char *candidates)
{
	bool with_clerk =
		db_exists(run->conn, "SELECT 1 WHERE pg_catalog.to_regclass('pg_temp.phasemig_clerk') IS NOT NULL", 0, NULL);
	StrBuf sb;

	db_exec(run->conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_import_omit (clerk_user_id text, field text)");
	db_exec(run->conn, "TRUNCATE pg_temp.phasemig_import_omit");
	db_exec(run->conn, "DROP TABLE IF EXISTS pg_temp.phasemig_import_users");
	sb_init(&sb);
	sb_append(&sb,
			  "CREATE TEMP TABLE phasemig_import_users AS SELECT DISTINCT ON (k.clerk_user_id) "
			  "k.clerk_user_id, k.firebase_uid, k.listed, nullif(btrim(k.email), '') AS email, ");
	if (with_clerk)
		sb_append(&sb,
				  "nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), '') AS display_name, "
				  "nullif(c.image_url, '') AS photo_url, nullif(c.primary_phone_number, '') AS phone_number, "
				  "c.custom_attributes, c.password_hasher, c.password_digest <> '' AS has_digest ");
	else
		sb_append(&sb,
				  "NULL::text AS display_name, NULL::text AS photo_url, NULL::text AS phone_number, "
				  "NULL::text AS custom_attributes, NULL::text AS password_hasher, false AS has_digest ");
	sb_printf(&sb, "FROM (%s) k ", candidates);
	if (with_clerk)
		sb_append(&sb, "LEFT JOIN pg_temp.phasemig_clerk c ON c.id = k.clerk_user_id ");
	sb_append(&sb, "ORDER BY k.clerk_user_id, k.listed DESC");
	db_exec(run->conn, sb.data);
	sb_free(&sb);
}

/* Count and sample the users of one check; SKIP: leave the field out of the file and list them. */
static long long
run_check(Run *run, Findings *f, const ImportCheck *c, bool skip)
{
	const char *who = "format('clerk_user_id %s%s', quote_literal(u.clerk_user_id), "
					  "coalesce(' (localId ' || quote_literal(u.firebase_uid) || ')', ''))";
	char *cond = str_printf("NOT u.listed AND (%s)", c->cond);
	char *sql = str_printf("SELECT (SELECT count(*) FROM pg_temp.phasemig_import_users u WHERE %s), "
						   "(SELECT string_agg(s, " FINDINGS_SEP ") FROM (SELECT %s || ': ' || %s AS s "
						   "FROM pg_temp.phasemig_import_users u WHERE %s ORDER BY u.clerk_user_id LIMIT %d) x)",
						   cond, who, c->detail, cond, SAMPLE_LIMIT);
	char *subject = str_printf("the import file's \"%s\"", c->field);
	int from = f->n;
	long long n = findings_query(run, f, c->check, subject, sql);

	if (c->refuse)
		findings_hint(f, from, "nothing was written: the import cannot leave this out");
	else
		findings_hint(f, from,
					  skip ? "left out of these users' records in the import file and listed in the logs directory's "
							 "RUN-ID-invalid-values.csv"
						   : "correct the Clerk export (or the table), or run phase2 apply --skip-invalid-values to "
							 "leave the field out of the import file (listed in RUN-ID-invalid-values.csv); nothing "
							 "was written");
	if (skip && n > 0 && !c->refuse)
	{
		char *omit = str_printf("INSERT INTO pg_temp.phasemig_import_omit SELECT u.clerk_user_id, $1::text "
								"FROM pg_temp.phasemig_import_users u WHERE %s",
								cond);
		char *list =
			str_printf("INSERT INTO pg_temp.phasemig_skipped SELECT u.firebase_uid, NULL, $1::text, "
					   "'import file', $2::text, u.clerk_user_id FROM pg_temp.phasemig_import_users u WHERE %s",
					   cond);

		db_execp(run->conn, omit, 1, (const char *[]){c->field});
		db_execp(run->conn, list, 2, (const char *[]){c->field, c->check});
		free(omit);
		free(list);
	}
	free(subject);
	free(sql);
	free(cond);
	return n;
}

long long
import_check_users(Run *run, const char *candidates, Findings *f, bool skip, long long *refused)
{
	char *long_name = str_printf("length(u.display_name) > %d", MAX_DISPLAY_NAME);
	char *long_uid = str_printf("length(u.firebase_uid) > %d", MAX_UID);
	/* the text the file will hold, built when the export was read (claims.c): its bytes exactly */
	char *big_attrs = str_printf("octet_length(u.custom_attributes) > %d", CLAIMS_MAX_BYTES);
	/*
	 * the email as Firebase checks it (the Admin SDK's and the Auth
	 * emulator's isEmail: one @ with text on both sides), blanks refused
	 * too; compared trimmed and lower-cased
	 */
	const ImportCheck checks[] = {
		{"email not valid", "email", false, "u.email !~ '^[^[:space:]@]+@[^[:space:]@]+$'",
		 "'not an email address'"},
		{"email shared with another account", "email", false,
		 "EXISTS (SELECT 1 FROM pg_temp.phasemig_import_users v WHERE lower(v.email) = lower(u.email) "
		 "AND (v.listed OR v.clerk_user_id < u.clerk_user_id)) "
		 "OR EXISTS (SELECT 1 FROM pg_temp.phasemig_staging s WHERE s.origin = 'file' AND s.email_norm = lower(u.email))",
		 "CASE WHEN EXISTS (SELECT 1 FROM pg_temp.phasemig_staging s WHERE s.origin = 'file' "
		 "AND s.email_norm = lower(u.email)) THEN 'a user of the Firebase export has this email' "
		 "ELSE 'another user of the import files has this email' END"},
		{"phone number not E.164", "phoneNumber", false, "u.phone_number !~ '^\\+[1-9][0-9]{1,14}$'",
		 "'not + and 2 to 15 digits'"},
		{"display name over 256 characters", "displayName", false, long_name,
		 "length(u.display_name) || ' characters'"},
		{"photo URL not a URL", "photoUrl", false, "u.photo_url !~ '^https?://[^[:space:]/?#]+[^[:space:]]*$'",
		 "'not an http(s) URL'"},
		{"customAttributes over 1,000 bytes", "customAttributes", false, big_attrs,
		 "octet_length(u.custom_attributes) || ' bytes with the plan''s custom_claims'"},
		{"uid over 128 characters", "localId", true, long_uid, "length(u.firebase_uid) || ' characters'"},
		{NULL, NULL, false, NULL, NULL},
	};
	long long total = 0;

	*refused = 0;
	stage_users(run, candidates);
	for (int i = 0; checks[i].check; i++)
	{
		long long n = run_check(run, f, &checks[i], skip);

		total += n;
		if (checks[i].refuse)
			*refused += n;
	}
	/* 2. SCRYPT digests need the parameters Clerk does not export: refused, whatever skipping says */
	if (!hashers_have_scrypt())
	{
		const ImportCheck scrypt = {"scrypt_firebase digests without --firebase-scrypt-params", "passwordHash", true,
									"u.password_hasher = 'scrypt_firebase' AND u.has_digest",
									"'give the project''s SCRYPT parameters with --firebase-scrypt-params FILE'"};
		long long n = run_check(run, f, &scrypt, false);

		total += n;
		*refused += n;
	}
	free(long_name);
	free(long_uid);
	free(big_attrs);
	return total;
}
