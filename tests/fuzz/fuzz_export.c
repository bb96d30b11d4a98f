/*
 * fuzz_export.c: libFuzzer target for the mapping-file reader: jstream.c over
 * the input as a file, and each element it returns made a staging row by
 * export_user.c, as mapping.c's load_json does.  Run by `make fuzz`.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "export_user.h"
#include "fuzz_util.h"
#include "jstream.h"
#include "strbuf.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fuzz_quiet_logs("fuzz_export");
	return 0;
}

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
			check_row(&row);
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
