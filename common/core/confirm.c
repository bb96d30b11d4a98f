/*
 * confirm.c: the operator's confirmation, asked and answered on /dev/tty with
 * type-ahead flushed first, so a "yes" typed before the question never
 * answers it and "echo yes |" never does.
 */
#include "core/confirm.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Write all of TEXT to FD; false when the terminal went away. */
static bool
write_all(int fd, const char *text)
{
	size_t left = strlen(text);

	while (left > 0)
	{
		ssize_t w = write(fd, text, left);

		if (w <= 0)
			return false;
		text += w;
		left -= (size_t) w;
	}
	return true;
}

/* One line from FD into LINE (at most SIZE - 1 bytes kept), without its newline; false at end of input. */
static bool
read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	char c;
	ssize_t r;

	while ((r = read(fd, &c, 1)) == 1 && c != '\n')
		if (n + 1 < size)
			line[n++] = c;
	line[n] = '\0';
	return r == 1 || n > 0;
}

ConfirmAnswer
confirm_ask(const char *question)
{
	char line[64];
	char *start, *end;
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	bool got;

	if (fd < 0)
		return CONFIRM_NO_TTY;
	/* what was typed before the question is no answer to it */
	tcflush(fd, TCIFLUSH);
	got = write_all(fd, question) && read_line(fd, line, sizeof line);
	close(fd);
	if (!got)
		return CONFIRM_NO;
	for (start = line; isspace((unsigned char) *start); start++)
		;
	for (end = start + strlen(start); end > start && isspace((unsigned char) end[-1]); end--)
		;
	*end = '\0';
	return strcmp(start, "yes") == 0 ? CONFIRM_YES : CONFIRM_NO;
}
