/*
 * run.c: the start and end of every subcommand run: plan, connection, lock,
 * run id (libuuid), log file, and the phase-level migration_log row.
 */
#include "run.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "db.h"
#include "guard.h"
#include "log.h"
#include "strbuf.h"

static void
close_connection(void *arg)
{
	Run *run = arg;

	PQfinish(run->conn);
	run->conn = NULL;
}

static char *
client_name(void)
{
	char host[256] = "";
	const char *user = getenv("USER");
	struct passwd pwbuf, *pw = NULL;
	char buf[1024];

	if (user == NULL)
		user = getenv("LOGNAME");
	if (user == NULL && getpwuid_r(geteuid(), &pwbuf, buf, sizeof buf, &pw) == 0 && pw != NULL)
		user = pw->pw_name;
	gethostname(host, sizeof host - 1);
	return str_printf("%s@%s", user ? user : "unknown", host);
}

static void
open_run_log(Run *run, const Options *opts)
{
	char *path;

	if (mkdir(opts->logs_dir, 0755) != 0 && errno != EEXIST)
	{
		log_warning("could not create log directory \"%s\": %s", opts->logs_dir, strerror(errno));
		return;
	}
	path = str_printf("%s/%s.log", opts->logs_dir, run->run_id);
	if (!log_open_file(path))
		log_warning("could not open run log \"%s\": %s", path, strerror(errno));
	free(path);
}

Run *
run_start(int phase, const Options *opts, bool take_lock)
{
	Run *run = xcalloc(1, sizeof(Run));
	uuid_t id;
	char *appname;
	DbRetry retry;

	run->phase = phase;
	run->subcommand = opts->subcommand;
	uuid_generate_random(id);
	uuid_unparse_lower(id, run->run_id);
	/* the retry jitter must differ between two runs started at the same moment */
	srandom((unsigned) id[0] << 24 | (unsigned) id[1] << 16 | (unsigned) id[2] << 8 | id[3]);
	run->client = client_name();

	run->plan = plan_load(opts->plan_path);
	if (run->plan == NULL)
		exit(EXIT_BAD_INPUT);
	if (take_lock)
	{
		open_run_log(run, opts);
		log_info("%s %s: plan \"%s\", run %s", log_progname(), opts->subcommand, run->plan->name, run->run_id);
	}

	appname = str_printf("%s %s (phasemig run %.8s)", log_progname(), opts->subcommand, run->run_id);
	run->conn = db_connect(opts->dbname, appname);
	free(appname);
	if (run->conn == NULL)
		log_exit(EXIT_FAILED);
	log_on_exit(close_connection, run);
	if (!plan_bind(run->plan, run->conn))
		log_exit(EXIT_BAD_INPUT);

	retry = *db_get_retry();
	retry.lock_timeout_ms = opts->lock_timeout_ms > 0 ? opts->lock_timeout_ms : run->plan->lock_timeout_ms;
	retry.max_attempts = run->plan->ddl_attempts;
	db_set_retry(&retry);

	if (take_lock && !guard_take(run->conn, run->plan))
	{
		char *holder = guard_holder(run->conn, run->plan);

		log_error("another run holds the lock of plan \"%s\" on table %s", run->plan->name, run->plan->q_table);
		log_detail("held by %s", holder ? holder : "a session that has just ended; try again");
		log_hint("wait for it to finish; phasemig never runs two operators at once");
		free(holder);
		log_exit(EXIT_LOCKED);
	}
	return run;
}

void
run_begin_phase(Run *run)
{
	run->phase_entry = mlog_begin(run, run->subcommand, -1, 0, NULL);
}

void
run_require_state(Run *run)
{
	if (mlog_state_exists(run->conn))
		return;
	log_error("phase1 has not been applied to this database (there is no migration_log)");
	log_hint("run \"phase1 apply\" first");
	run_finish(run, EXIT_FAILED, NULL);
}

void
run_finish(Run *run, int code, const char *message)
{
	const char *status = code == EXIT_DONE ? "done" : code == EXIT_REFUSED ? "refused" : "failed";

	if (run->phase_entry > 0 && run->conn && PQstatus(run->conn) == CONNECTION_OK)
		mlog_finish(run, run->phase_entry, status, 0, message, run->phase_metadata);
	if (code == EXIT_DONE && log_file_path())
		log_info("%s %s: done%s%s", log_progname(), run->subcommand, log_file_path() ? ", log " : "",
				 log_file_path() ? log_file_path() : "");
	else if (log_file_path())
		log_info("run log: %s", log_file_path());
	log_exit(code);
}
