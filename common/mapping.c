/*
 * mapping.c: turns each user of a Firebase Auth export (or each pair of a
 * plain mapping) into a COPY row of pg_temp.phasemig_staging.  Matching and
 * conflict checks happen in SQL afterwards (op_backfill.c).
 */
#include "mapping.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "copyin.h"
#include "db.h"
#include "jstream.h"
#include "log.h"
#include "strbuf.h"

#define MAX_UID_LENGTH 128

/* Each Firebase field: its staging column and that column's type (MAPPING_COLUMNS). */
static const struct
{
	const char *field;
	const char *column;
	const char *type;
} field_columns[] = {
	{"localId", "firebase_uid", "text"},
	{"email", "email", "text"},
	{"emailVerified", "email_verified", "boolean"},
	{"displayName", "display_name", "text"},
	{"photoUrl", "photo_url", "text"},
	{"phoneNumber", "phone_number", "text"},
	{"lastSignedInAt", "last_signed_in_at", "timestamptz"},
	{"createdAt", "created_at", "timestamptz"},
	{"disabled", "disabled", "boolean"},
	{NULL, NULL, NULL}
};

const char *
mapping_field_column(const char *field)
{
	for (int i = 0; field_columns[i].field; i++)
		if (strcmp(field_columns[i].field, field) == 0)
			return field_columns[i].column;
	return NULL;
}

const char *
mapping_field_type(const char *field)
{
	for (int i = 0; field_columns[i].field; i++)
		if (strcmp(field_columns[i].field, field) == 0)
			return field_columns[i].type;
	return NULL;
}

typedef enum
{
	FORMAT_FIREBASE,
	FORMAT_JSON_PAIRS,
	FORMAT_CSV
} MappingFormat;

/* The first non-blank byte tells the format: '{' export, '[' pairs, else CSV. */
static int
detect_format(const char *path, MappingFormat *format)
{
	FILE *fp = fopen(path, "r");
	int c;

	if (fp == NULL)
	{
		log_error("could not open mapping file \"%s\": %s", path, strerror(errno));
		return EXIT_BAD_INPUT;
	}
	do
		c = getc(fp);
	while (c != EOF && isspace(c));
	fclose(fp);
	if (c == EOF)
	{
		log_error("mapping file \"%s\" is empty", path);
		return EXIT_BAD_INPUT;
	}
	*format = c == '{' ? FORMAT_FIREBASE : c == '[' ? FORMAT_JSON_PAIRS : FORMAT_CSV;
	return EXIT_DONE;
}

static const char *
opt_string(json_t *user, const char *key)
{
	json_t *v = json_object_get(user, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "a number", "an object", ...: what a JSON value is, for messages. */
static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			return "an object";
		case JSON_ARRAY:
			return "an array";
		case JSON_STRING:
			return "a string";
		case JSON_INTEGER:
		case JSON_REAL:
			return "a number";
		case JSON_TRUE:
		case JSON_FALSE:
			return "a boolean";
		default:
			return "null";
	}
}

/* Record in BAD (field -> reason) that KEY's value is unusable. */
static void
mark_invalid(json_t *bad, const char *key, const char *fmt, const char *arg)
{
	char reason[128];

	snprintf(reason, sizeof reason, fmt, arg);
	json_object_set_new(bad, key, json_string(reason));
}

/*
 * KEY's string value; NULL when absent or JSON null, and NULL with the key
 * marked in BAD when it is another type.
 */
static const char *
field_string(json_t *user, const char *key, json_t *bad)
{
	json_t *v = json_object_get(user, key);

	if (v != NULL && !json_is_null(v) && !json_is_string(v))
		mark_invalid(bad, key, "%s, not a string", json_kind(v));
	return opt_string(user, key);
}

/* KEY's boolean as "t" or "f"; another type is marked in BAD. */
static const char *
field_bool(json_t *user, const char *key, json_t *bad)
{
	json_t *v = json_object_get(user, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_boolean(v))
	{
		mark_invalid(bad, key, "%s, not a boolean", json_kind(v));
		return NULL;
	}
	return json_is_true(v) ? "t" : "f";
}

/* Latest epoch milliseconds accepted: 9999-12-31 23:59:59.999 UTC. */
#define MAX_EPOCH_MS 253402300799999LL

/*
 * KEY's epoch milliseconds (a string of digits in exports; a JSON integer is
 * accepted too) as a timestamptz literal in BUF.  Anything else, or a moment
 * before 1970 or after year 9999, is marked in BAD and gives NULL.
 */
static const char *
field_epoch_ms(json_t *user, const char *key, char *buf, size_t size, json_t *bad)
{
	json_t *v = json_object_get(user, key);
	long long ms;
	time_t secs;
	struct tm tm;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_integer(v))
		ms = json_integer_value(v);
	else if (json_is_string(v))
	{
		const char *s = json_string_value(v);
		char *end;

		errno = 0;
		ms = strtoll(s, &end, 10);
		if (errno == ERANGE)
			ms = s[0] == '-' ? -1 : LLONG_MAX;	/* out of range, below */
		else if (*end != '\0' || end == s || !isdigit((unsigned char) s[0]))
		{
			mark_invalid(bad, key, "\"%.40s\" is not epoch milliseconds", s);
			return NULL;
		}
	}
	else
	{
		mark_invalid(bad, key, "%s, not a string of epoch milliseconds", json_kind(v));
		return NULL;
	}
	if (ms < 0 || ms > MAX_EPOCH_MS)
	{
		mark_invalid(bad, key, "%s epoch milliseconds: out of range (1970 to 9999)", ms < 0 ? "negative" : "too many");
		return NULL;
	}
	secs = (time_t) (ms / 1000);
	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%03lld+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
	return buf;
}

/* The clerk_user_id inside customAttributes, a string that holds JSON. */
static char *
clerk_id_from_attributes(json_t *user, long element, long *bad_attributes)
{
	const char *attrs = opt_string(user, "customAttributes");
	json_error_t jerr;
	json_t *obj;
	char *id = NULL;

	if (attrs == NULL)
		return NULL;
	obj = json_loads(attrs, 0, &jerr);
	if (!json_is_object(obj))
	{
		if ((*bad_attributes)++ < 10)
			log_warning("element %ld: customAttributes is not a JSON object (%s); matching this user by email",
						element, obj ? "not an object" : jerr.text);
	}
	else if (json_is_string(json_object_get(obj, "clerk_user_id")))
		id = xstrdup(json_string_value(json_object_get(obj, "clerk_user_id")));
	json_decref(obj);
	return id;
}

static bool
valid_uid(const char *uid, long element, const char *path)
{
	if (uid == NULL || uid[0] == '\0')
	{
		log_error("mapping file \"%s\": element %ld has no localId / firebase_uid", path, element);
		return false;
	}
	if (strlen(uid) > MAX_UID_LENGTH)
	{
		log_error("mapping file \"%s\": element %ld: firebase uid longer than %d characters", path, element,
				  MAX_UID_LENGTH);
		return false;
	}
	return true;
}

/*
 * One Firebase user as a staging row; false (logged) when it is unusable.
 * A field of the wrong JSON type or out of range is staged as NULL and named
 * in the row's "invalid" object, for phase2 to refuse (see value_check.c).
 */
static bool
firebase_row(CopyIn *ci, json_t *user, long element, const char *path, long *bad_attributes)
{
	const char *uid = opt_string(user, "localId");
	json_t *bad = json_object();
	char *clerk, *invalid = NULL;
	char last[96], created[96], elem[24];

	if (!valid_uid(uid, element, path))
	{
		json_decref(bad);
		return false;
	}
	clerk = clerk_id_from_attributes(user, element, bad_attributes);
	snprintf(elem, sizeof elem, "%ld", element);
	copyin_field(ci, uid);
	copyin_field(ci, clerk);
	copyin_field(ci, field_string(user, "email", bad));
	copyin_field(ci, NULL);		/* email_norm: set in SQL, see MAPPING_EMAIL_NORM */
	copyin_field(ci, field_bool(user, "emailVerified", bad));
	copyin_field(ci, field_string(user, "displayName", bad));
	copyin_field(ci, field_string(user, "photoUrl", bad));
	copyin_field(ci, field_string(user, "phoneNumber", bad));
	copyin_field(ci, field_epoch_ms(user, "lastSignedInAt", last, sizeof last, bad));
	copyin_field(ci, field_epoch_ms(user, "createdAt", created, sizeof created, bad));
	copyin_field(ci, field_bool(user, "disabled", bad));
	copyin_field(ci, "file");
	copyin_field(ci, elem);
	if (json_object_size(bad) > 0)
		invalid = json_dumps(bad, JSON_COMPACT | JSON_SORT_KEYS);
	copyin_field(ci, invalid);
	free(invalid);
	json_decref(bad);
	free(clerk);
	return copyin_end_row(ci);
}

/* One {clerk_user_id, firebase_uid} pair as a staging row. */
static bool
pair_row(CopyIn *ci, json_t *pair, long element, const char *path)
{
	const char *clerk = opt_string(pair, "clerk_user_id");
	const char *uid = opt_string(pair, "firebase_uid");
	const char *key;
	json_t *value;
	char elem[24];

	json_object_foreach(pair, key, value)
	{
		(void) value;
		if (strcmp(key, "clerk_user_id") != 0 && strcmp(key, "firebase_uid") != 0)
		{
			log_error("mapping file \"%s\": element %ld: unknown key \"%s\" (expected clerk_user_id and "
					  "firebase_uid)", path, element, key);
			return false;
		}
	}
	if (clerk == NULL || clerk[0] == '\0')
	{
		log_error("mapping file \"%s\": element %ld has no clerk_user_id string", path, element);
		return false;
	}
	if (!valid_uid(uid, element, path))
		return false;
	snprintf(elem, sizeof elem, "%ld", element);
	copyin_field(ci, uid);
	copyin_field(ci, clerk);
	for (int i = 0; i < 9; i++)
		copyin_field(ci, NULL);
	copyin_field(ci, "file");
	copyin_field(ci, elem);
	copyin_field(ci, NULL);		/* invalid */
	return copyin_end_row(ci);
}

static int
load_json(PGconn *conn, const char *path, MappingFormat format, long long *loaded)
{
	JStream js;
	CopyIn ci;
	json_t *elem;
	int rc;
	long bad_attributes = 0;
	const char *failure = NULL;

	if (!jstream_open(&js, path, format == FORMAT_FIREBASE ? "users" : NULL))
	{
		log_error("mapping file \"%s\" is not a %s: %s", path,
				  format == FORMAT_FIREBASE ? "Firebase Auth export" : "JSON array of mappings", js.error);
		jstream_close(&js);
		return EXIT_BAD_INPUT;
	}
	if (!copyin_begin(&ci, conn, "COPY pg_temp.phasemig_staging (" MAPPING_COLUMN_LIST ", invalid) FROM STDIN"))
	{
		jstream_close(&js);
		return EXIT_FAILED;
	}
	while ((rc = jstream_next(&js, &elem)) == 1)
	{
		bool ok;

		if (!json_is_object(elem))
			ok = false;
		else if (format == FORMAT_FIREBASE)
			ok = firebase_row(&ci, elem, js.element, path, &bad_attributes);
		else
			ok = pair_row(&ci, elem, js.element, path);
		json_decref(elem);
		if (!ok)
		{
			failure = "bad element";
			break;
		}
		if (js.element % 100000 == 0)
			log_progress(false, "read %ld users from \"%s\"", js.element, path);
	}
	log_progress_end();
	if (rc < 0 && js.oversized)
	{
		log_error("mapping file \"%s\": %s", path, js.error);
		failure = "element too large";
	}
	else if (rc < 0)
	{
		log_error("mapping file \"%s\" is malformed: %s", path, js.error);
		failure = "malformed input";
	}
	jstream_close(&js);
	if (!copyin_finish(&ci, failure))
		return failure && PQstatus(conn) == CONNECTION_OK ? EXIT_BAD_INPUT : EXIT_FAILED;
	if (bad_attributes > 10)
		log_warning("%ld users in all had unreadable customAttributes", bad_attributes);
	{
		char *norm = str_printf("UPDATE pg_temp.phasemig_staging SET email_norm = nullif(" MAPPING_EMAIL_NORM("")
								", '') WHERE email IS NOT NULL", "email");

		db_exec(conn, norm);
		free(norm);
	}
	*loaded = ci.rows;
	return EXIT_DONE;
}

/*
 * True when the first line of FP names exactly the columns EXPECTED
 * ("a,b,c"), each maybe quoted; logs the header found otherwise.  What COPY's
 * HEADER MATCH does, which PostgreSQL 14 lacks.  FP is left after the line.
 */
static bool
csv_header_is(FILE *fp, const char *expected, const char *what, const char *path)
{
	char line[4096];
	StrBuf got;
	size_t len;
	bool ok;

	if (fgets(line, sizeof line, fp) == NULL)
		line[0] = '\0';
	len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	sb_init(&got);
	/* a UTF-8 byte order mark, as spreadsheet programs write */
	for (const char *c = strncmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line; *c; c++)
		if (*c != '"' && *c != ' ')
			sb_appendn(&got, c, 1);
	ok = got.data != NULL && strcmp(got.data, expected) == 0;
	if (!ok)
	{
		log_error("\"%s\" is not %s: its first line must be the header %s", path, what, expected);
		log_detail("found: %.200s", line);
	}
	sb_free(&got);
	return ok;
}

/* CSV is parsed by the server (COPY csv); the header is checked here first. */
static int
load_csv(PGconn *conn, const char *path, long long *loaded)
{
	FILE *fp = fopen(path, "r");
	CopyIn ci;
	bool ok;

	if (fp == NULL)
	{
		log_error("could not open mapping file \"%s\": %s", path, strerror(errno));
		return EXIT_BAD_INPUT;
	}
	if (!csv_header_is(fp, "clerk_user_id,firebase_uid", "a mapping CSV", path))
	{
		fclose(fp);
		return EXIT_BAD_INPUT;
	}
	db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_csv (clerk_user_id text, firebase_uid text)");
	db_exec(conn, "TRUNCATE pg_temp.phasemig_csv");
	if (!copyin_begin(&ci, conn, "COPY pg_temp.phasemig_csv FROM STDIN (FORMAT csv)"))
	{
		fclose(fp);
		return EXIT_FAILED;
	}
	ok = copyin_file(&ci, fp);
	fclose(fp);
	if (!copyin_finish(&ci, ok ? NULL : "read error"))
	{
		if (PQstatus(conn) != CONNECTION_OK)
			return EXIT_FAILED;	/* the connection, not the file */
		log_hint("mapping file \"%s\" must be CSV with two columns, clerk_user_id and firebase_uid", path);
		return EXIT_BAD_INPUT;
	}
	{
		long long bad = db_count(conn,
								 "SELECT count(*) FROM pg_temp.phasemig_csv WHERE coalesce(clerk_user_id, '') = '' "
								 "OR coalesce(firebase_uid, '') = '' OR length(firebase_uid) > 128",
								 0, NULL);

		if (bad > 0)
		{
			log_error("mapping file \"%s\": %lld lines have an empty clerk_user_id or an empty or over-long "
					  "firebase_uid", path, bad);
			return EXIT_BAD_INPUT;
		}
	}
	db_exec(conn, "INSERT INTO pg_temp.phasemig_staging (firebase_uid, clerk_user_id, origin, element) "
			"SELECT firebase_uid, clerk_user_id, 'file', row_number() OVER () FROM pg_temp.phasemig_csv");
	*loaded = db_count(conn, "SELECT count(*) FROM pg_temp.phasemig_staging", 0, NULL);
	return EXIT_DONE;
}

int
mapping_load(PGconn *conn, const char *path, long long *loaded)
{
	MappingFormat format;
	int rc = detect_format(path, &format);

	*loaded = 0;
	if (rc != EXIT_DONE)
		return rc;
	db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_staging (" MAPPING_COLUMNS ", " MAPPING_INVALID_COLUMN ")");
	db_exec(conn, "TRUNCATE pg_temp.phasemig_staging");
	if (format == FORMAT_CSV)
		return load_csv(conn, path, loaded);
	return load_json(conn, path, format, loaded);
}

#define CLERK_HEADER "id,first_name,last_name,username,primary_email_address,primary_phone_number," \
	"verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers," \
	"totp_secret,password_digest,password_hasher"

int
mapping_load_clerk_csv(PGconn *conn, const char *path, long long *loaded)
{
	FILE *fp = fopen(path, "r");
	CopyIn ci;
	bool ok;

	if (fp == NULL)
	{
		log_error("could not open Clerk export \"%s\": %s", path, strerror(errno));
		return EXIT_BAD_INPUT;
	}
	db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_clerk (id text, first_name text, last_name text, "
			"username text, primary_email_address text, primary_phone_number text, verified_email_addresses text, "
			"unverified_email_addresses text, verified_phone_numbers text, unverified_phone_numbers text, "
			"totp_secret text, password_digest text, password_hasher text)");
	db_exec(conn, "TRUNCATE pg_temp.phasemig_clerk");
	if (!csv_header_is(fp, CLERK_HEADER, "a Clerk dashboard CSV export", path))
	{
		fclose(fp);
		return EXIT_BAD_INPUT;
	}
	if (!copyin_begin(&ci, conn, "COPY pg_temp.phasemig_clerk FROM STDIN (FORMAT csv)"))
	{
		fclose(fp);
		return EXIT_FAILED;
	}
	ok = copyin_file(&ci, fp);
	fclose(fp);
	if (!copyin_finish(&ci, ok ? NULL : "read error"))
	{
		if (PQstatus(conn) != CONNECTION_OK)
			return EXIT_FAILED;	/* the connection, not the file */
		log_hint("\"%s\" must be the CSV that Clerk's dashboard exports (13 columns)", path);
		return EXIT_BAD_INPUT;
	}
	*loaded = db_count(conn, "SELECT count(*) FROM pg_temp.phasemig_clerk", 0, NULL);
	return EXIT_DONE;
}
