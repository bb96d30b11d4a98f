/*
 * claims.h: the plan's "custom_claims" for clerk-firebase: each Firebase
 * custom claim and the path in a Clerk user's metadata (public_metadata,
 * private_metadata, unsafe_metadata, then keys separated by '.') it is read
 * from; checked when the plan is read, and carried into each generated
 * user's customAttributes.  No connection, no log: pure.
 */
#ifndef PHASEMIG_CLERK_CLAIMS_H
#define PHASEMIG_CLERK_CLAIMS_H

#include <jansson.h>

#include "ops/backfill/provider.h"

/* Firebase's limit on a user's customAttributes (the JSON text), in bytes. */
#define CLAIMS_MAX_BYTES 1000

/* Why CLAIM cannot be read from PATH (a constant sentence), or NULL when it can (IdProvider.claim_problem). */
const char *claims_problem(const char *claim, const char *path);

/*
 * The customAttributes text of the Clerk user USER whose id is ID: {"clerk_user_id": ID}
 * and every claim of CLAIMS (N) whose path USER has with a value other than null,
 * compact, keys sorted (malloc'd); NULL when USER has none of them.  A metadata
 * object of another JSON type than an object: NULL and *BAD_KEY names it.
 */
char *claims_attributes(json_t *user, const char *id, const ClaimMap *claims, int n, const char **bad_key);

#endif
