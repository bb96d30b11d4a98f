/*
 * fuzz_util.c: the input file of the fuzz targets (rewritten in place for
 * each input, so a reader that takes a path sees exactly the input's bytes)
 * and quiet logs.
 */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

static char input_path[] = "/tmp/phasemig-fuzz.XXXXXX";
static int input_fd = -1;

static void
remove_input(void)
{
	if (input_fd >= 0)
		unlink(input_path);
}

void
fuzz_quiet_logs(const char *name)
{
	log_init(name);
	log_set_quiet(true);
}

const char *
fuzz_input_file(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (input_fd < 0)
	{
		if ((input_fd = mkstemp(input_path)) < 0)
		{
			perror("fuzz: mkstemp");
			abort();
		}
		atexit(remove_input);
	}
	if (ftruncate(input_fd, 0) != 0)
	{
		perror("fuzz: ftruncate");
		abort();
	}
	while (done < size)
	{
		ssize_t n = pwrite(input_fd, data + done, size - done, (off_t) done);

		if (n <= 0)
		{
			perror("fuzz: pwrite");
			abort();
		}
		done += (size_t) n;
	}
	return input_path;
}

void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: invariant broken: %s\n", what);
	abort();
}
