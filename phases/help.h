/*
 * help.h: what the three binaries share besides the engine: their table of
 * options (options.c, with the identity provider's words in its help) and
 * the lines of --help's tail about the environment.
 */
#ifndef PHASEMIG_PHASES_HELP_H
#define PHASEMIG_PHASES_HELP_H

#include "engine/cli.h"

/* Every option of the three binaries, one row each, in --help's order (options.c). */
extern const CliOption phase_options[];

/* The environment variables an option can come from (help2man makes a section of it). */
#define HELP_ENVIRONMENT                                                                                               \
	"Environment:\n"                                                                                                   \
	"  PG*                 libpq's variables (PGHOST, PGPORT, PGDATABASE, PGUSER,\n"                                   \
	"                      PGPASSWORD, PGPASSFILE, PGSERVICE, PGSERVICEFILE,\n"                                        \
	"                      PGSSLMODE...): the connection when -d is not given,\n"                                      \
	"                      and what a conninfo string leaves out\n"                                                    \
	"  DATABASE_URL        the database when neither -d nor any of PGHOST,\n"                                          \
	"                      PGHOSTADDR, PGPORT, PGDATABASE, PGUSER, PGSERVICE is set\n"                                 \
	"                      (a URI or conninfo string); its use is announced\n"                                         \
	"  PGAPPNAME           kept: phasemig's part is added after it in\n"                                               \
	"                      application_name\n"                                                                         \
	"  USER, LOGNAME       the OS user recorded in migration_log beside the host\n"                                    \
	"  PHASEMIG_HOOK       the hook, when --hook is not given\n"                                                       \
	"  PHASEMIG_LOGS       the logs directory, when --logs-dir is not given\n"                                         \
	"  XDG_STATE_HOME      without either: logs go to\n"                                                               \
	"                      $XDG_STATE_HOME/phasemig/DATABASE/PLAN (default:\n"                                         \
	"                      ~/.local/state)\n"                                                                          \
	"  PHASEMIG_MAX_INPUT_SIZE\n"                                                                                      \
	"                      the largest --mapping or --clerk-export read, in bytes\n"                                   \
	"                      or with a K, M or G suffix (default: 4G)\n"                                                 \
	"\n"

#endif
