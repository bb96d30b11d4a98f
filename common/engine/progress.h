/*
 * progress.h: the progress line of batch loops: the table (or range) being
 * filled, its rows done of its total, the whole job's (every table of a
 * fill, every key range of --jobs), the rate and the time left.
 */
#ifndef PHASEMIG_PROGRESS_H
#define PHASEMIG_PROGRESS_H

#include "engine/batch.h"

/* A job of several loops starts: ROWS_TOTAL rows to walk in all, ROWS_DONE of them walked before (a resume). */
void progress_job_begin(long long rows_total, long long rows_done);
void progress_job_end(void);

/* After a batch of B that walked SCANNED rows at batch size SIZE: the line (log.h's cadence). */
void progress_batch(BatchLoop *b, long long scanned, int size);

/*
 * The rate is measured from now on, for B and the job: after a throttle
 * change or a pause the time left follows the new speed, not the average.
 */
void progress_rebase(BatchLoop *b);

/* DONE of TOTAL in percent (100 when TOTAL is 0). */
double progress_percent(long long done, long long total);

/* "about 3 min 20 s left" for SECONDS, into BUF. */
void progress_eta_text(double seconds, char *buf, size_t size);

#endif
