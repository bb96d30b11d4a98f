/*
 * logs_dir.h: where a run's log and files go: --logs-dir, else
 * $PHASEMIG_LOGS, else a state directory per database and plan
 * ($XDG_STATE_HOME/phasemig/<database>/<plan>, ~/.local/state/... without it),
 * the same wherever the command is run from.
 */
#ifndef PHASEMIG_LOGS_DIR_H
#define PHASEMIG_LOGS_DIR_H

#include <stdbool.h>

/*
 * The directory, malloc'd: GIVEN (--logs-dir) when not NULL, else
 * $PHASEMIG_LOGS when set and not empty, else
 * $XDG_STATE_HOME/phasemig/DATABASE/PLAN, else
 * $HOME/.local/state/phasemig/DATABASE/PLAN (a '/' or a leading '.' in the
 * database's name becomes '_').  NULL when DATABASE is NULL and needed.
 */
char *logs_dir_resolve(const char *given, const char *database, const char *plan);

/*
 * Make DIR and its missing parents, each with mode 0700 (the logs may name
 * users); an existing directory is left as it is.  False, errno set, on failure.
 */
bool logs_dir_make(const char *dir);

#endif
