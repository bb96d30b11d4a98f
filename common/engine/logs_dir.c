/*
 * logs_dir.c: the directory of a run's log, unmatched rows and import files,
 * from --logs-dir, $PHASEMIG_LOGS or the XDG state directory, and making it
 * private (0700).
 */
#include "engine/logs_dir.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/strbuf.h"

/* NAME as one path component, malloc'd: '/' and a leading '.' become '_' ("" becomes "_"). */
static char *
component(const char *name)
{
	char *c = xstrdup(name[0] ? name : "_");

	for (char *p = c; *p; p++)
		if (*p == '/' || (p == c && *p == '.'))
			*p = '_';
	return c;
}

/* $HOME, else the passwd entry's home, malloc'd; "." when neither is known. */
static char *
home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd pwbuf, *pw = NULL;
	char buf[1024];

	if (home && home[0])
		return xstrdup(home);
	if (getpwuid_r(geteuid(), &pwbuf, buf, sizeof buf, &pw) == 0 && pw != NULL && pw->pw_dir)
		return xstrdup(pw->pw_dir);
	return xstrdup(".");
}

char *
logs_dir_resolve(const char *given, const char *database, const char *plan)
{
	const char *env = getenv("PHASEMIG_LOGS");
	const char *state = getenv("XDG_STATE_HOME");
	char *db, *pl, *home, *dir;

	if (given)
		return xstrdup(given);
	if (env && env[0])
		return xstrdup(env);
	if (database == NULL)
		return NULL;
	db = component(database);
	pl = component(plan);
	/* the XDG base directory spec: a relative $XDG_STATE_HOME is invalid, ignored */
	if (state && state[0] == '/')
		dir = str_printf("%s/phasemig/%s/%s", state, db, pl);
	else
	{
		home = home_dir();
		dir = str_printf("%s/.local/state/phasemig/%s/%s", home, db, pl);
		free(home);
	}
	free(db);
	free(pl);
	return dir;
}

bool
logs_dir_make(const char *dir)
{
	char *path;
	bool ok = true;

	if (dir[0] == '\0')
	{
		errno = ENOENT;
		return false;
	}
	path = xstrdup(dir);
	for (char *p = path + 1; ok; p++)
	{
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			ok = false;
		if (last)
			break;
		*p = '/';
	}
	free(path);
	return ok;
}
