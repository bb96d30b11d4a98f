/*
 * clerk_firebase.c: the provider clerk-firebase (ops/backfill/provider.h):
 * a table's users with Clerk ids (match_column) moved to Firebase Auth
 * uids, matched from a Firebase Auth export; --clerk-export adds what Clerk
 * knows of the users given a new uid to their import files (its dashboard CSV
 * or its JSON export, told apart by their first byte), and
 * --firebase-scrypt-params the parameters its scrypt_firebase digests need.
 */
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "ops/backfill/providers/clerk_firebase/claims.h"
#include "ops/backfill/providers/clerk_firebase/firebase_uid.h"
#include "ops/backfill/providers/clerk_firebase/hashers.h"

/* --clerk-export=FILE and --firebase-scrypt-params=FILE, phase2 options (CLI_MAPPING's group). */
static const CliOption options[] = {
	{.name = "clerk-export",
	 .has_arg = true,
	 .group = CLI_MAPPING,
	 .file = "Clerk export",
	 .arg = "FILE",
	 .help = "Clerk's dashboard CSV or its JSON export (API/CLI):\n"
			 "adds names, password digests, phone numbers, social\n"
			 "accounts and bans to the import files"},
	{.name = "firebase-scrypt-params",
	 .has_arg = true,
	 .group = CLI_MAPPING,
	 .file = "SCRYPT parameters file",
	 .arg = "FILE",
	 .help = "JSON of the Firebase project's password hash\n"
			 "parameters (base64_signer_key, base64_salt_separator,\n"
			 "rounds, mem_cost), for scrypt_firebase digests"},
	{NULL},
};

/* Whether PATH holds JSON (its first byte past blanks and a byte order mark is '['), else the CSV. */
static bool
is_json(const char *path)
{
	FILE *fp = fopen(path, "r");
	int c;

	if (fp == NULL)
		return false; /* the CSV reader says why */
	if ((c = getc(fp)) != 0xEF || getc(fp) != 0xBB || getc(fp) != 0xBF)
		rewind(fp);
	do
		c = getc(fp);
	while (c != EOF && isspace(c));
	fclose(fp);
	return c == '[';
}

/*
 * The Clerk export, when given: the users' names, password digests, phone
 * numbers, social accounts, bans and the plan's CLAIMS for the import files;
 * then the SCRYPT parameters.
 */
static int
load_options(Run *run, const Options *opts, const ClaimMap *claims, int n_claims)
{
	const char *clerk_export = cli_added(opts, "clerk-export");
	const char *scrypt = cli_added(opts, "firebase-scrypt-params");
	bool json;
	long long rows = 0;
	int rc;

	/* 1. the parameters first: a bad file is refused before the export is read */
	if (scrypt && (rc = hashers_read_scrypt_params(scrypt)) != EXIT_DONE)
		return rc;
	if (clerk_export == NULL)
	{
		if (n_claims > 0 && opts->generate_missing)
			log_warning("the plan maps custom_claims from Clerk's metadata, but no --clerk-export was given: the "
						"import files carry only the Clerk id in customAttributes");
		return EXIT_DONE;
	}
	/* 2. the export, either shape, into pg_temp.phasemig_clerk; the metadata is in the JSON only */
	json = is_json(clerk_export);
	if (n_claims > 0 && !json)
	{
		log_error("the plan maps custom_claims from Clerk's metadata, which the dashboard CSV \"%s\" does not have",
				  clerk_export);
		log_hint("give Clerk's JSON export (its API's GET /v1/users or its CLI) with --clerk-export, or remove "
				 "\"custom_claims\" from the plan");
		return EXIT_BAD_INPUT;
	}
	rc = json ? clerk_json_load(run->conn, clerk_export, claims, n_claims, &rows)
			  : mapping_load_clerk_csv(run->conn, clerk_export, &rows);
	if (rc != EXIT_DONE)
		return rc;
	db_exec(run->conn, "CREATE INDEX ON pg_temp.phasemig_clerk (id)");
	db_exec(run->conn, "ANALYZE pg_temp.phasemig_clerk");
	/* 3. how each digest goes to Firebase (hashers.c) */
	hashers_create_function(run->conn);
	log_info("read %lld users from the Clerk export \"%s\"", rows, clerk_export);
	return EXIT_DONE;
}

_Static_assert(FIREBASE_UID_LENGTH <= BF_MAX_UID, "a Firebase uid fits the buffer new_uid fills");

static void
new_uid(char *out)
{
	firebase_uid_generate(out);
}

const IdProvider bf_provider_clerk_firebase = {
	.name = "clerk-firebase",
	.source_id = "clerk_user_id",
	.target_id = "firebase_uid",
	.columns = MAPPING_COLUMNS,
	.column_list = MAPPING_COLUMN_LIST,
	.source_key = "clerk",
	.field_kind = "Firebase field",
	.uid_field = "localId",
	.email_field = "email",
	.field_column = mapping_field_column,
	.field_type = mapping_field_type,
	.load_mapping = mapping_load,
	.mapping_kinds = "a Firebase Auth export, or clerk_user_id,firebase_uid pairs",
	.options = options,
	.load_options = load_options,
	.claim_problem = claims_problem,
	.target_user = "Firebase user",
	.source_ids = "Clerk ids",
	.target_ids = "Firebase uids",
	.new_uid = new_uid,
	.import = &firebase_auth_import,
};
