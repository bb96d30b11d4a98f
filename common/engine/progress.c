/*
 * progress.c: the figures of the progress line (progress.h), shared by the
 * --jobs workers under a mutex; log.c decides when a line is shown.
 */
#include "engine/progress.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>

#include "core/clock.h"
#include "core/log.h"

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

void
progress_batch(BatchLoop *b, long long scanned, int size)
{
	char text[1024], eta[64] = "";
	int len;
	json_t *figures = json_pack("{s:s, s:I, s:I, s:i}", "what", b->what, "rows_done", (json_int_t) b->rows_done,
								"rows_changed", (json_int_t) b->changed, "batch_size", size);
	long long done, total, since_start;
	double elapsed, rate;

	/* the job's figures when a job is going, else this loop's own */
	pthread_mutex_lock(&mutex);
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
		len = snprintf(text, sizeof text, "%s: %lld of %lld rows (%.0f%%)", b->what, b->rows_done, b->rows_total,
					   progress_percent(b->rows_done, b->rows_total));
		json_object_set_new(figures, "rows_total", json_integer(b->rows_total));
	}
	else
		len = snprintf(text, sizeof text, "%s: %lld rows", b->what, b->rows_done);
	if (job.on && len < (int) sizeof text)
	{
		len += snprintf(text + len, sizeof text - (size_t) len, "; job %lld of %lld rows (%.0f%%)", done, total,
						progress_percent(done, total));
		json_object_set_new(figures, "job_rows_done", json_integer(done));
		json_object_set_new(figures, "job_rows_total", json_integer(total));
	}
	if (rate > 0 && total >= done && len < (int) sizeof text)
	{
		double left = (double) (total - done) / rate;

		progress_eta_text(left, eta, sizeof eta);
		len += snprintf(text + len, sizeof text - (size_t) len, "; %.0f rows/s, %s", rate, eta);
		json_object_set_new(figures, "rows_per_second", json_real(rate));
		json_object_set_new(figures, "eta_seconds", json_real(left));
	}
	if (len < (int) sizeof text)
		snprintf(text + len, sizeof text - (size_t) len, "; %lld changed, batch size %d", b->changed, size);
	log_progress_figures(text, figures);
}
