/*
 * log.h: messages to stderr and to the run's log file, and exiting through
 * registered cleanups.  Messages follow PostgreSQL's style: "phase2: error: ...".
 */
#ifndef PHASEMIG_LOG_H
#define PHASEMIG_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

/* Exit codes shared by every binary (documented in each --help). */
enum
{
	EXIT_DONE = 0,
	EXIT_FAILED = 1,
	EXIT_BAD_INPUT = 2,
	EXIT_REFUSED = 3,
	EXIT_LOCKED = 4
};

/* First thing in main: names the program, and opens /dev/null on a closed stdin, stdout or stderr. */
void log_init(const char *progname);
const char *log_progname(void);
/*
 * Quiet: messages are still formatted (and the first error kept) but neither
 * printed nor written to the run log.  For the fuzz targets in tests/fuzz.
 */
void log_set_quiet(bool quiet);

/*
 * --log-format=json: every message, on stderr and in the run log, is one JSON
 * object per line: time (ISO 8601, UTC), level, program, phase, subcommand,
 * run_id and step when known, message, and figures for progress lines.
 */
void log_set_json(bool on);
void log_set_context(int phase, const char *subcommand, const char *run_id);
/* The step a run is in ("step 3: create_index ..."), for JSON lines; NULL clears it. */
void log_set_step(const char *step);

/*
 * Keep the messages from now on in memory for the run log that
 * log_open_file() opens later (once the run knows where it goes).
 */
void log_hold_file_lines(void);
/*
 * Mirror every message, with a timestamp and its time zone, into FILE
 * (created 0600), after the ones held since log_hold_file_lines().
 */
bool log_open_file(const char *path);
const char *log_file_path(void);
void log_close_file(void);
/*
 * Create (or truncate) PATH for writing, readable by its owner only: files
 * in the logs directory hold emails and password digests.  NULL, errno set.
 */
FILE *log_create_private_file(const char *path);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A hint TEXT whose JSON line (--log-format=json) also carries FIGURES (a
 * JSON object, stolen): what a machine reads of it, as "figures".
 */
void log_hint_figures(const char *text, json_t *figures);

/*
 * A line TEXT a child process (the hook) wrote on STREAM ("stdout",
 * "stderr"), into the run log only: in JSON an object with event
 * "hook_output", stream and message; as text "hook stdout: ...".
 */
void log_hook_output(const char *stream, const char *text);
/* SQL, on one line, into the run log only ("statement: ..."): what a run changed. */
void log_statement(const char *sql);
/*
 * Progress line: on a terminal redrawn in place ("\r", clear to the end of
 * the line) at most once a second, cut to the terminal's width; off one, a
 * line every 5 seconds; into the run log every 5 seconds.
 */
void log_progress(bool force, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_progress_end(void);
/*
 * A progress line with its FIGURES (a JSON object, stolen; NULL for none), as
 * log_progress; TTY_TEXT (NULL: TEXT) is what a terminal shows.
 */
void log_progress_figures(const char *text, const char *tty_text, json_t *figures);
/*
 * The display columns a progress line redrawn in place has (the terminal's
 * width: TIOCGWINSZ on stderr, else $COLUMNS, else 80, less the program's
 * name), or 0 when lines are not redrawn in place (no terminal, JSON).
 */
int log_progress_columns(void);
/* --quiet: no progress lines on stderr (the run log still gets them). */
void log_set_progress_quiet(bool on);

/* The text of the run's first error (its reason), or NULL when none was logged. */
const char *log_first_error(void);

/*
 * Cleanups (any number) run in reverse order of registration by log_exit and
 * log_fatal, which the main thread alone may call: they use the run's own
 * connection.  A phase2 --jobs worker returns its failure to the main thread
 * instead (engine/jobs.c); a worker that calls them is a bug, and aborts.
 */
typedef void (*CleanupFn)(void *arg);
void log_on_exit(CleanupFn fn, void *arg);
_Noreturn void log_exit(int code);
/* Inside a cleanup: the code log_exit() was given (-1 before). */
int log_exit_code(void);
_Noreturn void log_fatal(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
