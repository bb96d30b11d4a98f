/*
 * mlog.c: writes and reads migration_log and the registry of created objects
 * (migration_backup.phasemig_objects).  The state SQL is sql/state.sql,
 * embedded at build time.
 */
#include "engine/mlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/trust.h"
#include "sqltext.h"

int
mlog_create_state(PGconn *conn)
{
	PGresult *res;

	if (dryrun_on())
	{
		if (!mlog_state_exists(conn))
			dryrun_comment("phasemig's state would be created (sql/state.sql): the table public.migration_log, "
						   "the schema migration_backup and its registry table phasemig_objects");
		return EXIT_DONE;
	}
	/* one transaction: what the check sees is what was there or what this made, nothing in between */
	db_exec(conn, "BEGIN");
	res = PQexec(conn, SQL_STATE);
	if (!db_ok(res))
	{
		db_report(res, conn, "sql/state.sql");
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		return EXIT_FAILED;
	}
	PQclear(res);
	if (!trust_state(conn, NULL))
	{
		PQclear(PQexec(conn, "ROLLBACK"));
		return EXIT_REFUSED;
	}
	db_exec(conn, "COMMIT");
	return EXIT_DONE;
}

bool
mlog_state_exists(PGconn *conn)
{
	return db_exists(conn,
					 "SELECT 1 WHERE pg_catalog.to_regclass('public.migration_log') IS NOT NULL "
					 "AND pg_catalog.to_regclass('migration_backup.phasemig_objects') IS NOT NULL",
					 0, NULL);
}

/*
 * The row's insert; a run's phase-level row (RUN_ROW) also records who runs
 * it: the client's pid and host, and the server backend's pid (the exit-4
 * message of another run names them).
 */
static long long
begin_row(Run *run, const char *operation, long long rows_total, long long rows_done, const char *last_key,
		  bool run_row)
{
	char phase[8], total[32], done[32], pid[16], host[256] = "";
	const char *params[12];

	if (dryrun_on())
		return 0;
	snprintf(phase, sizeof phase, "%d", run->phase);
	snprintf(total, sizeof total, "%lld", rows_total);
	snprintf(done, sizeof done, "%lld", rows_done);
	snprintf(pid, sizeof pid, "%ld", (long) getpid());
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "unknown");
	params[0] = run->run_id;
	params[1] = run->plan->name;
	params[2] = phase;
	params[3] = operation;
	params[4] = rows_total >= 0 ? total : NULL;
	params[5] = done;
	params[6] = last_key;
	params[7] = run->client;
	params[8] = PHASEMIG_VERSION;
	params[9] = run_row ? "t" : "f";
	params[10] = pid;
	params[11] = host;
	return db_count(run->conn,
					"INSERT INTO public.migration_log (run_id, plan, phase, operation, status, rows_total, "
					"rows_done, last_key, client, tool_version, metadata) "
					"VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, "
					/* db_user is the role it runs as (the table's owner); who connected, when another */
					"CASE WHEN SESSION_USER <> CURRENT_USER "
					"THEN pg_catalog.jsonb_build_object('connected_as', SESSION_USER::pg_catalog.text) "
					"ELSE '{}'::pg_catalog.jsonb END "
					"|| CASE WHEN $10::boolean THEN pg_catalog.jsonb_build_object('client_pid', $11::pg_catalog.int4, "
					"'client_host', $12::pg_catalog.text, 'backend_pid', pg_catalog.pg_backend_pid()) "
					"ELSE '{}'::pg_catalog.jsonb END) RETURNING id",
					12, params);
}

long long
mlog_begin(Run *run, const char *operation, long long rows_total, long long rows_done, const char *last_key)
{
	return begin_row(run, operation, rows_total, rows_done, last_key, false);
}

long long
mlog_begin_run(Run *run)
{
	return begin_row(run, run->subcommand, -1, 0, NULL, true);
}

/* V as text in BUF, for a statement's parameter. */
static const char *
num(char buf[32], long long v)
{
	snprintf(buf, 32, "%lld", v);
	return buf;
}

bool
mlog_set_progress_try(Run *run, long long id, long long rows_total, long long rows_done, const char *last_key,
					  DbFailure *why)
{
	char b[3][32];
	const char *params[4] = {num(b[0], id), num(b[1], rows_total), num(b[2], rows_done), last_key};

	/* where this run starts and when: status computes the rate and ETA of a running fill from them */
	return db_execp_try(run->conn,
						"UPDATE public.migration_log SET rows_total = $2, rows_done = $3, last_key = $4, "
						"metadata = metadata || jsonb_build_object('progress_from_rows', $3::bigint, "
						"'progress_from_at', clock_timestamp()) WHERE id = $1",
						4, params, NULL, why);
}

void
mlog_set_progress(Run *run, long long id, long long rows_total, long long rows_done, const char *last_key)
{
	if (!mlog_set_progress_try(run, id, rows_total, rows_done, last_key, NULL))
		log_exit(EXIT_FAILED);
}

char *
mlog_checkpoint_step(int p)
{
	return str_printf("mlog_checkpoint AS (UPDATE public.migration_log SET rows_done = $%d::bigint + c.scanned, "
					  "last_key = c.last_key, metadata = metadata || jsonb_build_object('rows_changed', "
					  "$%d::bigint + c.changed) FROM keyset_counts c WHERE id = $%d::bigint AND c.scanned > 0)",
					  p + 1, p + 2, p);
}

void
mlog_finish(Run *run, long long id, const char *status, long long rows_done, const char *message, const char *metadata)
{
	char sid[32], done[32];
	const char *params[5] = {sid, status, done, message, metadata};
	PGresult *res;

	/* a lost connection: the run's exit records the row on a new one (run.c's record_outcome) */
	if (id <= 0 || PQstatus(run->conn) != CONNECTION_OK)
		return;
	if (strcmp(status, "failed") == 0 && stop_requested())
		params[1] = "interrupted";
	snprintf(sid, sizeof sid, "%lld", id);
	snprintf(done, sizeof done, "%lld", rows_done);
	/* after a failed statement the session may still be inside a transaction or a COPY */
	db_end_session_work(run->conn);
	res = db_query_try(run->conn,
					   "UPDATE public.migration_log SET status = $2, rows_done = greatest(rows_done, $3::bigint), "
					   "message = $4, metadata = metadata || coalesce($5::jsonb, '{}'), "
					   "finished_at = clock_timestamp() WHERE id = $1",
					   5, params);
	if (!db_ok(res))
	{
		char why[DB_MESSAGE_MAX];

		log_warning("could not record the outcome in migration_log: %s",
					db_error_line(res, run->conn, why, sizeof why));
	}
	PQclear(res);
}

bool
mlog_phase_applied(PGconn *conn, const Plan *plan, int phase)
{
	char p[8];
	const char *params[2] = {plan->name, p};
	char *op;
	bool applied;

	if (!mlog_state_exists(conn))
		return false;
	snprintf(p, sizeof p, "%d", phase);
	op = db_value(conn,
				  "SELECT operation FROM public.migration_log WHERE plan = $1 AND phase = $2 "
				  "AND operation IN ('apply', 'rollback') AND status = 'done' ORDER BY id DESC LIMIT 1",
				  2, params);
	applied = op && strcmp(op, "apply") == 0;
	free(op);
	return applied;
}

bool
mlog_phase_started(PGconn *conn, const Plan *plan, int phase)
{
	char p[8];
	const char *params[2] = {plan->name, p};

	if (!mlog_state_exists(conn))
		return false;
	snprintf(p, sizeof p, "%d", phase);
	/*
	 * 'refused' changed nothing, nor did a run that failed before its first
	 * step (a declined confirmation): only a run with a step row counts then
	 */
	return db_exists(conn,
					 "SELECT 1 FROM public.migration_log a WHERE a.plan = $1 AND a.phase = $2 "
					 "AND a.operation = 'apply' AND (a.status IN ('done', 'interrupted', 'running') "
					 "OR (a.status = 'failed' AND EXISTS (SELECT 1 FROM public.migration_log o "
					 "WHERE o.run_id = a.run_id AND o.phase = a.phase AND o.id > a.id))) "
					 "AND a.id > coalesce((SELECT max(r.id) FROM public.migration_log r WHERE r.plan = $1 "
					 "AND r.phase = $2 AND r.operation = 'rollback' AND r.status = 'done'), 0)",
					 2, params);
}
