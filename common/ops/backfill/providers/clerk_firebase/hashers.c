/*
 * hashers.c: Clerk's password_hasher values mapped to the hash algorithms
 * Firebase Auth imports (one algorithm, with its parameters, per
 * `firebase auth:import` call, so one file per group), the digests rewritten
 * as the base64 hash and salt Firebase reads, and the hashers Firebase cannot
 * verify (argon2, phpass, ...), whose users get no password and a reset.
 *
 * Clerk's digest forms (its API's password_hasher documentation):
 *   bcrypt                $2a$10$<salt and hash>               -> BCRYPT, the whole text
 *   scrypt_firebase       <hash>$<salt>[$key$separator$rounds$mem] -> SCRYPT (parameters: --firebase-scrypt-params)
 *   pbkdf2_sha256         pbkdf2_sha256$<rounds>$<b64 salt>$<b64 hash> -> PBKDF2_SHA256, its rounds
 *   pbkdf2_sha256_django  pbkdf2_sha256$<rounds>$<salt text>$<b64 hash> -> PBKDF2_SHA256
 *   pbkdf2_sha1           pbkdf2_sha1$<rounds>$<salt text>$<hex hash>  -> PBKDF_SHA1
 *   md5, sha256           the hex digest of the password, unsalted     -> MD5 (rounds 0), SHA256 (rounds 1)
 */
#include "ops/backfill/providers/clerk_firebase/hashers.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

/* Firebase's bounds (firebase-tools' accountImporter.js): PBKDF rounds 0..120000, SCRYPT rounds 1..8, mem 1..14. */
#define PBKDF_MAX_ROUNDS 120000

/* The SCRYPT settings: the file's absolute path (the command reads the secrets from it), rounds and mem_cost. */
static struct
{
	char *path;
	long long rounds, mem_cost;
} scrypt;

bool
hashers_have_scrypt(void)
{
	return scrypt.path != NULL;
}

/* Standard base64, padded, as Firebase's console gives the key and separator. */
static bool
is_base64(const char *s, bool may_be_empty)
{
	size_t n = strlen(s), body = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

	if (n == 0)
		return may_be_empty;
	return n % 4 == 0 && (body == n || (body >= n - 2 && strspn(s + body, "=") == n - body));
}

int
hashers_read_scrypt_params(const char *path)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	const char *key = NULL, *why = NULL;
	json_t *k, *sep, *rounds, *mem;
	char resolved[PATH_MAX];

	if (!json_is_object(root))
	{
		log_error("--firebase-scrypt-params \"%s\" is not a JSON object%s%s", path, root ? "" : ": ",
				  root ? "" : jerr.text);
		json_decref(root);
		return EXIT_BAD_INPUT;
	}
	k = json_object_get(root, "base64_signer_key");
	sep = json_object_get(root, "base64_salt_separator");
	rounds = json_object_get(root, "rounds");
	mem = json_object_get(root, "mem_cost");
	/* each checked without ever showing a value: the key and the separator are secrets */
	if (!json_is_string(k) || !is_base64(json_string_value(k), false))
		key = "base64_signer_key", why = "a non-empty base64 string";
	else if (sep && !(json_is_string(sep) && is_base64(json_string_value(sep), true)))
		key = "base64_salt_separator", why = "a base64 string";
	else if (!json_is_integer(rounds) || json_integer_value(rounds) < 1 || json_integer_value(rounds) > 8)
		key = "rounds", why = "an integer from 1 to 8";
	else if (!json_is_integer(mem) || json_integer_value(mem) < 1 || json_integer_value(mem) > 14)
		key = "mem_cost", why = "an integer from 1 to 14";
	if (key)
	{
		log_error("--firebase-scrypt-params \"%s\": \"%s\" must be %s", path, key, why);
		log_hint(
			"copy the values of the Firebase console's Authentication > Users > \"Password hash parameters\" "
			"into {\"base64_signer_key\": ..., \"base64_salt_separator\": ..., \"rounds\": ..., \"mem_cost\": ...}");
		json_decref(root);
		return EXIT_BAD_INPUT;
	}
	free(scrypt.path);
	scrypt.path = xstrdup(realpath(path, resolved) ? resolved : path);
	scrypt.rounds = json_integer_value(rounds);
	scrypt.mem_cost = json_integer_value(mem);
	json_decref(root);
	return EXIT_DONE;
}

void
hashers_create_function(PGconn *conn)
{
	/* 1. base64 of text, and of hex, on one line (encode() breaks lines every 76 characters) */
	db_exec(conn,
			"CREATE OR REPLACE FUNCTION pg_temp.phasemig_b64(t text) RETURNS text LANGUAGE sql IMMUTABLE "
			"AS $f$ SELECT translate(encode(convert_to(t, 'UTF8'), 'base64'), E'\\n', '') $f$");
	db_exec(conn,
			"CREATE OR REPLACE FUNCTION pg_temp.phasemig_hex_b64(t text) RETURNS text LANGUAGE sql IMMUTABLE "
			"AS $f$ SELECT translate(encode(decode(t, 'hex'), 'base64'), E'\\n', '') $f$");
	/* 2. a digest's group, hash and salt, or why its user needs a reset */
	{
		char *sql = str_printf(
			"CREATE OR REPLACE FUNCTION pg_temp.phasemig_password(hasher text, digest text, enabled boolean, "
			"have_scrypt boolean, OUT import_group text, OUT password_hash text, OUT salt text, "
			"OUT reset_hasher text, OUT reset_reason text) LANGUAGE plpgsql IMMUTABLE AS $f$ "
			"DECLARE b64 text := '^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'; p text[]; "
			"n bigint; BEGIN "
			/* users without a digest go with bcrypt's (BCRYPT imports a user without a hash as it is) */
			"import_group := 'bcrypt'; hasher := coalesce(btrim(hasher), ''); "
			"IF coalesce(digest, '') = '' THEN "
			"  IF enabled THEN reset_hasher := coalesce(nullif(hasher, ''), 'unknown'); "
			"    reset_reason := 'the export has no password digest'; END IF; RETURN; END IF; "
			"p := string_to_array(digest, '$'); "
			"IF hasher = 'bcrypt' AND digest ~ '^\\$2[abxy]?\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$' THEN "
			"  password_hash := pg_temp.phasemig_b64(digest); RETURN; "
			"ELSIF hasher = 'scrypt_firebase' AND cardinality(p) IN (2, 6) AND p[1] <> '' AND p[1] ~ b64 "
			"  AND p[2] ~ b64 THEN "
			"  IF have_scrypt THEN import_group := 'scrypt'; password_hash := p[1]; salt := nullif(p[2], ''); "
			"  RETURN; END IF; "
			"  reset_hasher := hasher; reset_reason := 'no --firebase-scrypt-params'; RETURN; "
			/* (a CASE in an IF's condition is parenthesized: PL/pgSQL ends the condition at its first THEN) */
			"ELSIF hasher IN ('pbkdf2_sha256', 'pbkdf2_sha256_django', 'pbkdf2_sha1') AND cardinality(p) = 4 "
			"  AND p[1] = (CASE hasher WHEN 'pbkdf2_sha1' THEN 'pbkdf2_sha1' ELSE 'pbkdf2_sha256' END) "
			"  AND p[2] ~ '^[0-9]{1,9}$' AND p[3] <> '' "
			"  AND (CASE hasher WHEN 'pbkdf2_sha1' THEN p[4] ~ '^([0-9a-fA-F]{2})+$' ELSE p[4] <> '' AND p[4] ~ b64 END) "
			"  AND (hasher <> 'pbkdf2_sha256' OR p[3] ~ b64) THEN "
			"  n := p[2]::bigint; "
			"  IF n > %d THEN reset_hasher := hasher; "
			"    reset_reason := n || ' rounds: Firebase takes at most %d'; RETURN; END IF; "
			"  import_group := CASE hasher WHEN 'pbkdf2_sha1' THEN 'pbkdf2-sha1-' ELSE 'pbkdf2-sha256-' END || n; "
			"  password_hash := CASE hasher WHEN 'pbkdf2_sha1' THEN pg_temp.phasemig_hex_b64(p[4]) ELSE p[4] END; "
			"  salt := CASE hasher WHEN 'pbkdf2_sha256' THEN p[3] ELSE pg_temp.phasemig_b64(p[3]) END; RETURN; "
			"ELSIF hasher = 'md5' AND digest ~ '^[0-9a-fA-F]{32}$' THEN "
			"  import_group := 'md5'; password_hash := pg_temp.phasemig_hex_b64(digest); RETURN; "
			"ELSIF hasher = 'sha256' AND digest ~ '^[0-9a-fA-F]{64}$' THEN "
			"  import_group := 'sha256'; password_hash := pg_temp.phasemig_hex_b64(digest); RETURN; "
			"END IF; "
			"reset_hasher := coalesce(nullif(hasher, ''), 'unknown'); "
			"reset_reason := CASE WHEN hasher IN ('bcrypt', 'scrypt_firebase', 'pbkdf2_sha256', "
			"'pbkdf2_sha256_django', 'pbkdf2_sha1', 'md5', 'sha256') "
			"THEN 'the digest is not in the form Clerk documents for its hasher' "
			"ELSE 'Firebase cannot verify this hasher' END; "
			"END $f$",
			PBKDF_MAX_ROUNDS, PBKDF_MAX_ROUNDS);

		db_exec(conn, sql);
		free(sql);
	}
}

/* S single-quoted for a POSIX shell. */
static void
shell_quote(StrBuf *sb, const char *s)
{
	sb_append(sb, "'");
	for (; *s; s++)
		if (*s == '\'')
			sb_append(sb, "'\\''");
		else
			sb_appendn(sb, s, 1);
	sb_append(sb, "'");
}

/* --NAME="$(node -p ... FILE)": a secret read from the settings file when the command runs, never printed */
static void
secret_from_file(StrBuf *sb, const char *option, const char *key)
{
	sb_printf(sb, " --%s=\"$(node -p 'require(process.argv[1]).%s || \"\"' ", option, key);
	shell_quote(sb, scrypt.path);
	sb_append(sb, ")\"");
}

char *
hashers_import_command(const char *path, const char *group)
{
	StrBuf sb;
	long rounds;

	sb_init(&sb);
	sb_append(&sb, "firebase auth:import ");
	shell_quote(&sb, path);
	if (strcmp(group, "bcrypt") == 0)
		sb_append(&sb, " --hash-algo=BCRYPT");
	else if (strcmp(group, "scrypt") == 0 && scrypt.path)
	{
		sb_append(&sb, " --hash-algo=SCRYPT");
		secret_from_file(&sb, "hash-key", "base64_signer_key");
		secret_from_file(&sb, "salt-separator", "base64_salt_separator");
		sb_printf(&sb, " --rounds=%lld --mem-cost=%lld", scrypt.rounds, scrypt.mem_cost);
	}
	else if (sscanf(group, "pbkdf2-sha256-%ld", &rounds) == 1)
		sb_printf(&sb, " --hash-algo=PBKDF2_SHA256 --rounds=%ld", rounds);
	else if (sscanf(group, "pbkdf2-sha1-%ld", &rounds) == 1)
		sb_printf(&sb, " --hash-algo=PBKDF_SHA1 --rounds=%ld", rounds);
	else if (strcmp(group, "md5") == 0)
		sb_append(&sb, " --hash-algo=MD5 --rounds=0");
	else if (strcmp(group, "sha256") == 0)
		sb_append(&sb, " --hash-algo=SHA256 --rounds=1");
	return sb_steal(&sb);
}
