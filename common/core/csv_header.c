/*
 * csv_header.c: reads and checks the header line of a CSV file (a mapping,
 * an export) before its bytes go to the server's COPY.
 */
#include "core/csv_header.h"

#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"

bool
csv_header_is(FILE *fp, const char *expected, const char *what, const char *path)
{
	char line[4096];
	StrBuf got;
	size_t len = 0;
	bool too_long = false;
	bool has_nul = false;
	bool ok;
	int ch;

	/*
	 * The whole first line is read, however long, so that none of it reaches
	 * COPY as a row; a line over the buffer, or with a NUL byte, is no header.
	 */
	while ((ch = getc(fp)) != EOF && ch != '\n')
	{
		if (ch == '\0')
			has_nul = true;
		if (len < sizeof line - 1)
			line[len++] = (char) ch;
		else
			too_long = true;
	}
	line[len] = '\0';
	while (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	sb_init(&got);
	/* a UTF-8 byte order mark, as spreadsheet programs write */
	for (const char *c = strncmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line; *c; c++)
		if (*c != '"' && *c != ' ')
			sb_appendn(&got, c, 1);
	ok = !too_long && !has_nul && strcmp(got.data, expected) == 0;
	if (!ok)
	{
		log_error("\"%s\" is not %s: its first line must be the header %s", path, what, expected);
		log_detail("found: %.200s%s", line, too_long ? " (a line over 4 kB)" : "");
	}
	sb_free(&got);
	return ok;
}
