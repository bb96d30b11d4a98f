/*
 * mapping.c: sends each user of a Firebase Auth export (or each pair of a
 * plain mapping), made a row by export_user.c, with COPY into
 * pg_temp.phasemig_staging.  Matching and conflict checks happen in SQL
 * afterwards (ops/backfill/match.c).
 */
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/copyin.h"
#include "core/csv_header.h"
#include "core/db.h"
#include "core/jstream.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "ops/backfill/providers/clerk_firebase/export_user.h"

/* Each Firebase field: its staging column and that column's type (MAPPING_COLUMNS). */
static const struct
{
	const char *field;
	const char *column;
	const char *type;
} field_columns[] = {{"localId", "firebase_uid", "text"},
					 {"email", "email", "text"},
					 {"emailVerified", "email_verified", "boolean"},
					 {"displayName", "display_name", "text"},
					 {"photoUrl", "photo_url", "text"},
					 {"phoneNumber", "phone_number", "text"},
					 {"lastSignedInAt", "last_signed_in_at", "timestamptz"},
					 {"createdAt", "created_at", "timestamptz"},
					 {"disabled", "disabled", "boolean"},
					 {NULL, NULL, NULL}};

/* FIELD's entry in field_columns, or the terminating one (all NULL). */
static int
field_index(const char *field)
{
	int i = 0;

	while (field_columns[i].field && strcmp(field_columns[i].field, field) != 0)
		i++;
	return i;
}

const char *
mapping_field_column(const char *field)
{
	return field_columns[field_index(field)].column;
}

const char *
mapping_field_type(const char *field)
{
	return field_columns[field_index(field)].type;
}

typedef enum
{
	FORMAT_FIREBASE,
	FORMAT_JSON_PAIRS,
	FORMAT_CSV
} MappingFormat;

/* The first non-blank byte (after a byte order mark) tells the format: '{' export, '[' pairs, else CSV. */
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
	/* a UTF-8 byte order mark, as some editors write, is not the first byte */
	if ((c = getc(fp)) != 0xEF || getc(fp) != 0xBB || getc(fp) != 0xBF)
		rewind(fp);
	do
		c = getc(fp);
	while (c != EOF && isspace(c) && !stop_requested());
	fclose(fp);
	if (c == EOF)
	{
		log_error("mapping file \"%s\" is empty", path);
		return EXIT_BAD_INPUT;
	}
	*format = c == '{' ? FORMAT_FIREBASE : c == '[' ? FORMAT_JSON_PAIRS : FORMAT_CSV;
	return EXIT_DONE;
}

/*
 * The COPY of element ELEMENT of the export PATH failed because the
 * database's encoding has no equivalent for one of its characters: name the
 * user and the field (the first of its strings the server cannot take as a
 * parameter either).  Returns EXIT_REFUSED, logged.
 */
static int
refuse_unrepresentable(PGconn *conn, const char *path, MappingFormat format, long long element)
{
	const char *encoding = PQparameterStatus(conn, "server_encoding");
	JStream js;
	json_t *elem = NULL;
	const char *field = NULL, *key;
	json_t *value;
	char *user = NULL;

	if (jstream_open(&js, path, format == FORMAT_FIREBASE ? "users" : NULL))
		while (jstream_next(&js, &elem) == 1 && js.element < element)
			json_decref(elem), elem = NULL;
	jstream_close(&js);
	json_object_foreach(elem, key, value)
	{
		const char *text = json_string_value(value);
		PGresult *res = text ? db_query_try(conn, "SELECT $1::pg_catalog.text", 1, &text) : NULL;
		bool refused = res && strcmp(db_sqlstate(res), SQLSTATE_UNTRANSLATABLE) == 0;

		PQclear(res);
		if (refused)
		{
			field = key;
			break;
		}
	}
	if (json_is_string(json_object_get(elem, "localId")))
		user = str_printf("localId \"%s\"", json_string_value(json_object_get(elem, "localId")));
	else if (json_is_string(json_object_get(elem, "firebase_uid")))
		user = str_printf("firebase_uid \"%s\"", json_string_value(json_object_get(elem, "firebase_uid")));
	log_error("mapping file \"%s\": user %s (element %lld): the field \"%s\" has characters the database's "
			  "encoding %s cannot hold; nothing was changed",
			  path, user ? user : "?", element, field ? field : "?", encoding ? encoding : "?");
	log_hint("the export is UTF-8: migrate into a database created with ENCODING 'UTF8' (or correct the value)");
	free(user);
	json_decref(elem);
	return EXIT_REFUSED;
}

static int
load_json(PGconn *conn, const char *path, MappingFormat format, long long *loaded)
{
	JStream js;
	CopyIn ci;
	StrBuf row;
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
	ci.quiet = true; /* a failure is reported below, naming the user */
	sb_init(&row);
	while (!stop_requested() && (rc = jstream_next(&js, &elem)) == 1)
	{
		bool ok;

		sb_reset(&row);
		if (!json_is_object(elem))
			ok = false;
		else if (format == FORMAT_FIREBASE)
			ok = export_user_row(&row, elem, js.element, path, &bad_attributes);
		else
			ok = export_pair_row(&row, elem, js.element, path);
		ok = ok && copyin_row(&ci, row.data, row.len);
		json_decref(elem);
		if (!ok)
		{
			failure = "bad element";
			break;
		}
		if (js.element % 100000 == 0)
			log_progress(false, "read %ld users from \"%s\"", js.element, path);
	}
	sb_free(&row);
	log_progress_end();
	if (stop_requested())
		failure = "stopped";
	else if (rc < 0 && js.oversized)
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
	{
		if (failure)
			return PQstatus(conn) == CONNECTION_OK && !stop_requested() ? EXIT_BAD_INPUT : EXIT_FAILED;
		if (strcmp(ci.sqlstate, SQLSTATE_UNTRANSLATABLE) == 0 && ci.error_line > 0)
			return refuse_unrepresentable(conn, path, format, ci.error_line);
		if (ci.error_line > 0)
			log_error("could not load mapping file \"%s\": element %lld: %s", path, ci.error_line, ci.error);
		else
			log_error("could not load mapping file \"%s\": %s", path, ci.error);
		return EXIT_FAILED;
	}
	if (bad_attributes > 10)
		log_warning("%ld users in all had unreadable customAttributes", bad_attributes);
	{
		char *norm = str_printf("UPDATE pg_temp.phasemig_staging SET email_norm = nullif(" BF_EMAIL_NORM(
									"") ", '') WHERE email IS NOT NULL",
								"email");

		db_exec(conn, norm);
		free(norm);
	}
	*loaded = ci.rows;
	return EXIT_DONE;
}

/*
 * PATH (a KIND, for messages) opened, its first line checked to be HEADER
 * (csv_header.h; WHAT names the file it expects).  NULL, logged, when it
 * cannot be opened or has another header.
 */
static FILE *
open_csv(const char *path, const char *kind, const char *header, const char *what)
{
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		log_error("could not open %s \"%s\": %s", kind, path, strerror(errno));
	else if (!csv_header_is(fp, header, what, path))
	{
		fclose(fp);
		fp = NULL;
	}
	return fp;
}

/*
 * Send the rest of FP, which is closed here, to COPY_SQL (CSV, parsed by the
 * server).  Returns EXIT_DONE; EXIT_BAD_INPUT when the server refused the
 * file (the line it refused named), with HINT (a format of PATH) logged;
 * EXIT_REFUSED when the database's encoding cannot hold a character of it;
 * EXIT_FAILED when the connection, not the file, failed, or a signal stopped it.
 */
static int
copy_csv_file(PGconn *conn, FILE *fp, const char *copy_sql, const char *kind, const char *path, const char *hint)
{
	CopyIn ci;
	bool ok;

	if (!copyin_begin(&ci, conn, copy_sql))
	{
		fclose(fp);
		return EXIT_FAILED;
	}
	ci.kind = kind;
	ci.file = path;
	ci.line_offset = 1; /* the header, read by open_csv */
	ok = copyin_file(&ci, fp);
	fclose(fp);
	if (copyin_finish(&ci, ok ? NULL : "read error"))
		return EXIT_DONE;
	if (PQstatus(conn) != CONNECTION_OK || stop_requested())
		return EXIT_FAILED;
	if (strcmp(ci.sqlstate, SQLSTATE_UNTRANSLATABLE) == 0)
	{
		log_hint("the file is read as UTF-8: migrate into a database created with ENCODING 'UTF8' (or correct the "
				 "value); nothing was changed");
		return EXIT_REFUSED;
	}
	log_hint(hint, path);
	return EXIT_BAD_INPUT;
}

/* CSV is parsed by the server (COPY csv); the header is checked here first. */
static int
load_csv(PGconn *conn, const char *path, long long *loaded)
{
	FILE *fp = open_csv(path, "mapping file", CSV_HEADER_MAPPING, "a mapping CSV");
	int rc;

	if (fp == NULL)
		return EXIT_BAD_INPUT;
	db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_csv (clerk_user_id text, firebase_uid text)");
	db_exec(conn, "TRUNCATE pg_temp.phasemig_csv");
	rc = copy_csv_file(conn, fp, "COPY pg_temp.phasemig_csv FROM STDIN (FORMAT csv)", "mapping file", path,
					   "mapping file \"%s\" must be CSV with two columns, clerk_user_id and firebase_uid");
	if (rc != EXIT_DONE)
		return rc;
	{
		long long bad = db_count(conn,
								 "SELECT count(*) FROM pg_temp.phasemig_csv WHERE coalesce(clerk_user_id, '') = '' "
								 "OR coalesce(firebase_uid, '') = '' OR length(firebase_uid) > 128",
								 0, NULL);

		if (bad > 0)
		{
			log_error("mapping file \"%s\": %lld lines have an empty clerk_user_id or an empty or over-long "
					  "firebase_uid",
					  path, bad);
			return EXIT_BAD_INPUT;
		}
	}
	db_exec(conn,
			"INSERT INTO pg_temp.phasemig_staging (firebase_uid, clerk_user_id, origin, element) "
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
	db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS phasemig_staging (" MAPPING_COLUMNS ", " BF_STAGING_INVALID ")");
	db_exec(conn, "TRUNCATE pg_temp.phasemig_staging");
	if (format == FORMAT_CSV)
		return load_csv(conn, path, loaded);
	return load_json(conn, path, format, loaded);
}

int
mapping_load_clerk_csv(PGconn *conn, const char *path, long long *loaded)
{
	FILE *fp = open_csv(path, "Clerk export", CSV_HEADER_CLERK, "a Clerk dashboard CSV export");
	int rc;

	if (fp == NULL)
		return EXIT_BAD_INPUT;
	db_exec(conn, CLERK_TABLE);
	db_exec(conn, "TRUNCATE pg_temp.phasemig_clerk");
	rc = copy_csv_file(conn, fp, "COPY pg_temp.phasemig_clerk (" CSV_HEADER_CLERK ") FROM STDIN (FORMAT csv)",
					   "Clerk export", path, "\"%s\" must be the CSV that Clerk's dashboard exports (13 columns)");
	if (rc != EXIT_DONE)
		return rc;
	/* what the JSON export says in its own keys: a password, a second factor (the secret itself never leaves) */
	db_exec(conn,
			"UPDATE pg_temp.phasemig_clerk SET password_enabled = coalesce(password_digest, '') <> '', "
			"mfa = CASE WHEN coalesce(totp_secret, '') <> '' THEN 'totp' END");
	*loaded = db_count(conn, "SELECT count(*) FROM pg_temp.phasemig_clerk", 0, NULL);
	return EXIT_DONE;
}
