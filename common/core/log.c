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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLEANUPS 16

static const char *progname = "phasemig";
static FILE *logfile;
static char *logfile_path;
static struct
{
	CleanupFn fn;
	void *arg;
} cleanups[MAX_CLEANUPS];
static int n_cleanups;
static bool progress_shown;
static time_t progress_last;
static char *first_error; /* the run's first error message: the reason it failed */
static int exit_code = -1;
static bool quiet;
/* phase2 --jobs logs from several threads: one message at a time */
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

void
log_init(const char *name)
{
	const char *slash = strrchr(name, '/');

	progname = slash ? slash + 1 : name;
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

bool
log_open_file(const char *path)
{
	if ((logfile = open_private(path, O_APPEND, "a")) == NULL)
		return false;
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
}

static void
clear_progress(void)
{
	if (progress_shown && isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

static void
emit(const char *level, const char *fmt, va_list ap)
{
	va_list ap2;

	if (quiet)
	{
		char text[1024];

		vsnprintf(text, sizeof text, fmt, ap);
		return;
	}
	clear_progress();
	va_copy(ap2, ap);
	fprintf(stderr, "%s: %s", progname, level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (logfile)
	{
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;

		strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
		fprintf(logfile, "%s %s: %s", stamp, progname, level);
		vfprintf(logfile, fmt, ap2);
		fputc('\n', logfile);
		fflush(logfile);
	}
	va_end(ap2);
}

/* Like emit(), and keeps the first error's text as the run's reason. */
static void
emit_error(const char *fmt, va_list ap)
{
	if (first_error == NULL)
	{
		va_list ap2;
		char text[1024];

		va_copy(ap2, ap);
		vsnprintf(text, sizeof text, fmt, ap2);
		va_end(ap2);
		first_error = strdup(text);
	}
	emit("error: ", fmt, ap);
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

DEFINE_LEVEL(log_warning, "warning: ")
DEFINE_LEVEL(log_info, "")
DEFINE_LEVEL(log_detail, "detail: ")
DEFINE_LEVEL(log_hint, "hint: ")

void
log_progress(bool force, const char *fmt, ...)
{
	time_t now = time(NULL);
	bool tty = isatty(STDERR_FILENO);
	va_list ap;

	pthread_mutex_lock(&log_mutex);
	if (quiet || (!force && now == progress_last))
	{
		pthread_mutex_unlock(&log_mutex);
		return;
	}
	progress_last = now;
	va_start(ap, fmt);
	if (tty)
	{
		fprintf(stderr, "\r\033[K%s: ", progname);
		vfprintf(stderr, fmt, ap);
		progress_shown = true;
	}
	else
		emit("", fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&log_mutex);
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
	if (n_cleanups < MAX_CLEANUPS)
	{
		cleanups[n_cleanups].fn = fn;
		cleanups[n_cleanups].arg = arg;
		n_cleanups++;
	}
}

void
log_exit(int code)
{
	static pthread_mutex_t exiting = PTHREAD_MUTEX_INITIALIZER;

	/* a --jobs worker and the main thread may both fail: the first one exits, the other waits for that */
	pthread_mutex_lock(&exiting);
	exit_code = code;
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
