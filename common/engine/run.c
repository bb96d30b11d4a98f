/*
 * run.c: the start and end of every subcommand run: plan, connection, lock,
 * run id (libuuid), log file, and the phase-level migration_log row.
 */
#include "engine/run.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "core/db.h"
#include "core/db_target.h"
#include "core/dryrun.h"
#include "core/input_file.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/guard.h"
#include "engine/hook.h"
#include "engine/logs_dir.h"
#include "engine/operation.h"
#include "engine/phase.h"
#include "engine/role.h"
#include "engine/throttle.h"
#include "engine/trust.h"

static void
close_connection(void *arg)
{
	Run *run = arg;

	PQfinish(run->conn);
	run->conn = NULL;
}

/* The status a run's unfinished migration_log rows end with, for exit code CODE. */
static const char *
outcome_status(int code)
{
	if (code == EXIT_DONE)
		return "done";
	if (code == EXIT_REFUSED)
		return "refused";
	return stop_requested() ? "interrupted" : "failed";
}

const char *
run_failure_reason(void)
{
	static char text[64];

	if (stop_requested())
	{
		snprintf(text, sizeof text, "stopped by %s", stop_signal_name());
		return text;
	}
	return log_first_error();
}

/* Why the run ended, for migration_log's message (static storage or the log's). */
static const char *
outcome_reason(int code)
{
	static char text[64];

	if (code == EXIT_DONE)
		return NULL;
	if (run_failure_reason())
		return run_failure_reason();
	snprintf(text, sizeof text, "ended with exit code %d", code);
	return text;
}

/* The status the hook's end event gives exit code CODE. */
static const char *
hook_status(int code)
{
	switch (code)
	{
		case EXIT_DONE:
			return "done";
		case EXIT_BAD_INPUT:
			return "bad_input";
		case EXIT_REFUSED:
			return "refused";
		case EXIT_LOCKED:
			return "locked";
		default:
			return stop_requested() ? "interrupted" : "failed";
	}
}

/* Cleanup on every exit of a run that takes the lock: the hook's end event. */
static void
notify_end(void *arg)
{
	Run *run = arg;
	int code = log_exit_code();

	hook_end(run, code, run->declined && code != EXIT_DONE ? "declined" : hook_status(code), outcome_reason(code));
}

/*
 * What a run a SIGINT/SIGTERM stopped says last, once: by run_finish, or by
 * record_outcome when a failed statement ended the run at once (db.c's
 * db_x() helpers: a cancel that landed outside the batch loop).
 */
static void
tell_stopped(void)
{
	static bool told;

	if (told)
		return;
	told = true;
	log_info("stopped by %s; recorded as interrupted in migration_log: run the same command again to "
			 "continue from where it stopped",
			 stop_signal_name());
}

/*
 * Cleanup on every exit: no row of this run stays 'running'.  After a lost
 * connection it reconnects once to record that (PQreset); when that fails
 * too, the next run of the plan records the rows as interrupted.
 */
static void
record_outcome(void *arg)
{
	Run *run = arg;
	int code = log_exit_code();
	const char *params[3] = {run->run_id, run->declined ? "declined" : outcome_status(code), outcome_reason(code)};
	PGresult *res;

	if (run->conn == NULL || code == EXIT_DONE)
		return;
	if (PQstatus(run->conn) != CONNECTION_OK)
	{
		if (!run_reconnect(run))
		{
			log_warning("the connection is lost: the next run of this plan records this one as interrupted");
			return;
		}
	}
	db_end_session_work(run->conn);
	res = PQexecParams(run->conn,
					   "UPDATE public.migration_log SET status = $2, message = coalesce(message, $3), "
					   "finished_at = clock_timestamp() WHERE run_id = $1 AND status = 'running'",
					   3, NULL, params, NULL, NULL, 0);
	/* before phase1 there is no migration_log to write to: nothing to record */
	if (!db_ok(res) && strcmp(db_sqlstate(res), SQLSTATE_UNDEFINED_TABLE) != 0)
	{
		char why[DB_MESSAGE_MAX];

		log_warning("could not record the outcome in migration_log: %s; the next run of this plan records this "
					"one as interrupted",
					db_error_line(res, run->conn, why, sizeof why));
	}
	else if (db_ok(res) && stop_requested() && !run->declined)
		tell_stopped();
	PQclear(res);
}

/*
 * We hold the plan's lock, so no other run of it is alive: a row still
 * 'running' belongs to a run whose process was killed or lost its connection.
 */
static void
close_orphaned_rows(Run *run)
{
	const char *params[1] = {run->plan->name};
	PGresult *res;

	if (!mlog_state_exists(run->conn))
		return;
	res = db_query(run->conn,
				   "WITH closed AS (UPDATE public.migration_log SET status = 'interrupted', "
				   "finished_at = clock_timestamp(), message = coalesce(message, 'its process ended without "
				   "recording the outcome (killed, or the connection was lost)') WHERE plan = $1 "
				   "AND status = 'running' RETURNING run_id) SELECT DISTINCT run_id::text FROM closed",
				   1, params);
	for (int i = 0; i < PQntuples(res); i++)
		log_warning("run %s of this plan ended without recording its outcome: recorded as interrupted; "
					"this run continues from its last checkpoint",
					PQgetvalue(res, i, 0));
	PQclear(res);
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
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "unknown");
	return str_printf("%s@%s", user ? user : "unknown", host);
}

/* Make the run's logs directory (0700) and open its log there, then say where it is. */
static void
open_run_log(Run *run)
{
	char *path;

	if (!logs_dir_make(run->logs_dir))
	{
		log_warning("could not create log directory \"%s\": %s", run->logs_dir, strerror(errno));
		return;
	}
	path = str_printf("%s/%s.log", run->logs_dir, run->run_id);
	if (!log_open_file(path))
		log_warning("could not open run log \"%s\": %s", path, strerror(errno));
	free(path);
}

/*
 * Refuse (false, after saying why) an option only some operations read when
 * none of the plan's does: --mapping for a plan with no backfill_from_mapping,
 * --on-invalid for one with no convert_to_uuid.  Ignoring it would let an
 * operator believe it did something.
 */
static bool
options_apply(const Plan *plan, const Options *opts)
{
	unsigned read = 0, unread;

	for (int i = 0; i < plan->n_ops; i++)
		read |= plan->ops[i].kind->options;
	unread = opts->groups_given & (CLI_MAPPING | CLI_ON_INVALID | CLI_DISCARD_GENERATED) & ~read;
	if (unread == 0)
		return true;
	log_error("option \"%s\" does not apply to plan \"%s\": none of its operations reads it",
			  opts->group_named[__builtin_ctz(unread)], plan->name);
	log_hint("leave it out; \"phase1 plan --plan %s\" lists the plan's operations", plan->path);
	return false;
}

/*
 * The files the run reads whole (--mapping, and an added option's that names
 * one: CliOption.file) are regular files within the limit, checked before it
 * connects.
 */
static bool
input_files_ok(const Options *opts)
{
	bool any = opts->mapping != NULL;
	long long limit;

	for (int i = 0; i < opts->n_added; i++)
		any = any || opts->added[i].option->file != NULL;
	limit = any ? input_file_limit() : 0;
	if (limit < 0 || (opts->mapping && !input_file_check(opts->mapping, "mapping file", limit)))
		return false;
	for (int i = 0; i < opts->n_added; i++)
		if (opts->added[i].option->file && !input_file_check(opts->added[i].value, opts->added[i].option->file, limit))
			return false;
	return true;
}

/* The plan's lock, waiting up to --lock-wait; exits 4 naming the holder (1 when a signal stopped the wait). */
static void
take_plan_lock(Run *run, const Options *opts)
{
	char *holder;

	if (guard_take_waiting(run->conn, run->plan, opts->lock_wait_s))
		return;
	if (stop_requested())
		log_fatal(EXIT_FAILED, "stopped by %s while waiting for the plan's lock; nothing was done", stop_signal_name());
	holder = guard_holder(run->conn, run->plan);
	log_error("another run holds the lock of plan \"%s\" on table %s%s", run->plan->name, run->plan->q_table,
			  opts->lock_wait_s > 0 ? " (waited for it with --lock-wait)" : "");
	log_detail("held by %s", holder ? holder : "a session that has just ended; try again");
	log_hint("wait for it to finish, or stop it with SIGTERM to its phasemig pid on its host (it stops at a safe "
			 "point); phasemig never runs two operators at once");
	free(holder);
	log_exit(EXIT_LOCKED);
}

/*
 * From here on nothing that changes the database runs (core/dryrun.h), and
 * the server refuses it if something tried: the session is read-only.
 */
static void
start_dry_run(Run *run)
{
	dryrun_enable();
	dryrun_copy_registry(run->conn);
	db_exec(run->conn, "SET default_transaction_read_only = on");
	log_info("%s --dry-run: plan \"%s\": the statements it would run are on stdout; nothing is changed",
			 run->subcommand, run->plan->name);
	dryrun_comment("phase%d %s --dry-run, plan \"%s\" on table %s: what it would run, in order; nothing was run",
				   run->phase, run->subcommand, run->plan->name, run->plan->q_table);
}

void
run_session_writable(Run *run, bool writable)
{
	if (dryrun_on())
		db_exec(run->conn,
				writable ? "SET default_transaction_read_only = off" : "SET default_transaction_read_only = on");
}

Run *
run_start(int phase, const Options *opts, bool take_lock)
{
	Run *run = xcalloc(1, sizeof(Run));
	uuid_t id;
	char *appname, *why = NULL;
	DbRetry retry;
	bool record;

	run->phase = phase;
	run->subcommand = opts->subcommand;
	run->jobs = opts->jobs > 1 ? opts->jobs : 1;
	uuid_generate_random(id);
	uuid_unparse_lower(id, run->run_id);
	log_set_context(phase, opts->subcommand, take_lock ? run->run_id : NULL);
	/* the retry jitter must differ between two runs started at the same moment */
	srandom((unsigned) id[0] << 24 | (unsigned) id[1] << 16 | (unsigned) id[2] << 8 | id[3]);
	run->client = client_name();

	run->plan = plan_load(opts->plan_path);
	if (run->plan == NULL || !options_apply(run->plan, opts) || !input_files_ok(opts))
		exit(EXIT_BAD_INPUT);
	/* a dry run leaves no trace: no run log, no hook, no migration_log row */
	record = take_lock && !opts->dry_run;
	/* --logs-dir or $PHASEMIG_LOGS; NULL when the directory is the database's (logs_dir.h) */
	run->logs_dir = logs_dir_resolve(opts->logs_dir, NULL, run->plan->name);
	if (record)
	{
		/* a run log that has to wait for the connection gets what was said before it */
		log_hold_file_lines();
		if (run->logs_dir)
			open_run_log(run);
		/* the hook hears how every run ends, even one that never reached the database */
		hook_set(opts->hook);
		hook_set_progress_interval(opts->hook_progress_min);
		log_on_exit(notify_end, run);
	}

	appname = str_printf("%s %s (phasemig run %.8s)", log_progname(), opts->subcommand, run->run_id);
	run->conninfo = opts->dbname;
	run->conn = db_connect_try(opts->dbname, appname, &why);
	free(appname);
	if (record)
	{
		/* the start line names the database, the first thing an operator checks */
		char *target = db_target_describe(run->conn);

		log_info("%s: plan \"%s\" (%s), run %s, %s", opts->subcommand, run->plan->name, run->plan->path,
				 run->run_id, run->conn ? target : "no database reached");
		free(target);
		if (run->logs_dir)
			log_info("logs: %s", run->logs_dir);
		hook_set_database(run->conn);
	}
	if (why)
		log_error("could not connect to the database: %s", why);
	free(why);
	if (run->conn == NULL)
		log_exit(EXIT_FAILED);
	/* by default the logs directory is per database and plan: known once connected */
	if (run->logs_dir == NULL)
	{
		run->logs_dir = logs_dir_resolve(NULL, PQdb(run->conn), run->plan->name);
		if (record)
		{
			open_run_log(run);
			log_info("logs: %s", run->logs_dir);
		}
	}
	log_on_exit(close_connection, run);
	if (record)
		log_on_exit(record_outcome, run);
	if (take_lock)
	{
		stop_install(run->conn);
	}
	if (!plan_bind(run->plan, run->conn))
		log_exit(EXIT_BAD_INPUT);
	/* from here on every statement runs as the table's owner, never as a superuser */
	if (!role_assume_owner(run->conn, run->plan, &run->role))
		log_exit(EXIT_FAILED);
	/* before anything reads or writes migration_log or migration_backup */
	if (!trust_state(run->conn, run->plan->q_table))
		log_exit(EXIT_REFUSED);
	/* before anything writes the application's tables: no code of another role fires there */
	if (take_lock && !trust_triggers(run->conn, run->plan))
		log_exit(EXIT_REFUSED);

	retry = *db_get_retry();
	retry.lock_timeout_ms = opts->lock_timeout_ms > 0 ? opts->lock_timeout_ms : run->plan->lock_timeout_ms;
	retry.max_attempts = run->plan->ddl_attempts;
	db_set_retry(&retry);

	if (take_lock)
		take_plan_lock(run, opts);
	if (record)
	{
		close_orphaned_rows(run);
		hook_start(run);
	}
	/* the operator's lag measure, tried once before anything changes */
	if (take_lock && opts->lag_query && !throttle_check_lag_query(run, opts->lag_query))
		log_exit(EXIT_BAD_INPUT);
	if (take_lock && opts->dry_run)
		start_dry_run(run);
	return run;
}

bool
run_reconnect(Run *run)
{
	/* a new session: set up as the first was, and as the table's owner again before it writes anything */
	return db_reset(run->conn) && role_set(run->conn, run->role);
}

PGconn *
run_connect(const Run *run, const char *what)
{
	char *appname = str_printf("%s %s (phasemig run %.8s, %s)", log_progname(), run->subcommand, run->run_id, what);
	PGconn *conn = db_connect(run->conninfo, appname);

	free(appname);
	if (conn != NULL && !role_set(conn, run->role))
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

void
run_begin_phase(Run *run)
{
	run->phase_entry = mlog_begin_run(run);
}

void
run_finish(Run *run, int code, const char *message)
{
	/* a signal, not the input, ended it: whatever failed on the way, it is 1 (run it again) */
	if (code != EXIT_DONE && stop_requested())
		code = EXIT_FAILED;
	if (run->phase_entry > 0 && run->conn && PQstatus(run->conn) == CONNECTION_OK)
		mlog_finish(run, run->phase_entry, run->declined && code != EXIT_DONE ? "declined" : outcome_status(code), 0,
					message ? message : outcome_reason(code), run->phase_metadata);
	if (code != EXIT_DONE && stop_requested())
		tell_stopped();
	if (dryrun_on())
		log_info("%s --dry-run: %s; nothing was changed", run->subcommand,
				 code == EXIT_DONE ? "done" : "the real run would stop here with the same exit code");
	else if (code == EXIT_DONE && log_file_path())
		log_info("%s: done, log %s", run->subcommand, log_file_path());
	else if (log_file_path())
		log_info("run log: %s", log_file_path());
	log_exit(code);
}
