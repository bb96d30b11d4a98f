/*
 * hook.c: see hook.h.  The event goes through a pipe to a child running
 * "/bin/sh -c CMD"; its standard output and error come back through pipes of
 * their own, line by line into the run log (never the operator's streams);
 * SIGPIPE is ignored while writing (a hook may not read it), and the child
 * is killed after HOOK_TIMEOUT_S.
 */
#include "engine/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/db.h"
#include "core/db_target.h"
#include "core/log.h"
#include "core/strbuf.h"

/* the longest line of a hook's output logged as one; a longer one goes in pieces */
#define HOOK_LINE_MAX 4096

static const char *hook_cmd;
/* the run's database, as every event names it (JSON null until it connected) */
static json_t *hook_database;
/* progress events: every progress_every_ms while the run (hook_run, from its start event on) walks batches */
static pthread_mutex_t progress_mutex = PTHREAD_MUTEX_INITIALIZER;
static const Run *hook_run;
static double progress_every_ms;
static double progress_last_ms;

void
hook_set(const char *cmd)
{
	hook_cmd = cmd ? cmd : getenv("PHASEMIG_HOOK");
	if (hook_cmd && hook_cmd[0] == '\0')
		hook_cmd = NULL;
}

void
hook_set_progress_interval(double minutes)
{
	progress_every_ms = minutes * 60000.0;
}

/* One stream of the hook's output: its pipe, and a line not ended yet. */
typedef struct HookStream
{
	int fd; /* -1: closed */
	const char *name;
	char line[HOOK_LINE_MAX];
	size_t len;
	bool wrote; /* something was logged */
} HookStream;

static void
stream_flush(HookStream *s)
{
	if (s->len > 0 && s->line[s->len - 1] == '\r')
		s->len--;
	s->line[s->len] = '\0';
	log_hook_output(s->name, s->line);
	s->wrote = true;
	s->len = 0;
}

/* Read what S's pipe holds now into lines; at its end (or an error) the last line and the pipe are closed. */
static void
stream_read(HookStream *s)
{
	char buf[4096];
	ssize_t n;

	while (s->fd >= 0)
	{
		n = read(s->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
		{
			if (s->len > 0)
				stream_flush(s);
			close(s->fd);
			s->fd = -1;
			return;
		}
		for (ssize_t i = 0; i < n; i++)
		{
			if (buf[i] == '\n')
				stream_flush(s);
			else
			{
				s->line[s->len++] = buf[i];
				if (s->len == sizeof s->line - 1)
					stream_flush(s);
			}
		}
	}
}

/* Write what is left of TEXT (from *OFF) to FD without blocking; false when the reader went away. */
static bool
write_some(int fd, const char *text, size_t *off)
{
	size_t left = strlen(text + *off);

	while (left > 0)
	{
		ssize_t n = write(fd, text + *off, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		*off += (size_t) n;
		left -= (size_t) n;
	}
	return true;
}

/*
 * Feed TEXT to the child PID on IN while its output (OUT) goes to the run
 * log, up to HOOK_TIMEOUT_S (then it is killed); its wait status, or -1 when
 * killed.  *UNREAD: the hook did not read all of TEXT.  IN is closed.
 */
static int
converse(pid_t pid, int in, const char *text, HookStream out[2], bool *unread)
{
	struct sigaction ignore = {.sa_handler = SIG_IGN}, old;
	double deadline = clock_now_ms() + HOOK_TIMEOUT_S * 1000.0;
	size_t off = 0;
	int status = -1;
	bool reaped = false;

	sigaction(SIGPIPE, &ignore, &old);
	*unread = false;
	while (!reaped)
	{
		struct pollfd fds[3];
		nfds_t n = 0;
		pid_t r;

		if (in >= 0)
			fds[n++] = (struct pollfd){.fd = in, .events = POLLOUT};
		for (int i = 0; i < 2; i++)
			if (out[i].fd >= 0)
				fds[n++] = (struct pollfd){.fd = out[i].fd, .events = POLLIN};
		if (n > 0)
			poll(fds, n, 50);
		else
			db_sleep_ms(50);
		if (in >= 0 && (!write_some(in, text, &off) || text[off] == '\0'))
		{
			*unread = text[off] != '\0';
			close(in);
			in = -1;
		}
		for (int i = 0; i < 2; i++)
			stream_read(&out[i]);
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			reaped = true;
		else if (clock_now_ms() > deadline)
		{
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			status = -1;
			reaped = true;
		}
	}
	if (in >= 0)
	{
		*unread = text[off] != '\0';
		close(in);
	}
	/* what it wrote before it ended; a process it left behind holding the pipes is not waited for */
	for (int i = 0; i < 2; i++)
	{
		stream_read(&out[i]);
		if (out[i].len > 0)
			stream_flush(&out[i]);
		if (out[i].fd >= 0)
			close(out[i].fd);
	}
	sigaction(SIGPIPE, &old, NULL);
	return status;
}

/* Run the hook with EVENT (stolen) on its standard input. */
static void
run_hook(json_t *event)
{
	char *text = json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *line = text ? str_printf("%s\n", text) : NULL;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	HookStream streams[2] = {{.name = "stdout"}, {.name = "stderr"}};
	pid_t pid = -1;
	int status;
	bool unread;

	json_decref(event);
	free(text);
	if (line == NULL || pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0 || (pid = fork()) < 0)
	{
		log_warning("could not run the hook: %s; the run goes on", strerror(errno));
		for (int i = 0; i < 2; i++)
		{
			if (in[i] >= 0)
				close(in[i]);
			if (out[i] >= 0)
				close(out[i]);
			if (err[i] >= 0)
				close(err[i]);
		}
		free(line);
		return;
	}
	if (pid == 0)
	{
		/* the child: the event on stdin, its output to us (ours is the operator's) */
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		for (int i = 0; i < 2; i++)
			close(in[i]), close(out[i]), close(err[i]);
		execl("/bin/sh", "sh", "-c", hook_cmd, (char *) NULL);
		_exit(127);
	}
	close(in[0]), close(out[1]), close(err[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	streams[0].fd = out[0];
	streams[1].fd = err[0];
	status = converse(pid, in[1], line, streams, &unread);
	free(line);
	if (unread)
		log_warning("the hook did not read its event");
	if (status == -1)
		log_warning("the hook ran longer than %d s and was stopped; the run's outcome is unchanged", HOOK_TIMEOUT_S);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warning("the hook failed (exit status %d); the run's outcome is unchanged",
					WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	if ((status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) && (streams[0].wrote || streams[1].wrote)
		&& log_file_path())
		log_detail("its output is in the run log %s", log_file_path());
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
	if (hook_cmd == NULL)
		return;
	run_hook(event_of(run, "start", "running"));
	pthread_mutex_lock(&progress_mutex);
	hook_run = run;
	progress_last_ms = clock_now_ms();
	pthread_mutex_unlock(&progress_mutex);
}

void
hook_progress(const json_t *figures)
{
	const Run *run;
	json_t *event;

	pthread_mutex_lock(&progress_mutex);
	run = hook_run;
	if (run == NULL || progress_every_ms <= 0 || clock_now_ms() - progress_last_ms < progress_every_ms)
	{
		pthread_mutex_unlock(&progress_mutex);
		return;
	}
	progress_last_ms = clock_now_ms();
	pthread_mutex_unlock(&progress_mutex);
	event = event_of(run, "progress", "running");
	if (figures)
		json_object_set_new(event, "figures", json_deep_copy(figures));
	run_hook(event);
}

void
hook_end(const Run *run, int code, const char *status, const char *message)
{
	json_t *event;

	if (hook_cmd == NULL)
		return;
	pthread_mutex_lock(&progress_mutex);
	hook_run = NULL;
	pthread_mutex_unlock(&progress_mutex);
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
