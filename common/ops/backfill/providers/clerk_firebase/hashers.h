/*
 * hashers.h: Clerk's password hashers as Firebase Auth imports them: which
 * file (hash algorithm) a user's digest goes to, in what form, or why it
 * cannot go (the user then needs a password reset); the Firebase SCRYPT
 * parameters of --firebase-scrypt-params; the command that imports each file.
 */
#ifndef PHASEMIG_CLERK_HASHERS_H
#define PHASEMIG_CLERK_HASHERS_H

#include <libpq-fe.h>
#include <stdbool.h>

/*
 * Read the SCRYPT settings file PATH (Firebase console's "password hash
 * parameters" as JSON: base64_signer_key, base64_salt_separator, rounds,
 * mem_cost).  Returns EXIT_DONE, or EXIT_BAD_INPUT logged naming the key
 * (never its value).
 */
int hashers_read_scrypt_params(const char *path);
/* Whether SCRYPT parameters were given. */
bool hashers_have_scrypt(void);

/*
 * Create pg_temp.phasemig_password(hasher, digest, password_enabled, scrypt)
 * RETURNS (import_group, password_hash, salt, reset_hasher, reset_reason):
 * the import file's group and the base64 hash and salt Firebase reads, or
 * the reason the user needs a reset.  Never logged with a digest.
 */
void hashers_create_function(PGconn *conn);

/* `firebase auth:import PATH ...` for the file of GROUP (malloc'd; the secrets read from the settings file). */
char *hashers_import_command(const char *path, const char *group);

#endif
