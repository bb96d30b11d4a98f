/*
 * fuzz_export.c: libFuzzer target for the mapping-file reader: jstream.c over
 * the input as a file, and each element it returns made a staging row by
 * export_user.c, as mapping.c's load_json does.  Run by `make fuzz`.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "core/jstream.h"
#include "core/strbuf.h"
#include "fuzz_util.h"
#include "ops/backfill/providers/clerk_firebase/export_user.h"

/*
 * A row must be one line of exactly EXPORT_ROW_FIELDS fields, or COPY would
 * take it apart differently (or load another user's values into a column).
 */
static void
check_row(const StrBuf *row)
{
	int tabs = 0;

	if (row->len == 0 || row->data[row->len - 1] != '\n')
		fuzz_fail("a row does not end in a newline");
	if (strlen(row->data) != row->len)
		fuzz_fail("a row holds a NUL byte");
	for (size_t i = 0; i + 1 < row->len; i++)
	{
		if (row->data[i] == '\n' || row->data[i] == '\r')
			fuzz_fail("a row holds a raw line break");
		if (row->data[i] == '\t')
			tabs++;
	}
	if (tabs != EXPORT_ROW_FIELDS - 1)
		fuzz_fail("a row has the wrong number of fields");
}

/* The fields export_user_row checks, with their place in the row. */
static const struct
{
	const char *key;
	int field;
} checked_fields[] = {{"email", 2},     {"emailVerified", 4}, {"displayName", 5},
					  {"photoUrl", 6},  {"phoneNumber", 7},   {"lastSignedInAt", 8},
					  {"createdAt", 9}, {"disabled", 10},     {NULL, 0}};

#define FIELD_INVALID (EXPORT_ROW_FIELDS - 1)

/*
 * Field N of ROW (a row check_row accepted) into OUT, COPY's text escapes
 * undone; false, OUT empty, when it is NULL (\N).
 */
static bool
row_value(const StrBuf *row, int n, StrBuf *out)
{
	const char *p = row->data;

	sb_reset(out);
	for (int i = 0; i < n; i++)
		p = strchr(p, '\t') + 1;
	if (strncmp(p, "\\N", 2) == 0 && (p[2] == '\t' || p[2] == '\n'))
		return false;
	for (; *p != '\t' && *p != '\n'; p++)
	{
		if (*p == '\\')
		{
			p++;
			if (*p != '\\' && *p != 't' && *p != 'n' && *p != 'r')
				fuzz_fail("a row holds an unknown escape");
			sb_appendn(out, *p == 't' ? "\t" : *p == 'n' ? "\n" : *p == 'r' ? "\r" : "\\", 1);
		}
		else
			sb_appendn(out, p, 1);
	}
	return true;
}

/*
 * Every value the user gives for a checked field is either staged or named
 * in the row's "invalid" object, never both and never dropped silently: that
 * is what lets phase2 refuse a bad export instead of loading NULLs.
 */
static void
check_values(const StrBuf *row, json_t *user, long element)
{
	StrBuf value;
	json_t *invalid = NULL;
	char elem[24];

	sb_init(&value);
	if (!row_value(row, 0, &value) || strcmp(value.data, json_string_value(json_object_get(user, "localId"))) != 0)
		fuzz_fail("the row's uid is not the user's localId");
	snprintf(elem, sizeof elem, "%ld", element);
	if (!row_value(row, 12, &value) || strcmp(value.data, elem) != 0)
		fuzz_fail("the row's element number is wrong");
	if (row_value(row, FIELD_INVALID, &value))
	{
		json_error_t jerr;

		invalid = json_loads(value.data, 0, &jerr);
		if (!json_is_object(invalid) || json_object_size(invalid) == 0)
			fuzz_fail("the row's invalid column is not a non-empty JSON object");
	}
	for (int i = 0; checked_fields[i].key; i++)
	{
		json_t *v = json_object_get(user, checked_fields[i].key);
		bool given = v != NULL && !json_is_null(v);
		bool staged = row_value(row, checked_fields[i].field, &value);
		bool named = invalid != NULL && json_object_get(invalid, checked_fields[i].key) != NULL;

		if (!given && (staged || named))
			fuzz_fail("a field the user lacks is staged or named invalid");
		if (given && staged == named)
			fuzz_fail(staged ? "a field is both staged and named invalid"
							 : "a field the user gives is neither staged nor named invalid");
	}
	json_decref(invalid);
	sb_free(&value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_input_file(data, size);
	size_t start = 0;
	bool firebase;
	long bad_attributes = 0;
	JStream js;
	StrBuf row;
	json_t *elem;

	/* mapping.c's detect_format: '{' an export, '[' pairs, else CSV (the server's) */
	while (start < size && isspace(data[start]))
		start++;
	if (start == size || (data[start] != '{' && data[start] != '['))
		return 0;
	firebase = data[start] == '{';

	if (!jstream_open(&js, path, firebase ? "users" : NULL))
	{
		if (js.error[0] == '\0')
			fuzz_fail("jstream_open failed without a message");
		jstream_close(&js);
		return 0;
	}
	sb_init(&row);
	for (;;)
	{
		int rc = jstream_next(&js, &elem);
		bool ok;

		if (rc == 0)
		{
			if (elem != NULL)
				fuzz_fail("jstream_next returned an element at the end");
			break;
		}
		if (rc < 0)
		{
			if (elem != NULL || js.error[0] == '\0')
				fuzz_fail("jstream_next failed with an element or without a message");
			break;
		}
		if (!json_is_object(elem))
			fuzz_fail("jstream_next returned something other than an object");
		sb_reset(&row);
		if (firebase)
			ok = export_user_row(&row, elem, js.element, path, &bad_attributes);
		else
			ok = export_pair_row(&row, elem, js.element, path);
		if (ok)
		{
			check_row(&row);
			if (firebase)
				check_values(&row, elem, js.element);
		}
		else if (row.len != 0)
			fuzz_fail("a refused element left a partial row");
		json_decref(elem);
		if (!ok)
			break;
	}
	sb_free(&row);
	jstream_close(&js);
	return 0;
}
