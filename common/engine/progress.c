/*
 * progress.c: the figures of the progress line (progress.h), shared by the
 * --jobs workers under a mutex, and the line fitted to a terminal's width;
 * log.c decides when a line is shown; the hook's progress event.
 */
#include "engine/progress.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>

#include "core/clock.h"
#include "core/log.h"
#include "engine/hook.h"

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static struct
{
	bool on;
	long long total, done, done_at_start;
	double started;
} job;

void
progress_job_begin(long long rows_total, long long rows_done)
{
	pthread_mutex_lock(&mutex);
	job.on = true;
	job.total = rows_total;
	job.done = job.done_at_start = rows_done;
	job.started = (clock_now_ms() / 1000.0);
	pthread_mutex_unlock(&mutex);
}

void
progress_job_end(void)
{
	pthread_mutex_lock(&mutex);
	job.on = false;
	pthread_mutex_unlock(&mutex);
}

void
progress_rebase(BatchLoop *b)
{
	pthread_mutex_lock(&mutex);
	b->progress_from_s = clock_now_ms() / 1000.0;
	b->progress_from_rows = b->rows_done;
	if (job.on)
	{
		job.started = b->progress_from_s;
		job.done_at_start = job.done;
	}
	pthread_mutex_unlock(&mutex);
}

void
progress_eta_text(double seconds, char *buf, size_t size)
{
	long s = (long) (seconds + 0.5);

	if (s >= 3600)
		snprintf(buf, size, "about %ld h %02ld min left", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, size, "about %ld min %02ld s left", s / 60, s % 60);
	else
		snprintf(buf, size, "about %ld s left", s);
}

double
progress_percent(long long done, long long total)
{
	return total > 0 ? 100.0 * (double) done / (double) total : 100.0;
}

/* The parts of a progress line, in the order it shows them. */
enum
{
	PART_TABLE, /* this table's (or range's) rows */
	PART_JOB,   /* the whole job's */
	PART_RATE,
	PART_ETA,
	PART_TAIL, /* rows changed, batch size */
	N_PARTS
};

/* PARTS whose bit is in MASK joined into BUF, "; " between them but ", " before the time left. */
static size_t
join_parts(char parts[N_PARTS][256], unsigned mask, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < N_PARTS && len < size; i++)
		if ((mask & (1u << i)) && parts[i][0])
			len += (size_t) snprintf(buf + len, size - len, "%s%s",
									 len == 0                                          ? ""
										 : i == PART_ETA && (mask & (1u << PART_RATE)) ? ", "
																					   : "; ",
									 parts[i]);
	return len;
}

/* Display columns of TEXT (each UTF-8 character one). */
static int
columns_of(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += ((unsigned char) *text & 0xC0) != 0x80;
	return n;
}

/*
 * The line for a terminal of COLS columns into BUF: every part when it fits,
 * else without the table's part (when a job line says the whole), then
 * without rows changed and batch size, then the rate, then the time left;
 * log.c cuts what is still too long.
 */
static void
fit_parts(char parts[N_PARTS][256], int cols, char *buf, size_t size)
{
	const unsigned all = (1u << N_PARTS) - 1;
	const unsigned no_table = parts[PART_JOB][0] ? all & ~(1u << PART_TABLE) : all;
	const unsigned steps[] = {all, no_table, no_table & ~(1u << PART_TAIL),
							  no_table & ~(1u << PART_TAIL) & ~(1u << PART_RATE),
							  no_table & ~(1u << PART_TAIL) & ~(1u << PART_RATE) & ~(1u << PART_ETA)};

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
	{
		join_parts(parts, steps[i], buf, size);
		if (columns_of(buf) <= cols)
			return;
	}
}

void
progress_batch(BatchLoop *b, long long scanned, int size)
{
	char parts[N_PARTS][256] = {{0}};
	char text[1024], tty_text[1024];
	int cols = log_progress_columns();
	json_t *figures = json_pack("{s:s, s:I, s:I, s:i}", "what", b->what, "rows_done", (json_int_t) b->rows_done,
								"rows_changed", (json_int_t) b->changed, "batch_size", size);
	long long done, total, since_start;
	double elapsed, rate;
	bool job_on;

	/* the job's figures when a job is going, else this loop's own */
	pthread_mutex_lock(&mutex);
	job_on = job.on;
	if (job.on)
	{
		job.done += scanned;
		done = job.done, total = job.total, since_start = job.done - job.done_at_start;
		elapsed = (clock_now_ms() / 1000.0) - job.started;
	}
	else
	{
		done = b->rows_done, total = b->rows_total, since_start = b->rows_done - b->progress_from_rows;
		elapsed = (clock_now_ms() / 1000.0) - b->progress_from_s;
	}
	pthread_mutex_unlock(&mutex);
	rate = elapsed > 0 ? (double) since_start / elapsed : 0;

	if (b->rows_total >= 0)
	{
		snprintf(parts[PART_TABLE], sizeof parts[0], "%s: %lld of %lld rows (%.0f%%)", b->what, b->rows_done,
				 b->rows_total, progress_percent(b->rows_done, b->rows_total));
		json_object_set_new(figures, "rows_total", json_integer(b->rows_total));
	}
	else
		snprintf(parts[PART_TABLE], sizeof parts[0], "%s: %lld rows", b->what, b->rows_done);
	if (job_on)
	{
		snprintf(parts[PART_JOB], sizeof parts[0], "job %lld of %lld rows (%.0f%%)", done, total,
				 progress_percent(done, total));
		json_object_set_new(figures, "job_rows_done", json_integer(done));
		json_object_set_new(figures, "job_rows_total", json_integer(total));
	}
	if (rate > 0 && total >= done)
	{
		double left = (double) (total - done) / rate;

		snprintf(parts[PART_RATE], sizeof parts[0], "%.0f rows/s", rate);
		progress_eta_text(left, parts[PART_ETA], sizeof parts[0]);
		json_object_set_new(figures, "rows_per_second", json_real(rate));
		json_object_set_new(figures, "eta_seconds", json_real(left));
	}
	snprintf(parts[PART_TAIL], sizeof parts[0], "%lld changed, batch size %d", b->changed, size);
	join_parts(parts, (1u << N_PARTS) - 1, text, sizeof text);
	if (cols > 0)
		fit_parts(parts, cols, tty_text, sizeof tty_text);
	hook_progress(figures);
	log_progress_figures(text, cols > 0 ? tty_text : NULL, figures);
}
