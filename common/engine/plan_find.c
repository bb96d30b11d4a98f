/*
 * plan_find.c: --plan NAME: finds the installed plan of that name (or the
 * source tree's), beside the running binary, so an installed phase1 runs
 * "--plan string-to-uuid" from any directory.
 */
#include "engine/plan_find.h"

#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/strbuf.h"

/* Where plans are looked for, relative to the binary's directory, in order. */
static const char *const plan_dirs[] = {"../share/phasemig/plans", "../plans", NULL};

static bool
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The running binary's directory, malloc'd, or NULL. */
static char *
binary_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	return xstrdup(dirname(exe));
}

char *
plan_find(const char *arg)
{
	size_t len = strlen(arg);
	char *dir, *path;
	StrBuf looked;

	if (strchr(arg, '/') || (len >= 5 && strcmp(arg + len - 5, ".json") == 0) || is_file(arg))
		return xstrdup(arg);
	if ((dir = binary_dir()) == NULL)
		return xstrdup(arg);
	sb_init(&looked);
	for (int i = 0; plan_dirs[i]; i++)
	{
		path = str_printf("%s/%s/%s.json", dir, plan_dirs[i], arg);
		if (is_file(path))
		{
			char *clean = realpath(path, NULL); /* without the "bin/.." */

			sb_free(&looked);
			free(dir);
			if (clean == NULL)
				return path;
			free(path);
			return clean;
		}
		sb_printf(&looked, "%s%s", i ? ", " : "", path);
		free(path);
	}
	log_error("no plan named \"%s\": looked for %s", arg, looked.data);
	log_hint("give the plan file's path (e.g. --plan ./%s.json), or the name of an installed plan", arg);
	sb_free(&looked);
	free(dir);
	return NULL;
}
