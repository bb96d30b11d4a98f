/*
 * client_cmd.h: running a PostgreSQL client program (pg_repack) against the
 * database a connection reached, as that connection's login: its parameters
 * go to the program through libpq's environment variables, never on its
 * command line (where ps shows them to every user) nor in any output; what
 * the program prints goes into the run log, line by line.
 */
#ifndef PHASEMIG_CLIENT_CMD_H
#define PHASEMIG_CLIENT_CMD_H

#include <libpq-fe.h>

/* The executable NAME on PATH (malloc'd), or NULL when there is none. */
char *client_cmd_find(const char *name);
/* The first line PATH ARG prints on stdout ("pg_repack 1.4.8"), malloc'd, or NULL. */
char *client_cmd_first_line(const char *path, const char *arg);
/*
 * Run ARGV (argv[0] the program's path) with CONN's connection parameters in
 * its environment (the PG* variables libpq reads; the service, application
 * name and any other PG* variable of ours left out), each line it prints
 * logged after PREFIX (a WARNING or ERROR line as a warning).  The program
 * dies with us (SIGTERM when this process ends, even by kill -9); a SIGINT
 * or SIGTERM to us is passed on to it, and we wait for it to end.  Returns
 * its exit status, 128 + the signal that ended it, or -1 when it could not
 * start (said why).
 */
int client_cmd_run(PGconn *conn, char *const *argv, const char *prefix);
/* "PGHOST=... PGPORT=... PGDATABASE=... PGUSER=..." of CONN, for a dry run: no password (malloc'd). */
char *client_cmd_env_text(PGconn *conn);

#endif
