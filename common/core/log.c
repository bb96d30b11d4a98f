/*
 * log.c: stderr messages mirrored into the run log, progress lines, and the
 * exit path that runs registered cleanups (as pg_dump's exit_nicely does).
 */
#include "core/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/strbuf.h"

static const char *progname = "phasemig";
static FILE *logfile;
static char *logfile_path;
/* log_hold_file_lines(): logfile is a memory stream until log_open_file() */
static bool holding;
static char *held;
static size_t held_len;
/* log_on_exit's, grown as registered; only the main thread exits (log_exit) */
static struct Cleanup
{
	CleanupFn fn;
	void *arg;
} *cleanups;
static int n_cleanups, room_cleanups;
static pthread_mutex_t cleanup_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_t main_thread;
static bool main_thread_known;
static bool progress_shown;
static time_t progress_last;      /* the last progress line on stderr */
static time_t progress_file_last; /* ... and in the run log */
static bool progress_quiet;       /* --quiet: no progress on stderr */
#define PROGRESS_EVERY_S 5
static char *first_error; /* the run's first error message: the reason it failed */
static int exit_code = -1;
static bool quiet;
/* --log-format=json: each line a JSON object, with the run's context */
static bool as_json;
static int context_phase;
static char context_subcommand[32];
static char context_run_id[40];
static char context_step[256];
/* phase2 --jobs logs from several threads: one message at a time */
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

/*
 * A closed standard descriptor would be the next file or socket opened (the
 * database connection): what the program then writes to stdout, a dry run's
 * SQL, would go to the server.  Each closed one is opened on /dev/null, as
 * many Unix tools do, before anything else is opened.
 */
static void
open_closed_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0)
		{
			int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);

			if (null >= 0 && null != fd)
				close(null); /* fd was open after all */
		}
}

void
log_init(const char *name)
{
	const char *slash = strrchr(name, '/');

	open_closed_std_fds();

	progname = slash ? slash + 1 : name;
	main_thread = pthread_self();
	main_thread_known = true;
}

const char *
log_progname(void)
{
	return progname;
}

void
log_set_quiet(bool on)
{
	quiet = on;
}

/* open(2) with FLAGS and mode 0600, as a stdio stream; NULL with errno set. */
static FILE *
open_private(const char *path, int flags, const char *mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0600);
	FILE *fp = fd >= 0 ? fdopen(fd, mode) : NULL;

	if (fp == NULL && fd >= 0)
		close(fd);
	return fp;
}

FILE *
log_create_private_file(const char *path)
{
	return open_private(path, O_TRUNC, "w");
}

void
log_hold_file_lines(void)
{
	if (logfile == NULL && (logfile = open_memstream(&held, &held_len)) != NULL)
		holding = true;
}

bool
log_open_file(const char *path)
{
	FILE *fp = open_private(path, O_APPEND, "a");

	if (fp == NULL)
		return false;
	if (holding)
	{
		/* what the run said before its log had a place: first in the file */
		fflush(logfile);
		fwrite(held, 1, held_len, fp);
		fclose(logfile);
		free(held);
		held = NULL;
		holding = false;
	}
	logfile = fp;
	free(logfile_path);
	logfile_path = strdup(path);
	return true;
}

const char *
log_file_path(void)
{
	return logfile_path;
}

void
log_close_file(void)
{
	if (logfile)
		fclose(logfile);
	logfile = NULL;
	free(held);
	held = NULL;
	holding = false;
}

static void
clear_progress(void)
{
	if (progress_shown && isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

void
log_set_json(bool on)
{
	as_json = on;
}

void
log_set_context(int phase, const char *subcommand, const char *run_id)
{
	context_phase = phase;
	snprintf(context_subcommand, sizeof context_subcommand, "%s", subcommand ? subcommand : "");
	snprintf(context_run_id, sizeof context_run_id, "%s", run_id ? run_id : "");
}

void
log_set_step(const char *step)
{
	pthread_mutex_lock(&log_mutex);
	snprintf(context_step, sizeof context_step, "%s", step ? step : "");
	pthread_mutex_unlock(&log_mutex);
}

/* "2026-11-30 13:58:52 +0000": the run log's stamp, with its time zone. */
static void
local_stamp(char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	strftime(buf, size, "%Y-%m-%d %H:%M:%S %z", localtime_r(&now, &tm));
}

/*
 * One message as a JSON object on one line (--log-format=json): ISO 8601
 * UTC time, level, program, the run's phase, subcommand, id and step when
 * known, the message, and FIGURES (a JSON object, stolen) when given.
 */
static char *
json_line(const char *level, const char *text, json_t *figures, json_t *extra)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	json_t *obj;
	char *line;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof stamp - strlen(stamp), ".%03ldZ", ts.tv_nsec / 1000000);
	obj = json_pack("{s:s, s:s, s:s}", "time", stamp, "level", level, "program", progname);
	if (context_phase > 0)
		json_object_set_new(obj, "phase", json_integer(context_phase));
	if (context_subcommand[0])
		json_object_set_new(obj, "subcommand", json_string(context_subcommand));
	if (context_run_id[0])
		json_object_set_new(obj, "run_id", json_string(context_run_id));
	if (context_step[0])
		json_object_set_new(obj, "step", json_string(context_step));
	if (extra)
		json_object_update(obj, extra);
	json_decref(extra);
	json_object_set_new(obj, "message", json_string(text));
	if (figures)
		json_object_set_new(obj, "figures", figures);
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	return line;
}

/* Where write_to() writes a line. */
enum
{
	TO_STDERR = 1,
	TO_FILE = 2
};

/* LEVEL ("error", "info"...) and TEXT to stderr and/or the run log (WHERE), as text or JSON. */
static void
write_to(unsigned where, const char *level, const char *text, json_t *figures)
{
	if (!logfile)
		where &= ~(unsigned) TO_FILE;
	if (as_json)
	{
		char *line = json_line(level, text, figures, NULL);

		if (line && (where & TO_STDERR))
			fprintf(stderr, "%s\n", line);
		if (line && (where & TO_FILE))
			fprintf(logfile, "%s\n", line);
		free(line);
	}
	else
	{
		const char *label = strcmp(level, "info") == 0 || strcmp(level, "progress") == 0 ? "" : level;
		const char *colon = label[0] ? ": " : "";

		json_decref(figures);
		if (where & TO_STDERR)
			fprintf(stderr, "%s: %s%s%s\n", progname, label, colon, text);
		if (where & TO_FILE)
		{
			char stamp[40];

			local_stamp(stamp, sizeof stamp);
			fprintf(logfile, "%s %s: %s%s%s\n", stamp, progname, label, colon, text);
		}
	}
	if (where & TO_FILE)
		fflush(logfile);
}

static void
write_line(const char *level, const char *text, json_t *figures)
{
	write_to(TO_STDERR | TO_FILE, level, text, figures);
}

void
log_hook_output(const char *stream, const char *text)
{
	char *clean = strdup(text);

	if (quiet || logfile == NULL || clean == NULL)
	{
		free(clean);
		return;
	}
	/* JSON holds UTF-8 only: in a line that is not, each byte past ASCII becomes "?" */
	{
		json_t *probe = json_string(clean);

		if (probe == NULL)
			for (char *c = clean; *c; c++)
				if ((unsigned char) *c >= 0x80)
					*c = '?';
		json_decref(probe);
	}
	pthread_mutex_lock(&log_mutex);
	if (as_json)
	{
		char *line = json_line("info", clean, NULL, json_pack("{s:s, s:s}", "event", "hook_output", "stream", stream));

		if (line)
			fprintf(logfile, "%s\n", line);
		free(line);
	}
	else
	{
		char stamp[40];

		local_stamp(stamp, sizeof stamp);
		fprintf(logfile, "%s %s: hook %s: %s\n", stamp, progname, stream, clean);
	}
	fflush(logfile);
	pthread_mutex_unlock(&log_mutex);
	free(clean);
}

void
log_statement(const char *sql)
{
	char *line;

	if (quiet || logfile == NULL)
		return;
	line = str_one_line(sql);
	pthread_mutex_lock(&log_mutex);
	write_to(TO_FILE, "statement", line, NULL);
	pthread_mutex_unlock(&log_mutex);
	free(line);
}

/* TEXT at LEVEL, unless quiet. */
static void
emit_text(const char *level, const char *text)
{
	if (quiet)
		return;
	clear_progress();
	write_line(level, text, NULL);
}

static void
emit(const char *level, const char *fmt, va_list ap)
{
	char *text = NULL;

	if (vasprintf(&text, fmt, ap) < 0)
		return;
	emit_text(level, text);
	free(text);
}

/* Like emit(), and keeps the first error's text (1023 bytes at most) as the run's reason. */
static void
emit_error(const char *fmt, va_list ap)
{
	char *text = NULL;

	if (vasprintf(&text, fmt, ap) < 0)
		return;
	if (first_error == NULL)
		first_error = strndup(text, 1023);
	emit_text("error", text);
	free(text);
}

const char *
log_first_error(void)
{
	return first_error;
}

int
log_exit_code(void)
{
	return exit_code;
}

#define DEFINE_LEVEL(fn, label)                                                                                        \
	void fn(const char *fmt, ...)                                                                                      \
	{                                                                                                                  \
		va_list ap;                                                                                                    \
		va_start(ap, fmt);                                                                                             \
		pthread_mutex_lock(&log_mutex);                                                                                \
		emit(label, fmt, ap);                                                                                          \
		pthread_mutex_unlock(&log_mutex);                                                                              \
		va_end(ap);                                                                                                    \
	}

/* emit_error under the log's lock: log_error's and log_fatal's. */
static void
locked_error(const char *fmt, va_list ap)
{
	pthread_mutex_lock(&log_mutex);
	emit_error(fmt, ap);
	pthread_mutex_unlock(&log_mutex);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	locked_error(fmt, ap);
	va_end(ap);
}

DEFINE_LEVEL(log_warning, "warning")
DEFINE_LEVEL(log_info, "info")
DEFINE_LEVEL(log_detail, "detail")
DEFINE_LEVEL(log_hint, "hint")

void
log_hint_figures(const char *text, json_t *figures)
{
	pthread_mutex_lock(&log_mutex);
	if (quiet)
		json_decref(figures);
	else
	{
		clear_progress();
		write_line("hint", text, figures);
	}
	pthread_mutex_unlock(&log_mutex);
}

/* Whether progress lines are redrawn in place on stderr: a terminal, and text. */
static bool
progress_in_place(void)
{
	return isatty(STDERR_FILENO) && !as_json;
}

/* The terminal's width: stderr's (TIOCGWINSZ), else $COLUMNS, else 80. */
static int
terminal_columns(void)
{
	struct winsize ws;
	const char *env = getenv("COLUMNS");

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (env && atoi(env) > 0)
		return atoi(env);
	return 80;
}

int
log_progress_columns(void)
{
	int cols;

	if (!progress_in_place())
		return 0;
	/* "phase2: " before it, and the last column left empty: a line that fills it wraps on some terminals */
	cols = terminal_columns() - (int) strlen(progname) - 2 - 1;
	return cols > 10 ? cols : 10;
}

/* TEXT cut to COLS display columns (a UTF-8 character is one), into BUF of SIZE. */
static const char *
cut_to_columns(const char *text, int cols, char *buf, size_t size)
{
	size_t i = 0;
	int used = 0;

	for (; i < size - 1 && text[i]; i++)
	{
		bool starts_char = ((unsigned char) text[i] & 0xC0) != 0x80;

		if (starts_char && used == cols)
			break;
		used += starts_char;
	}
	memcpy(buf, text, i);
	buf[i] = '\0';
	return buf;
}

/*
 * A progress line: on a terminal redrawn in place at most once a second
 * (TTY_TEXT, else TEXT, cut to the terminal's width); off one (and in JSON),
 * a line every PROGRESS_EVERY_S seconds; into the run log every
 * PROGRESS_EVERY_S seconds either way.  FORCE: now, whatever the time.
 */
static void
progress_line(bool force, const char *text, const char *tty_text, json_t *figures)
{
	time_t now = time(NULL);
	bool tty = progress_in_place();
	unsigned where = 0;

	pthread_mutex_lock(&log_mutex);
	if (!quiet && !progress_quiet && (force || (tty ? now != progress_last : now - progress_last >= PROGRESS_EVERY_S)))
		where |= TO_STDERR;
	if (!quiet && logfile && (force || now - progress_file_last >= PROGRESS_EVERY_S))
		where |= TO_FILE;
	if (where & TO_STDERR)
		progress_last = now;
	if (where & TO_FILE)
		progress_file_last = now;
	if (tty && (where & TO_STDERR))
	{
		char shown[1024];

		fprintf(stderr, "\r\033[K%s: %s", progname,
				cut_to_columns(tty_text ? tty_text : text, log_progress_columns(), shown, sizeof shown));
		progress_shown = true;
		where &= ~(unsigned) TO_STDERR;
	}
	if (where)
		write_to(where, "progress", text, figures);
	else
		json_decref(figures);
	pthread_mutex_unlock(&log_mutex);
}

void
log_set_progress_quiet(bool on)
{
	progress_quiet = on;
}

void
log_progress_figures(const char *text, const char *tty_text, json_t *figures)
{
	progress_line(false, text, tty_text, figures);
}

void
log_progress(bool force, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	progress_line(force, text, NULL, NULL);
}

void
log_progress_end(void)
{
	pthread_mutex_lock(&log_mutex);
	if (progress_shown)
		fputc('\n', stderr);
	progress_shown = false;
	pthread_mutex_unlock(&log_mutex);
}

void
log_on_exit(CleanupFn fn, void *arg)
{
	/* a --jobs worker may open the --lag-query's connection, and register its close */
	pthread_mutex_lock(&cleanup_mutex);
	if (n_cleanups == room_cleanups)
	{
		room_cleanups = room_cleanups > 0 ? 2 * room_cleanups : 16;
		cleanups = xrealloc(cleanups, (size_t) room_cleanups * sizeof *cleanups);
	}
	cleanups[n_cleanups++] = (struct Cleanup){fn, arg};
	pthread_mutex_unlock(&cleanup_mutex);
}

void
log_exit(int code)
{
	/*
	 * The cleanups use the run's own connection: only the main thread may run
	 * them.  A --jobs worker returns its failure instead (engine/fill.c); one
	 * that got here is a bug, stopped before it can do harm.
	 */
	if (main_thread_known && !pthread_equal(pthread_self(), main_thread))
	{
		fprintf(stderr, "%s: internal error: exit requested from a --jobs worker thread\n", progname);
		abort();
	}
	exit_code = code;
	/* each taken off before it runs: one that exits in turn leaves the others to that exit */
	while (n_cleanups > 0)
	{
		n_cleanups--;
		cleanups[n_cleanups].fn(cleanups[n_cleanups].arg);
	}
	log_progress_end();
	log_close_file();
	exit(code);
}

void
log_fatal(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	locked_error(fmt, ap);
	va_end(ap);
	log_exit(code);
}
