/*
 * input_file.c: the regular-file and size check of a file phasemig reads
 * whole (see input_file.h).
 */
#include "core/input_file.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "core/log.h"

long long
input_file_limit(void)
{
	const char *v = getenv(INPUT_FILE_LIMIT_ENV);
	char *end;
	long long n;
	int shift = 0;

	if (v == NULL || v[0] == '\0')
		return INPUT_FILE_DEFAULT_LIMIT;
	n = strtoll(v, &end, 10);
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || n <= 0 || n > (1LL << (62 - shift)))
	{
		log_error("%s must be a size in bytes, with an optional K, M or G suffix (4G), not \"%s\"",
				  INPUT_FILE_LIMIT_ENV, v);
		return -1;
	}
	return n << shift;
}

/* "a directory", "a FIFO", ...: what a file that is not a regular one is. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO (named pipe)";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

bool
input_file_check(const char *path, const char *kind, long long limit)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return true;
	if (!S_ISREG(st.st_mode))
	{
		log_error("%s \"%s\" is %s, not a regular file; nothing was read", kind, path, file_kind(st.st_mode));
		log_hint("give a file: phasemig reads it more than once and must know where it ends");
		return false;
	}
	if ((long long) st.st_size > limit)
	{
		log_error("%s \"%s\" is %lld bytes, more than the limit of %lld bytes; nothing was read", kind, path,
				  (long long) st.st_size, limit);
		if (limit != INPUT_FILE_PLAN_LIMIT)
			log_hint("if the file is right, raise the limit with %s (e.g. %s=16G)", INPUT_FILE_LIMIT_ENV,
					 INPUT_FILE_LIMIT_ENV);
		return false;
	}
	return true;
}
