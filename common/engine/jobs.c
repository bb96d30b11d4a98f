/*
 * jobs.c: --jobs's workers (jobs.h), with one thread of failure; and the
 * per-table fan-out phase3 uses (jobs_run_tables: largest table first).
 *
 * A worker runs its tasks, each a batch_loop, which never exits (batch.h):
 * when a statement fails (BEGIN, a batch, its checkpoint, COMMIT, a lost
 * connection) the worker tells it, the task keeps it (SQLSTATE, message, the
 * last committed key: BatchLoop's failure and last_key) and the worker
 * returns.  The main thread, which meanwhile only watches, sees it, tells the
 * other workers to stop at their batch boundary (batch_abandon), joins them
 * all, and only then, alone and on the run's own connection, the caller
 * (fill.c) records every task's outcome and returns the failure up to
 * run_finish, which records the run's outcome once and exits.
 *
 * Why workers that return their failure rather than N connections driven
 * asynchronously from one thread (PostgreSQL's fe_utils/parallel_slot.c, as
 * vacuumdb and reindexdb do): a vacuumdb slot sends one statement and waits
 * for it, but a phasemig batch is several statements (BEGIN, the batch, its
 * checkpoint, COMMIT) with waits between them (throttle, standby lag,
 * backoff on locked rows).  As one blocking loop per connection it stays the
 * very code of the single-connection path, and what a worker touches is a
 * short list that can be checked: batch_loop's statements (all through db.h's
 * _try functions), the log (under its mutex), the progress figures (under
 * theirs) and the task counter (under this file's mutex).  log_exit aborts
 * when a worker calls it (log.h), so a path that would exit from a worker
 * fails loudly in the tests instead of racing the main thread's cleanups.
 */
#include "engine/jobs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/batch.h"
#include "engine/progress.h"
#include "engine/run.h"

typedef struct Queue
{
	int n;
	int next; /* the next task to take */
	JobTaskFn run_task;
	void *ctx;
	pthread_mutex_t mutex;
} Queue;

typedef struct Worker
{
	Queue *q;
	Run run;              /* the run's, with this worker's connection */
	int slot;             /* 1..jobs, for stop_watch */
	int rc;               /* EXIT_DONE, or the failure of its last task (the task keeps the failed statement) */
	atomic_bool finished; /* its thread is about to return: rc is set */
	pthread_t thread;
} Worker;

/* The next task, or -1 when none is left or the jobs are told to stop (batch_abandon). */
static int
take(Queue *q)
{
	int task = -1;

	pthread_mutex_lock(&q->mutex);
	if (q->next < q->n && !batch_abandoned())
		task = q->next++;
	pthread_mutex_unlock(&q->mutex);
	return task;
}

/*
 * A worker thread: take tasks until none is left or one fails, each on this
 * worker's connection.  A failure is returned in the worker (rc; the task
 * keeps which statement failed), never exited on: the main thread decides.
 */
static void *
work(void *arg)
{
	Worker *w = arg;
	int task;

	w->rc = EXIT_DONE;
	while (w->rc == EXIT_DONE && (task = take(w->q)) >= 0)
		w->rc = w->q->run_task(&w->run, w->q->ctx, task);
	atomic_store(&w->finished, true);
	return NULL;
}

/*
 * The run's own connection (it holds the plan's lock), idle while the jobs
 * fill: still there?  Lost, the lock went with it, so the run must fail.
 */
static bool
main_connection_alive(Run *run)
{
	PGresult *res = PQexec(run->conn, "SELECT 1");
	bool ok = db_ok(res) && PQstatus(run->conn) == CONNECTION_OK;
	char why[DB_MESSAGE_MAX];

	if (!ok)
	{
		log_progress_end();
		log_error("the run's own connection was lost while the jobs filled (%s): the plan's lock went with it, "
				  "so the jobs stop at their next batch boundary",
				  db_error_line(res, run->conn, why, sizeof why));
	}
	PQclear(res);
	return ok;
}

/*
 * The main thread while the jobs fill, until every worker has returned:
 * (1) a worker that returned a failure makes the others stop at their next
 * batch boundary; (2) every second, the run's own connection is asked
 * whether it is still there, and lost, the jobs stop the same way.  Returns
 * false when it was lost.
 */
static bool
watch(Run *run, Worker *workers, int started)
{
	bool alive = true;
	int ticks = 0;

	for (;;)
	{
		bool all = true;

		for (int i = 0; i < started; i++)
		{
			bool finished = atomic_load(&workers[i].finished);

			all &= finished;
			if (finished && workers[i].rc != EXIT_DONE && !batch_abandoned())
				batch_abandon(true);
		}
		if (all)
			return alive;
		db_sleep_ms(100);
		if (!alive || ++ticks % 10 != 0)
			continue;
		if (!main_connection_alive(run))
		{
			batch_abandon(true);
			alive = false;
		}
	}
}

/* Open the workers' connections; the number opened (all JOBS, or fewer after saying why). */
static int
open_connections(Run *run, Worker *workers, int jobs)
{
	for (int i = 0; i < jobs; i++)
	{
		char what[16];

		snprintf(what, sizeof what, "job %d", i + 1);
		workers[i].run = *run;
		workers[i].slot = i + 1;
		workers[i].run.conn = run_connect(run, what);
		if (workers[i].run.conn == NULL)
		{
			log_error("could not open connection %d of the %d that --jobs asks for; nothing was filled", i + 1, jobs);
			log_hint("run with fewer --jobs, or ask for a higher max_connections");
			return i;
		}
		stop_watch(workers[i].slot, workers[i].run.conn);
	}
	return jobs;
}

int
jobs_run(Run *run, int n, int jobs, JobTaskFn run_task, void *ctx)
{
	Queue q = {.n = n, .run_task = run_task, .ctx = ctx};
	Worker *workers;
	int rc = EXIT_DONE, opened, started = 0;

	if (jobs <= 1)
	{
		for (int task = 0; rc == EXIT_DONE && task < n; task++)
			rc = run_task(run, ctx, task);
		return rc;
	}
	pthread_mutex_init(&q.mutex, NULL);
	workers = xcalloc((size_t) jobs, sizeof *workers);
	/* 1. every connection first: one that cannot be opened fails the run before anything is filled */
	opened = open_connections(run, workers, jobs);
	if (opened < jobs)
		rc = EXIT_FAILED;
	batch_abandon(false);
	/* 2. the workers */
	for (int i = 0; rc == EXIT_DONE && i < jobs; i++, started++)
	{
		workers[i].q = &q;
		if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
		{
			/* the jobs already going stop at their next batch boundary */
			log_error("could not start job %d of %d", i + 1, jobs);
			batch_abandon(true);
			rc = EXIT_FAILED;
			break;
		}
	}
	/* 3. watch them until each has returned, stopping the others at a failure */
	if (!watch(run, workers, started))
		rc = EXIT_FAILED;
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	/* 4. every worker has returned: from here on one thread, which alone records and exits */
	for (int i = 0; i < started; i++)
		if (rc == EXIT_DONE && workers[i].rc != EXIT_DONE)
			rc = workers[i].rc;
	for (int i = 0; i < opened; i++)
	{
		stop_watch(workers[i].slot, NULL);
		PQfinish(workers[i].run.conn);
	}
	batch_abandon(false);
	free(workers);
	pthread_mutex_destroy(&q.mutex);
	return rc;
}

int
jobs_run_batches(Run *run, int n, int jobs, JobTaskFn run_task, void *ctx, long long total, long long done)
{
	int rc;

	progress_job_begin(total, done);
	stop_at_batch_boundary(true);
	rc = jobs_run(run, n, jobs, run_task, ctx);
	stop_at_batch_boundary(false);
	progress_job_end();
	if (PQstatus(run->conn) != CONNECTION_OK)
	{
		rc = EXIT_FAILED;
		run_reconnect(run);
	}
	return rc;
}

PGresult *
jobs_key_ranges(Run *run, const char *table, const char *key, const char *filter, int parts)
{
	char np[16];
	const char *params[1] = {np};
	char *sql = str_printf("SELECT count(*), max(k)::text FROM (SELECT t.%s AS k, ntile($1::int) OVER (ORDER BY t.%s) "
						   "AS g FROM %s t%s%s) s GROUP BY g ORDER BY g",
						   key, key, table, filter ? " WHERE " : "", filter ? filter : "");
	PGresult *res;

	snprintf(np, sizeof np, "%d", parts);
	res = db_query(run->conn, sql, 1, params);
	free(sql);
	return res;
}

/* jobs_run_tables's order over the caller's tasks. */
typedef struct TableOrder
{
	int *order; /* the caller's task of each of our tasks */
	JobTaskFn run_task;
	void *ctx;
} TableOrder;

static int
run_in_order(Run *run, void *ctx, int task)
{
	TableOrder *to = ctx;

	return to->run_task(run, to->ctx, to->order[task]);
}

int
jobs_run_tables(Run *run, const char *const *qtables, int n, int jobs, JobTaskFn run_task, void *ctx)
{
	TableOrder to = {.run_task = run_task, .ctx = ctx};
	long long *size;
	int rc;

	/* 1. alone (or printing a dry run): the given order, on the run's own connection */
	if (jobs <= 1 || n <= 1 || dryrun_on())
		return jobs_run(run, n, 1, run_task, ctx);
	/* 2. each table's heap size, then the largest first (insertion sort: a plan has a few tables) */
	size = xcalloc((size_t) n, sizeof *size);
	to.order = xcalloc((size_t) n, sizeof *to.order);
	for (int i = 0; i < n; i++)
	{
		const char *params[1] = {qtables[i]};
		int j = i;

		size[i] = db_count(run->conn, "SELECT pg_catalog.pg_relation_size($1::regclass)", 1, params);
		for (; j > 0 && size[to.order[j - 1]] < size[i]; j--)
			to.order[j] = to.order[j - 1];
		to.order[j] = i;
	}
	/* 3. never more connections than tables */
	if (jobs > n)
		jobs = n;
	log_info("%d tables on %d connections, largest first", n, jobs);
	rc = jobs_run(run, n, jobs, run_in_order, &to);
	free(to.order);
	free(size);
	return rc;
}
