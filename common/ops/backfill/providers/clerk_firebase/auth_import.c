/*
 * auth_import.c: the import file of the clerk-firebase provider, the JSON
 * `firebase auth:import` reads: each generated user with its email, and,
 * when the Clerk export was given (--clerk-export), the name, the bcrypt
 * password digest (base64) and the phone number Clerk has for it; its Clerk
 * id in customAttributes.  ops/backfill/import_file.c writes the file.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/providers/clerk_firebase/base64.h"
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"

/*
 * The users, one row each with the columns write_user reads by name: the
 * fields of the Clerk export when it was given, else only ids and email.
 */
static char *
users_sql(const char *generated, const char *qtable, const char *q_uid, const char *q_email, const Options *opts)
{
	bool with_clerk = cli_added(opts, "clerk-export") != NULL;
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "SELECT DISTINCT ON (g.firebase_uid) g.firebase_uid AS firebase_uid, ");
	if (q_email)
		sb_printf(&sb, "t.%s::text AS email, ", q_email);
	else
		sb_append(&sb, "NULL::text AS email, ");
	sb_append(&sb, "g.clerk_user_id AS clerk_user_id, ");
	if (with_clerk)
		sb_append(&sb,
				  "nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), '') AS display_name, "
				  "CASE WHEN c.password_hasher = 'bcrypt' THEN c.password_digest END AS password_digest, "
				  "c.primary_phone_number AS phone_number ");
	else
		sb_append(&sb, "NULL AS display_name, NULL AS password_digest, NULL AS phone_number ");
	sb_printf(&sb, "FROM %s g ", generated);
	sb_append(&sb, "JOIN pg_temp.phasemig_to_import i ON i.firebase_uid = g.firebase_uid ");
	sb_printf(&sb, "JOIN %s t ON t.%s = g.firebase_uid ", qtable, q_uid);
	if (with_clerk)
		sb_append(&sb, "LEFT JOIN pg_temp.phasemig_clerk c ON c.id = g.clerk_user_id ");
	sb_append(&sb, "ORDER BY g.firebase_uid");
	return sb_steal(&sb);
}

/* ROW's value of column NAME, or NULL when it is NULL or empty (or the query has no such column). */
static const char *
value_of(const PGresult *res, int row, const char *name)
{
	int col = PQfnumber(res, name);

	if (col < 0 || PQgetisnull(res, row, col) || PQgetvalue(res, row, col)[0] == '\0')
		return NULL;
	return PQgetvalue(res, row, col);
}

static void
set_if(json_t *obj, const char *key, const char *value)
{
	if (value)
		json_object_set_new(obj, key, json_string(value));
}

/* One user of a users_sql row as the JSON auth:import reads; counts digests in *HASHES. */
static void
write_user(FILE *fp, const PGresult *res, int i, bool first, long long *hashes)
{
	json_t *u = json_object();
	json_t *attrs = json_object();
	const char *digest = value_of(res, i, "password_digest");
	const char *phone = value_of(res, i, "phone_number");
	char *attrs_text, *text;

	set_if(u, "localId", value_of(res, i, "firebase_uid"));
	set_if(u, "email", value_of(res, i, "email"));
	set_if(u, "displayName", value_of(res, i, "display_name"));
	if (digest)
	{
		char *b64 = base64_encode((const unsigned char *) digest, strlen(digest));

		json_object_set_new(u, "passwordHash", json_string(b64));
		free(b64);
		(*hashes)++;
	}
	/* Firebase takes phone numbers in E.164 form only */
	if (phone && phone[0] == '+')
		set_if(u, "phoneNumber", phone);
	json_object_set_new(attrs, "clerk_user_id", json_string(PQgetvalue(res, i, PQfnumber(res, "clerk_user_id"))));
	attrs_text = json_dumps(attrs, JSON_COMPACT);
	json_object_set_new(u, "customAttributes", json_string(attrs_text));
	text = json_dumps(u, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fprintf(fp, "%s\n%s", first ? "" : ",", text);
	free(text);
	free(attrs_text);
	json_decref(attrs);
	json_decref(u);
}

/* bcrypt digests need the hash algorithm named on the command line */
static void
import_hint(const char *path, long long hashes)
{
	log_hint("import them with: firebase auth:import %s%s", path, hashes > 0 ? " --hash-algo=BCRYPT --rounds=10" : "");
}

const ImportFormat firebase_auth_import = {
	.suffix = "-firebase-import.json",
	.users_sql = users_sql,
	.head = "{\"users\": [",
	.tail = "]}",
	.user = write_user,
	.import_hint = import_hint,
};
