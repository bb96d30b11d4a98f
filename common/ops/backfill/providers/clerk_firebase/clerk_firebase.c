/*
 * clerk_firebase.c: the provider clerk-firebase (ops/backfill/provider.h):
 * a table's users with Clerk ids (match_column) moved to Firebase Auth
 * uids, matched from a Firebase Auth export; --clerk-export adds what Clerk
 * knows of the users given a new uid to their import file.
 */
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"

#include "core/log.h"
#include "ops/backfill/providers/clerk_firebase/firebase_uid.h"

/* --clerk-export=FILE, a phase2 option (CLI_MAPPING's group). */
static const CliOption options[] = {
	{.name = "clerk-export",
	 .has_arg = true,
	 .group = CLI_MAPPING,
	 .file = "Clerk export",
	 .arg = "FILE",
	 .help = "Clerk dashboard CSV: adds names and bcrypt password\n"
			 "digests to that import file"},
	{NULL},
};

/* The Clerk export, when given: the users' names, password digests and phone numbers for the import file. */
static int
load_options(Run *run, const Options *opts)
{
	const char *clerk_export = cli_added(opts, "clerk-export");
	long long rows = 0;
	int rc;

	if (clerk_export == NULL)
		return EXIT_DONE;
	if ((rc = mapping_load_clerk_csv(run->conn, clerk_export, &rows)) != EXIT_DONE)
		return rc;
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
	.target_user = "Firebase user",
	.source_ids = "Clerk ids",
	.target_ids = "Firebase uids",
	.new_uid = new_uid,
	.import = &firebase_auth_import,
};
