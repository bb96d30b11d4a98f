/*
 * clerk_user.c: the checks of one user of Clerk's JSON export and its row of
 * pg_temp.phasemig_clerk in COPY text format.  Pure apart from log messages.
 */
#include "ops/backfill/providers/clerk_firebase/clerk_user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/copyin.h"
#include "core/log.h"
#include "ops/backfill/providers/clerk_firebase/claims.h"

/* Clerk's OAuth providers and Firebase's provider ids for them (the ones auth:import accepts). */
static const struct
{
	const char *clerk, *firebase;
} providers[] = {{"oauth_google", "google.com"},
				 {"oauth_github", "github.com"},
				 {"oauth_facebook", "facebook.com"},
				 {"oauth_twitter", "twitter.com"},
				 {"oauth_x", "twitter.com"},
				 {"oauth_apple", "apple.com"},
				 {"oauth_microsoft", "microsoft.com"},
				 {"oauth_linkedin_oidc", "linkedin.com"},
				 {NULL, NULL}};

/* Where a user is wrong, for the message: "user_2x... (element 12)". */
typedef struct Where
{
	const char *path, *id;
	long element;
} Where;

/* KEY of OBJ as a string: NULL when absent or null; false (logged) when another type. */
static bool
get_string(json_t *obj, const char *key, const char **out, const Where *w)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v))
	{
		log_error("Clerk export \"%s\": user %s (element %ld): \"%s\" is not a string", w->path, w->id ? w->id : "?",
				  w->element, key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* KEY of OBJ as a boolean, false when absent or null; false (logged) when another type. */
static bool
get_bool(json_t *obj, const char *key, bool *out, const Where *w)
{
	json_t *v = json_object_get(obj, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_boolean(v))
	{
		log_error("Clerk export \"%s\": user %s (element %ld): \"%s\" is not a boolean", w->path, w->id, w->element,
				  key);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* KEY of OBJ as an array (an empty one when absent or null); NULL (logged) when another type. */
static json_t *
get_array(json_t *obj, const char *key, json_t *empty, const Where *w)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return empty;
	if (!json_is_array(v))
	{
		log_error("Clerk export \"%s\": user %s (element %ld): \"%s\" is not an array", w->path, w->id, w->element,
				  key);
		return NULL;
	}
	return v;
}

/* An entry's verification status is "verified". */
static bool
verified(json_t *entry)
{
	json_t *status = json_object_get(json_object_get(entry, "verification"), "status");

	return json_is_string(status) && strcmp(json_string_value(status), "verified") == 0;
}

/*
 * The VALUE_KEY of the entry of LIST whose id is PRIMARY_ID (NEED_VERIFIED:
 * only a verified one, else the first verified entry); NULL when none.
 */
static const char *
primary_of(json_t *list, const char *primary_id, const char *value_key, bool need_verified)
{
	size_t i;
	json_t *e;
	const char *first_verified = NULL;

	json_array_foreach(list, i, e)
	{
		json_t *id = json_object_get(e, "id"), *value = json_object_get(e, value_key);

		if (!json_is_string(value) || (need_verified && !verified(e)))
			continue;
		if (primary_id && json_is_string(id) && strcmp(json_string_value(id), primary_id) == 0)
			return json_string_value(value);
		if (first_verified == NULL && verified(e))
			first_verified = json_string_value(value);
	}
	return need_verified ? first_verified : NULL;
}

static const char *
firebase_provider(const char *clerk)
{
	for (int i = 0; clerk && providers[i].clerk; i++)
		if (strcmp(providers[i].clerk, clerk) == 0)
			return providers[i].firebase;
	return NULL;
}

/* "First Last" of an external account, or NULL. */
static char *
full_name(json_t *acct)
{
	const char *first = json_string_value(json_object_get(acct, "first_name"));
	const char *last = json_string_value(json_object_get(acct, "last_name"));
	char *name =
		str_printf("%s%s%s", first ? first : "", first && first[0] && last && last[0] ? " " : "", last ? last : "");

	if (name[0] == '\0')
	{
		free(name);
		return NULL;
	}
	return name;
}

/* Firebase's providerUserInfo array of the user's external accounts (its ids: Firebase's; rawId: the provider's). */
static char *
provider_user_info(json_t *accounts, long *other_providers)
{
	json_t *infos = json_array();
	size_t i;
	json_t *acct;
	char *text;

	json_array_foreach(accounts, i, acct)
	{
		const char *provider = firebase_provider(json_string_value(json_object_get(acct, "provider")));
		json_t *raw = json_object_get(acct, "provider_user_id");
		json_t *info;
		const char *email = json_string_value(json_object_get(acct, "email_address"));
		const char *photo = json_string_value(json_object_get(acct, "image_url"));
		char *name;

		if (provider == NULL || !json_is_string(raw) || json_string_length(raw) == 0)
		{
			(*other_providers)++;
			continue;
		}
		info = json_pack("{s:s, s:O}", "providerId", provider, "rawId", raw);
		if (email && email[0])
			json_object_set_new(info, "email", json_string(email));
		if ((name = full_name(acct)) != NULL)
			json_object_set_new(info, "displayName", json_string(name));
		if (photo && photo[0])
			json_object_set_new(info, "photoUrl", json_string(photo));
		free(name);
		json_array_append_new(infos, info);
	}
	text = json_array_size(infos) ? json_dumps(infos, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(infos);
	return text;
}

static void
field(StrBuf *row, int *n, const char *value)
{
	if ((*n)++ > 0)
		sb_appendn(row, "\t", 1);
	copyin_escape(row, value);
}

bool
clerk_user_row(StrBuf *row, json_t *user, long element, const char *path, const ClaimMap *claims, int n,
			   long *other_providers)
{
	Where w = {.path = path, .element = element};
	const char *first, *last, *username, *primary_email_id, *primary_phone_id, *digest, *hasher, *image;
	bool banned, totp, backup, password, has_image = true;
	json_t *empty = json_array(), *emails, *phones, *accounts;
	char *social = NULL, *attrs = NULL, elem[24];
	const char *bad_metadata;
	StrBuf mfa;
	int n_fields = 0;
	bool ok = false;

	/* 1. the id, then every key of the right type */
	if (!get_string(user, "id", &w.id, &w))
		goto done;
	if (w.id == NULL || w.id[0] == '\0')
	{
		log_error("Clerk export \"%s\": element %ld has no \"id\"", path, element);
		goto done;
	}
	if (!get_string(user, "first_name", &first, &w) || !get_string(user, "last_name", &last, &w)
		|| !get_string(user, "username", &username, &w)
		|| !get_string(user, "primary_email_address_id", &primary_email_id, &w)
		|| !get_string(user, "primary_phone_number_id", &primary_phone_id, &w)
		|| !get_string(user, "password_digest", &digest, &w) || !get_string(user, "password_hasher", &hasher, &w)
		|| !get_string(user, "image_url", &image, &w) || !get_bool(user, "banned", &banned, &w)
		|| !get_bool(user, "totp_enabled", &totp, &w) || !get_bool(user, "backup_code_enabled", &backup, &w)
		|| !get_bool(user, "password_enabled", &password, &w))
		goto done;
	if (json_is_false(json_object_get(user, "has_image")))
		has_image = false; /* Clerk's image_url is then its default avatar: not carried */
	if ((emails = get_array(user, "email_addresses", empty, &w)) == NULL
		|| (phones = get_array(user, "phone_numbers", empty, &w)) == NULL
		|| (accounts = get_array(user, "external_accounts", empty, &w)) == NULL)
		goto done;
	/* the plan's claims from the user's metadata, an object each */
	attrs = claims_attributes(user, w.id, claims, n, &bad_metadata);
	if (bad_metadata)
	{
		log_error("Clerk export \"%s\": user %s (element %ld): \"%s\" is not an object", path, w.id, element,
				  bad_metadata);
		goto done;
	}
	/* 2. the row: the primary email, the verified phone, the social accounts, the factors Firebase cannot take */
	social = provider_user_info(accounts, other_providers);
	sb_init(&mfa);
	if (totp)
		sb_append(&mfa, "totp");
	if (backup)
		sb_printf(&mfa, "%sbackup_code", totp ? ", " : "");
	snprintf(elem, sizeof elem, "%ld", element);
	field(row, &n_fields, w.id);
	field(row, &n_fields, first);
	field(row, &n_fields, last);
	field(row, &n_fields, username);
	field(row, &n_fields, primary_of(emails, primary_email_id, "email_address", false));
	field(row, &n_fields, primary_of(phones, primary_phone_id, "phone_number", true));
	field(row, &n_fields, digest);
	field(row, &n_fields, hasher);
	field(row, &n_fields, has_image ? image : NULL);
	field(row, &n_fields, banned ? "t" : "f");
	field(row, &n_fields, social);
	field(row, &n_fields, mfa.len ? mfa.data : NULL);
	field(row, &n_fields, password || (digest && digest[0]) ? "t" : "f");
	field(row, &n_fields, attrs);
	field(row, &n_fields, elem);
	sb_appendn(row, "\n", 1);
	sb_free(&mfa);
	ok = true;
done:
	free(social);
	free(attrs);
	json_decref(empty);
	return ok;
}
