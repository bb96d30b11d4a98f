/*
 * csv_header.c: reads and checks the header line of a CSV mapping or Clerk
 * export before its bytes go to the server's COPY.
 */
#include "csv_header.h"

#include <string.h>

#include "log.h"
#include "strbuf.h"

bool
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

