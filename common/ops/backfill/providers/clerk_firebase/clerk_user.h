/*
 * clerk_user.h: one user of Clerk's JSON export (its API's and CLI's user
 * object) as one COPY text row of pg_temp.phasemig_clerk, built without a
 * connection: its social accounts as Firebase's providerUserInfo, its ban,
 * its verified phone number, its second factors and the plan's custom
 * claims from its metadata.
 */
#ifndef PHASEMIG_CLERK_USER_H
#define PHASEMIG_CLERK_USER_H

#include <jansson.h>
#include <stdbool.h>

#include "core/strbuf.h"
#include "ops/backfill/provider.h"

/* The columns of pg_temp.phasemig_clerk a row fills, in its order. */
#define CLERK_JSON_COLUMNS                                                                                             \
	"id, first_name, last_name, username, primary_email_address, primary_phone_number, password_digest, "              \
	"password_hasher, image_url, banned, provider_user_info, mfa, password_enabled, custom_attributes, element"

/*
 * Append to ROW the row of USER, the ELEMENT'th of the file PATH (for
 * messages): tab-separated, escaped for COPY's text format, ending in a
 * newline; its customAttributes with the plan's CLAIMS (N) it has.  A social
 * account of a provider Firebase does not import is counted in
 * *OTHER_PROVIDERS.  Returns false, logged and ROW unchanged, when the user
 * has no id or a key of the wrong JSON type.
 */
bool clerk_user_row(StrBuf *row, json_t *user, long element, const char *path, const ClaimMap *claims, int n,
					long *other_providers);

#endif
