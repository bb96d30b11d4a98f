/*
 * hook.c: see hook.h.  The event goes through a pipe to a child running
 * "/bin/sh -c CMD"; SIGPIPE is ignored while writing (a hook may not read
 * it), and the child is killed after HOOK_TIMEOUT_S.
 */
#include "engine/hook.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/db.h"
#include "core/db_target.h"
#include "core/log.h"

static const char *hook_cmd;
/* the run's database, as every event names it (JSON null until it connected) */
static json_t *hook_database;

void
hook_set(const char *cmd)
{
	hook_cmd = cmd ? cmd : getenv("PHASEMIG_HOOK");
	if (hook_cmd && hook_cmd[0] == '\0')
		hook_cmd = NULL;
}

/* Write all of TEXT to FD, SIGPIPE ignored; false when the reader went away. */
static bool
write_all(int fd, const char *text)
{
	struct sigaction ignore = {.sa_handler = SIG_IGN}, old;
	size_t left = strlen(text);
	bool ok = true;

	sigaction(SIGPIPE, &ignore, &old);
	while (left > 0 && ok)
	{
		ssize_t n = write(fd, text, left);

		if (n < 0 && errno == EINTR)
			continue;
		ok = n > 0;
		text += n > 0 ? n : 0;
		left -= n > 0 ? (size_t) n : 0;
	}
	sigaction(SIGPIPE, &old, NULL);
	return ok;
}

/* Wait for PID up to HOOK_TIMEOUT_S (then kill it); its wait status, or -1 when killed. */
static int
wait_bounded(pid_t pid)
{
	int status;

	for (int waited_ms = 0; waited_ms < HOOK_TIMEOUT_S * 1000; waited_ms += 50)
	{
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		db_sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* Run the hook with EVENT (stolen) on its standard input. */
static void
run_hook(json_t *event)
{
	char *text = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int fds[2];
	pid_t pid;
	int status;

	json_decref(event);
	if (text == NULL || pipe(fds) != 0 || (pid = fork()) < 0)
	{
		log_warning("could not run the hook: %s; the run goes on", strerror(errno));
		free(text);
		return;
	}
	if (pid == 0)
	{
		/* the child: the event on stdin, stdout to stderr (ours is the operator's output) */
		dup2(fds[0], STDIN_FILENO);
		dup2(STDERR_FILENO, STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", hook_cmd, (char *) NULL);
		_exit(127);
	}
	close(fds[0]);
	if (!write_all(fds[1], text) || !write_all(fds[1], "\n"))
		log_warning("the hook did not read its event");
	close(fds[1]);
	free(text);
	status = wait_bounded(pid);
	if (status == -1)
		log_warning("the hook ran longer than %d s and was stopped; the run's outcome is unchanged", HOOK_TIMEOUT_S);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warning("the hook failed (exit status %d); the run's outcome is unchanged",
					WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* The fields of every event. */
static json_t *
event_of(const Run *run, const char *event, const char *status)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	/* the database (db_target.h): null when the run ended before it connected */
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:o}", "event", event, "time", stamp, "plan",
					 run->plan ? run->plan->name : "", "phase", run->phase, "subcommand", run->subcommand, "run_id",
					 run->run_id, "status", status, "database",
					 hook_database ? json_incref(hook_database) : json_null());
}

void
hook_set_database(const PGconn *conn)
{
	json_decref(hook_database);
	hook_database = db_target_json(conn);
}

void
hook_start(const Run *run)
{
	if (hook_cmd)
		run_hook(event_of(run, "start", "running"));
}

void
hook_end(const Run *run, int code, const char *status, const char *message)
{
	json_t *event;

	if (hook_cmd == NULL)
		return;
	event = event_of(run, "end", status);
	json_object_set_new(event, "exit_code", json_integer(code));
	json_object_set_new(event, "message", message ? json_string(message) : json_null());
	if (run->phase_metadata)
	{
		json_t *figures = json_loads(run->phase_metadata, 0, NULL);

		if (figures)
			json_object_set_new(event, "figures", figures);
	}
	run_hook(event);
}
