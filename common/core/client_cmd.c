/*
 * client_cmd.c: a PostgreSQL client program run over a connection's
 * parameters (client_cmd.h): found on PATH, its environment built from
 * PQconninfo(), its output read line by line into the log, its end awaited.
 */
#include "core/client_cmd.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"

char *
client_cmd_find(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	char *found = NULL;

	if (path == NULL || *path == '\0')
		return NULL;
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save))
	{
		char *candidate = str_printf("%s/%s", *dir ? dir : ".", name);

		if (access(candidate, X_OK) == 0)
			found = candidate;
		else
			free(candidate);
	}
	free(copy);
	return found;
}

/*
 * In the child, before exec: libpq's variables are the connection's and
 * nothing else.  Every PG* variable libpq knows is cleared first (a PGSERVICE
 * of the operator's would otherwise win over the variables below); the
 * service, the application name (pg_repack tells its own sessions by theirs)
 * and replication are not passed.
 */
static void
child_environment(PGconn *conn)
{
	PQconninfoOption *defaults = PQconndefaults();
	PQconninfoOption *used = PQconninfo(conn);
	static const char *const skipped[] = {"service", "application_name", "fallback_application_name", "replication",
										  NULL};

	for (PQconninfoOption *o = defaults; o && o->keyword; o++)
		if (o->envvar)
			unsetenv(o->envvar);
	unsetenv("PGAPPNAME");
	for (PQconninfoOption *o = used; o && o->keyword; o++)
	{
		bool skip = o->envvar == NULL || o->val == NULL || o->val[0] == '\0';

		for (int i = 0; !skip && skipped[i]; i++)
			skip = strcmp(o->keyword, skipped[i]) == 0;
		if (!skip)
			setenv(o->envvar, o->val, 1);
	}
}

char *
client_cmd_env_text(PGconn *conn)
{
	return str_printf("PGHOST=%s PGPORT=%s PGDATABASE=%s PGUSER=%s", PQhost(conn), PQport(conn), PQdb(conn),
					  PQuser(conn));
}

/* Log one line the program printed: its warnings and errors as warnings. */
static void
log_line(const char *prefix, const char *line)
{
	if (*line == '\0')
		return;
	if (strncmp(line, "ERROR", 5) == 0 || strncmp(line, "WARNING", 7) == 0 || strncmp(line, "FATAL", 5) == 0)
		log_warning("%s%s", prefix, line);
	else
		log_info("%s%s", prefix, line);
}

/* Read FD to its end, a line at a time into the log; pass a stop signal on to PID once. */
static void
read_output(int fd, pid_t pid, const char *prefix)
{
	StrBuf line;
	bool passed_on = false;
	char buf[4096];

	sb_init(&line);
	for (;;)
	{
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ready = poll(&p, 1, 200);
		ssize_t n;

		if (stop_requested() && !passed_on)
		{
			kill(pid, SIGTERM);
			passed_on = true;
		}
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			continue;
		n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
		{
			if (buf[i] == '\n')
			{
				log_line(prefix, line.data ? line.data : "");
				sb_reset(&line);
			}
			else
				sb_appendn(&line, &buf[i], 1);
		}
	}
	if (line.data && line.data[0])
		log_line(prefix, line.data);
	sb_free(&line);
}

/* Wait for PID; its exit status, or 128 + the signal that ended it. */
static int
wait_for(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Fork ARGV with CONN's environment (NULL: ours) and its stdout and stderr on a pipe; the pid, or -1. */
static pid_t
start(PGconn *conn, char *const *argv, int *out_fd)
{
	int fds[2];
	pid_t parent = getpid(), pid;

	if (pipe(fds) != 0)
		return -1;
	fflush(NULL);
	if ((pid = fork()) < 0)
	{
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0)
	{
#ifdef __linux__
		/* 1. it dies with us: a kill -9 of this run must not leave it working unwatched */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
#else
		(void) parent;
#endif
		/* 2. signals as the program expects them, whatever ours are */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		/* 3. no input; stdout and stderr into our pipe */
		if (freopen("/dev/null", "r", stdin) == NULL)
			_exit(127);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (conn)
			child_environment(conn);
		execv(argv[0], argv);
		fprintf(stderr, "ERROR: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	*out_fd = fds[0];
	return pid;
}

char *
client_cmd_first_line(const char *path, const char *arg)
{
	char *const argv[] = {(char *) path, (char *) arg, NULL};
	int fd;
	pid_t pid = start(NULL, argv, &fd);
	char buf[256];
	ssize_t n, len = 0;

	if (pid < 0)
		return NULL;
	while (len < (ssize_t) sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - (size_t) len)) != 0)
		if (n > 0)
			len += n;
		else if (errno != EINTR)
			break;
	buf[len] = '\0';
	close(fd);
	if (wait_for(pid) != 0 || len == 0)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return xstrdup(buf);
}

int
client_cmd_run(PGconn *conn, char *const *argv, const char *prefix)
{
	int fd;
	pid_t pid = start(conn, argv, &fd);

	if (pid < 0)
	{
		log_error("cannot start %s: %s", argv[0], strerror(errno));
		return -1;
	}
	read_output(fd, pid, prefix);
	close(fd);
	return wait_for(pid);
}
