/*
 * stop.c: the signal handler behind stop.h.  It only sets flags and calls
 * PQcancel, which libpq documents as safe to call from a signal handler.
 */
#include "core/stop.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t batch_boundary;
/* the run's connection first, then phase2 --jobs workers' */
static PGcancel *volatile cancel_handles[1 + STOP_MAX_WATCHED];

static void
on_stop_signal(int signo)
{
	bool first = stop_signal == 0;

	stop_signal = signo;
	if (first && batch_boundary)
		return;
	for (int i = 0; i < (int) (sizeof cancel_handles / sizeof cancel_handles[0]); i++)
		if (cancel_handles[i] != NULL)
		{
			char err[256];

			PQcancel(cancel_handles[i], err, sizeof err);
		}
}

void
stop_install(PGconn *conn)
{
	struct sigaction sa;

	cancel_handles[0] = PQgetCancel(conn);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int
stop_requested(void)
{
	return stop_signal;
}

const char *
stop_signal_name(void)
{
	return stop_signal == SIGINT ? "SIGINT" : stop_signal == SIGTERM ? "SIGTERM" : "a signal";
}

void
stop_at_batch_boundary(bool on)
{
	batch_boundary = on;
}

void
stop_watch(int slot, PGconn *conn)
{
	PGcancel *old = cancel_handles[slot];

	/* the handler sees either the old handle or the new one, never half of one */
	cancel_handles[slot] = conn ? PQgetCancel(conn) : NULL;
	if (old)
		PQfreeCancel(old);
}
