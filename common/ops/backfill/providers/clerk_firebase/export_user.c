/*
 * export_user.c: the checks of one mapping-file element and its staging row
 * in COPY text format.  Pure apart from log messages, so the fuzz target
 * (tests/fuzz/fuzz_export.c) runs it without a database.
 */
#include "ops/backfill/providers/clerk_firebase/export_user.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/copyin.h"
#include "core/log.h"

#define MAX_UID_LENGTH 128

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

/*
 * Record in BAD (field -> reason) that KEY's value is unusable.  The key is
 * recorded whatever the reason's text: a value left out of BAD would be
 * staged as NULL without phase2 refusing it.
 */
static void
mark_invalid(json_t *bad, const char *key, const char *fmt, const char *arg)
{
	char reason[128];
	json_t *text;

	snprintf(reason, sizeof reason, fmt, arg);
	if ((text = json_string(reason)) == NULL) /* not UTF-8 */
		text = json_string("unusable value");
	json_object_set_new(bad, key, text);
}

/* How many bytes of S to quote, at most MAX, without cutting a UTF-8 character. */
static int
utf8_prefix(const char *s, int max)
{
	int n = (int) strnlen(s, (size_t) max);

	if (s[n] != '\0')
		while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
			n--;
	return n;
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
			ms = s[0] == '-' ? -1 : LLONG_MAX; /* out of range, below */
		else if (*end != '\0' || end == s || !isdigit((unsigned char) s[0]))
		{
			char shown[48];

			snprintf(shown, sizeof shown, "%.*s", utf8_prefix(s, 40), s);
			mark_invalid(bad, key, "\"%s\" is not epoch milliseconds", shown);
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
			log_warning("element %ld: customAttributes is not a JSON object (%s); matching this user by email", element,
						obj ? "not an object" : jerr.text);
	}
	else if (json_is_string(json_object_get(obj, "clerk_user_id")))
		id = xstrdup(json_string_value(json_object_get(obj, "clerk_user_id")));
	json_decref(obj);
	return id;
}

/* Characters of UTF-8 text (jansson gives valid UTF-8): bytes that do not continue a sequence. */
static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			n++;
	return n;
}

static bool
valid_uid(const char *uid, long element, const char *path)
{
	if (uid == NULL || uid[0] == '\0')
	{
		log_error("mapping file \"%s\": element %ld has no localId / firebase_uid", path, element);
		return false;
	}
	/* characters, as Firebase counts them and as the CSV check and varchar(128) do */
	if (utf8_chars(uid) > MAX_UID_LENGTH)
	{
		log_error("mapping file \"%s\": element %ld: firebase uid longer than %d characters", path, element,
				  MAX_UID_LENGTH);
		return false;
	}
	return true;
}

/* A row under construction: fields are separated by tabs. */
typedef struct CopyRow
{
	StrBuf *sb;
	int fields;
} CopyRow;

static void
row_field(CopyRow *r, const char *value)
{
	if (r->fields++ > 0)
		sb_appendn(r->sb, "\t", 1);
	copyin_escape(r->sb, value);
}

static void
row_end(CopyRow *r)
{
	sb_appendn(r->sb, "\n", 1);
}

bool
export_user_row(StrBuf *row, json_t *user, long element, const char *path, long *bad_attributes)
{
	const char *uid = opt_string(user, "localId");
	CopyRow r = {.sb = row};
	json_t *bad;
	char *clerk, *invalid = NULL;
	char last[96], created[96], elem[24];

	if (!valid_uid(uid, element, path))
		return false;
	bad = json_object();
	clerk = clerk_id_from_attributes(user, element, bad_attributes);
	snprintf(elem, sizeof elem, "%ld", element);
	row_field(&r, uid);
	row_field(&r, clerk);
	row_field(&r, field_string(user, "email", bad));
	row_field(&r, NULL); /* email_norm: set in SQL, see BF_EMAIL_NORM */
	row_field(&r, field_bool(user, "emailVerified", bad));
	row_field(&r, field_string(user, "displayName", bad));
	row_field(&r, field_string(user, "photoUrl", bad));
	row_field(&r, field_string(user, "phoneNumber", bad));
	row_field(&r, field_epoch_ms(user, "lastSignedInAt", last, sizeof last, bad));
	row_field(&r, field_epoch_ms(user, "createdAt", created, sizeof created, bad));
	row_field(&r, field_bool(user, "disabled", bad));
	row_field(&r, "file");
	row_field(&r, elem);
	if (json_object_size(bad) > 0)
		invalid = json_dumps(bad, JSON_COMPACT | JSON_SORT_KEYS);
	row_field(&r, invalid);
	row_end(&r);
	free(invalid);
	json_decref(bad);
	free(clerk);
	return true;
}

bool
export_pair_row(StrBuf *row, json_t *pair, long element, const char *path)
{
	const char *clerk = opt_string(pair, "clerk_user_id");
	const char *uid = opt_string(pair, "firebase_uid");
	CopyRow r = {.sb = row};
	const char *key;
	json_t *value;
	char elem[24];

	json_object_foreach(pair, key, value)
	{
		(void) value;
		if (strcmp(key, "clerk_user_id") != 0 && strcmp(key, "firebase_uid") != 0)
		{
			log_error("mapping file \"%s\": element %ld: unknown key \"%s\" (expected clerk_user_id and "
					  "firebase_uid)",
					  path, element, key);
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
	row_field(&r, uid);
	row_field(&r, clerk);
	for (int i = 0; i < 9; i++)
		row_field(&r, NULL);
	row_field(&r, "file");
	row_field(&r, elem);
	row_field(&r, NULL); /* invalid */
	row_end(&r);
	return true;
}
