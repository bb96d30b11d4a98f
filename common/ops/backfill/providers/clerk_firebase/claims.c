/*
 * claims.c: see claims.h.  The reserved names are those Firebase's Admin SDK
 * refuses in a user's custom claims (RESERVED_CLAIMS: the ID token's own
 * claims), and clerk_user_id, which phasemig writes itself and matches users
 * on when the project is exported again.
 */
#include "ops/backfill/providers/clerk_firebase/claims.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

static const char *const reserved[] = {"acr", "amr",    "at_hash", "aud",      "auth_time",     "azp",
									   "cnf", "c_hash", "exp",     "iat",      "iss",           "jti",
									   "nbf", "nonce",  "sub",     "firebase", "clerk_user_id", NULL};

/* The metadata objects of Clerk's user a path may start with. */
static const char *const roots[] = {"public_metadata", "private_metadata", "unsafe_metadata", NULL};

/* Whether the first segment of PATH (up to '.' or its end) is one of ROOTS; *LEN its length. */
static bool
known_root(const char *path, size_t *len)
{
	*len = strcspn(path, ".");
	for (int i = 0; roots[i]; i++)
		if (strlen(roots[i]) == *len && strncmp(roots[i], path, *len) == 0)
			return true;
	return false;
}

const char *
claims_problem(const char *claim, const char *path)
{
	size_t len;

	/* 1. the claim's name: one Firebase (or phasemig) does not own */
	if (claim[0] == '\0')
		return "a claim needs a name";
	for (int i = 0; reserved[i]; i++)
		if (strcmp(reserved[i], claim) == 0)
			return "a reserved claim: Firebase refuses acr, amr, at_hash, aud, auth_time, azp, cnf, c_hash, exp, "
				   "iat, iss, jti, nbf, nonce, sub and firebase, and phasemig writes clerk_user_id itself";
	/* 2. the path: a metadata object, then keys, none empty */
	if (!known_root(path, &len))
		return "the path must start with public_metadata, private_metadata or unsafe_metadata (Clerk's user "
			   "metadata), then keys separated by \".\"";
	if (strstr(path, "..") || path[strlen(path) - 1] == '.')
		return "the path has an empty key (\"..\" or a final \".\")";
	return NULL;
}

/* The value at PATH in USER (segments split on '.'), or NULL; *BAD_KEY when its metadata object is not one. */
static json_t *
value_at(json_t *user, const char *path, const char **bad_key)
{
	char *copy = xstrdup(path), *save = NULL;
	json_t *v = user;

	for (char *key = strtok_r(copy, ".", &save); key && v; key = strtok_r(NULL, ".", &save))
	{
		json_t *next = json_is_object(v) ? json_object_get(v, key) : NULL;

		/* the metadata object itself must be an object (or absent, or null); deeper, a non-object has no key */
		if (v == user && next && !json_is_object(next) && !json_is_null(next))
		{
			for (int i = 0; roots[i]; i++)
				if (strcmp(roots[i], key) == 0)
					*bad_key = roots[i];
			next = NULL;
		}
		v = next;
	}
	free(copy);
	return v && !json_is_null(v) ? v : NULL;
}

char *
claims_attributes(json_t *user, const char *id, const ClaimMap *claims, int n, const char **bad_key)
{
	json_t *attrs = json_object();
	char *text = NULL;

	*bad_key = NULL;
	for (int i = 0; i < n && *bad_key == NULL; i++)
	{
		json_t *v = value_at(user, claims[i].path, bad_key);

		if (v)
			json_object_set(attrs, claims[i].claim, v);
	}
	/* 2. as written in the import file: compact, keys sorted, the Clerk id with them */
	if (*bad_key == NULL && json_object_size(attrs) > 0)
	{
		json_object_set_new(attrs, "clerk_user_id", json_string(id));
		text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
	}
	json_decref(attrs);
	return text;
}
