/*
 * auth_import.c: the import files of the clerk-firebase provider, the JSON
 * `firebase auth:import` reads, one per hash algorithm (hashers.c): each
 * generated user with its email, and, when the Clerk export was given
 * (--clerk-export), its name, password hash and salt, phone number, photo,
 * social accounts (providerUserInfo) and whether it is banned (disabled);
 * its Clerk id in customAttributes, with the claims the plan's
 * custom_claims read from its metadata.  ops/backfill/import_file.c writes the
 * files; the users left without a password and those with a second factor
 * Firebase cannot import are listed beside them (the lists below).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"
#include "ops/backfill/providers/clerk_firebase/hashers.h"

/* A field's value unless --skip-invalid-values left it out of the import (import_check.c). */
#define KEPT(field, expr) "CASE WHEN '" field "' = ANY(o.fields) THEN NULL ELSE " expr " END"

/*
 * The users, one row each with the columns write_user reads by name: the
 * fields of the Clerk export when it was given, else only ids and email;
 * ordered by their file (import_group).
 */
static char *
users_sql(const char *generated, const char *which, const char *qtable, const char *q_uid, const char *q_email,
		  const Options *opts)
{
	bool with_clerk = cli_added(opts, "clerk-export") != NULL;
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "SELECT DISTINCT ON (import_group, g.firebase_uid) ");
	/*
	 * a user whose password Firebase cannot verify goes to a file of its own,
	 * imported without a hash and listed for a reset: the files then
	 * partition the generated users by what their password needs
	 */
	sb_append(&sb, with_clerk ? "CASE WHEN pw.reset_hasher IS NOT NULL THEN 'password-reset' ELSE pw.import_group END "
								"AS import_group"
							  : "'bcrypt'::text AS import_group");
	sb_append(&sb, ", g.firebase_uid AS firebase_uid, g.clerk_user_id AS clerk_user_id, ");
	if (q_email)
		/*
		 * trimmed, as the pre-flight checked it (import_check.c), and
		 * lower-cased, as Firebase stores it (its import lower-cases every
		 * email): the file is then what the accounts will hold, so that a
		 * read-back compares equal, and the duplicate check's lower() is the
		 * value written.  The table's own email keeps its case.
		 */
		sb_printf(&sb, KEPT("email", "lower(nullif(btrim(t.%s::text), ''))") " AS email, ", q_email);
	else
		sb_append(&sb, "NULL::text AS email, ");
	if (with_clerk)
		sb_append(
			&sb,
			KEPT("displayName", "nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), '')") " AS display_name, " KEPT(
				"photoUrl",
				"c.image_url") " AS photo_url, " KEPT("phoneNumber",
													  "c.primary_phone_number") " AS phone_number, "
																				"c.banned AS disabled, c.provider_user_info::text AS provider_user_info, "
																				"pw.password_hash, pw.salt, pw.reset_hasher, pw.reset_reason, c.mfa, " KEPT(
																					"customAttributes",
																					"c.custom_attributes") " AS custom_attributes ");
	else
		sb_append(&sb,
				  "NULL AS display_name, NULL AS photo_url, NULL AS phone_number, NULL::boolean AS disabled, "
				  "NULL AS provider_user_info, NULL AS password_hash, NULL AS salt, NULL AS reset_hasher, "
				  "NULL AS reset_reason, NULL AS mfa, NULL AS custom_attributes ");
	sb_printf(&sb, "FROM %s g ", generated);
	sb_printf(&sb, "JOIN %s t ON t.%s = g.firebase_uid ", qtable, q_uid);
	sb_append(&sb,
			  "LEFT JOIN (SELECT clerk_user_id, array_agg(field) AS fields FROM pg_temp.phasemig_import_omit "
			  "GROUP BY 1) o ON o.clerk_user_id = g.clerk_user_id ");
	if (with_clerk)
		sb_printf(&sb,
				  "LEFT JOIN pg_temp.phasemig_clerk c ON c.id = g.clerk_user_id "
				  "LEFT JOIN LATERAL pg_temp.phasemig_password(c.password_hasher, c.password_digest, "
				  "c.password_enabled, %s) pw ON true ",
				  hashers_have_scrypt() ? "true" : "false");
	sb_printf(&sb, "WHERE %s ", which);
	sb_append(&sb, "ORDER BY import_group, g.firebase_uid");
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

/*
 * customAttributes: the text the Clerk export's reader built with the plan's
 * claims (claims.c), whose size the pre-flight checked (import_check.c), as
 * it is; else (no claims, or --skip-invalid-values left them out) the Clerk
 * id alone.
 */
static char *
custom_attributes(const PGresult *res, int i)
{
	const char *built = value_of(res, i, "custom_attributes");
	json_t *attrs;
	char *text;

	if (built)
		return xstrdup(built);
	attrs = json_pack("{s:s}", "clerk_user_id", PQgetvalue(res, i, PQfnumber(res, "clerk_user_id")));
	text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(attrs);
	return text;
}

/* One user of a users_sql row as the JSON auth:import reads (only the keys it accepts). */
static void
write_user(FILE *fp, const PGresult *res, int i, bool first)
{
	json_t *u = json_object();
	const char *disabled = value_of(res, i, "disabled");
	const char *social = value_of(res, i, "provider_user_info");
	char *attrs, *text;

	set_if(u, "localId", value_of(res, i, "firebase_uid"));
	set_if(u, "email", value_of(res, i, "email"));
	set_if(u, "passwordHash", value_of(res, i, "password_hash"));
	set_if(u, "salt", value_of(res, i, "salt"));
	set_if(u, "displayName", value_of(res, i, "display_name"));
	set_if(u, "photoUrl", value_of(res, i, "photo_url"));
	set_if(u, "phoneNumber", value_of(res, i, "phone_number"));
	if (disabled && strcmp(disabled, "t") == 0)
		json_object_set_new(u, "disabled", json_true());
	attrs = custom_attributes(res, i);
	json_object_set_new(u, "customAttributes", json_string(attrs));
	if (social)
	{
		json_t *infos = json_loads(social, 0, NULL);

		if (json_array_size(infos) > 0)
			json_object_set(u, "providerUserInfo", infos);
		json_decref(infos);
	}
	text = json_dumps(u, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fprintf(fp, "%s\n%s", first ? "" : ",", text);
	free(text);
	free(attrs);
	json_decref(u);
}

/* The users of USERS whose password Firebase cannot take: never the digest. */
static char *
reset_sql(const char *users)
{
	return str_printf("SELECT firebase_uid AS \"localId\", email, reset_hasher AS hasher, reset_reason AS reason "
					  "FROM (%s) u WHERE reset_hasher IS NOT NULL ORDER BY 1",
					  users);
}

/* The users of USERS with a second factor Firebase cannot import (TOTP, backup codes). */
static char *
mfa_sql(const char *users)
{
	return str_printf("SELECT firebase_uid AS \"localId\", email, mfa AS second_factors FROM (%s) u "
					  "WHERE mfa IS NOT NULL ORDER BY 1",
					  users);
}

static const ImportList lists[] = {
	{.suffix = "-password-reset.csv",
	 .key = "password_reset",
	 .what = "users are imported without a password Firebase can verify and need a password reset",
	 .sql = reset_sql},
	{.suffix = "-mfa-reenrol.csv",
	 .key = "mfa_reenrol",
	 .what = "users had a second factor Firebase cannot import (TOTP, backup codes) and must enrol again",
	 .sql = mfa_sql},
	{NULL},
};

const ImportFormat firebase_auth_import = {
	.suffix = "-firebase-import",
	.extension = ".json",
	.users_sql = users_sql,
	.head = "{\"users\": [",
	.tail = "]}",
	.user = write_user,
	.import_command = hashers_import_command,
	.check_users = import_check_users,
	.lists = lists,
};
