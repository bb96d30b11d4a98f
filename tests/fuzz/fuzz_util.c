/*
 * fuzz_util.c: the start-up every fuzz target shares (quiet logs named after
 * the program), the input file of the fuzz targets (an unlinked temporary
 * file rewritten in place for each input, so a reader that takes a path sees
 * exactly the input's bytes).
 */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static char input_path[64];
static int input_fd = -1;

void
fuzz_quiet_logs(const char *name)
{
	log_init(name);
	log_set_quiet(true);
}

/* libFuzzer calls it once before the first input: the target's logs, quiet, under its own name. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *name = "fuzz";

	if (*argc > 0 && (*argv)[0] != NULL)
	{
		const char *slash = strrchr((*argv)[0], '/');

		name = slash ? slash + 1 : (*argv)[0];
	}
	fuzz_quiet_logs(name);
	return 0;
}

const char *
fuzz_input_file(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (input_fd < 0)
	{
		char tmpl[] = "/tmp/phasemig-fuzz.XXXXXX";

		if ((input_fd = mkstemp(tmpl)) < 0)
		{
			perror("fuzz: mkstemp");
			abort();
		}
		/* removed at once, read through /proc: nothing is left behind, even after a crash */
		unlink(tmpl);
		snprintf(input_path, sizeof input_path, "/proc/self/fd/%d", input_fd);
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
