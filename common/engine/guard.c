/*
 * guard.c: the plan's advisory lock.  The two-key form is used:
 * (hashtext('phasemig'), hashtext(plan name and table)), so pg_locks shows it
 * as classid/objid with objsubid 2.
 */
#include "engine/guard.h"

#include <stdlib.h>
#include <time.h>

#include "core/db.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/mlog.h"

static char *
lock_name(const Plan *plan)
{
	return str_printf("%s/%s.%s", plan->name, plan->schema, plan->table);
}

bool
guard_take(PGconn *conn, const Plan *plan)
{
	char *name = lock_name(plan);
	const char *params[1] = {name};
	char *got = db_value(conn,
						 "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('phasemig'), "
						 "pg_catalog.hashtext($1))",
						 1, params);
	bool ok = got && got[0] == 't';

	free(got);
	free(name);
	return ok;
}

bool
guard_take_waiting(PGconn *conn, const Plan *plan, int wait_seconds)
{
	time_t deadline = time(NULL) + wait_seconds;
	bool told = false;

	while (!guard_take(conn, plan))
	{
		if (time(NULL) >= deadline || stop_requested())
			return false;
		if (!told)
		{
			char *holder = guard_holder(conn, plan);

			log_info("the lock of plan \"%s\" is held by %s; waiting up to %d s for it", plan->name,
					 holder ? holder : "a session that is ending", wait_seconds);
			free(holder);
			told = true;
		}
		db_sleep_ms(250);
	}
	return true;
}

/* The lock's holder in pg_locks and pg_stat_activity; $1 the lock's name. */
#define HOLDER_FROM "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
#define HOLDER_WHERE                                                                                                   \
	"WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "                                                  \
	"AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) "         \
	"AND l.classid = pg_catalog.hashtext('phasemig')::oid "                                                            \
	"AND l.objid = pg_catalog.hashtext($1)::oid AND l.pid <> pg_catalog.pg_backend_pid() "
/* What else pg_stat_activity says of the holder. */
#define HOLDER_SESSION                                                                                                 \
	"format('user %s, application \"%s\", from %s, connected since %s', a.usename, a.application_name, "               \
	"coalesce(host(a.client_addr), 'local socket'), to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'))"
/* The run id phasemig puts in its sessions' application_name (8 hex digits), or NULL. */
#define HOLDER_SHORT_ID "substring(a.application_name FROM 'phasemig run ([0-9a-f]{8})')"

char *
guard_holder(PGconn *conn, const Plan *plan)
{
	char *name = lock_name(plan);
	const char *params[2] = {name, plan->name};
	char *holder;

	if (mlog_state_exists(conn))
		/* the client's pid and host, recorded by the holder's run in its phase-level row */
		holder = db_value(
			conn,
			"SELECT CASE WHEN m.client_pid IS NOT NULL THEN format('phasemig pid %s on host %s (server backend pid %s), "
			"run %s; ', m.client_pid, m.client_host, a.pid, left(m.run_id::text, 8)) "
			"ELSE format('server backend pid %s (not the client''s pid)%s; ', a.pid, "
			"', run ' || " HOLDER_SHORT_ID ") END || " HOLDER_SESSION " " HOLDER_FROM
			"LEFT JOIN LATERAL (SELECT r.run_id, r.metadata->>'client_pid' AS client_pid, "
			"r.metadata->>'client_host' AS client_host FROM public.migration_log r WHERE r.plan = $2 "
			"AND r.status = 'running' AND r.metadata->>'backend_pid' = a.pid::text ORDER BY r.id DESC LIMIT 1) m "
			"ON true " HOLDER_WHERE "LIMIT 1",
			2, params);
	else
		holder = db_value(conn,
						  "SELECT format('server backend pid %s (not the client''s pid)%s; ', a.pid, "
						  "', run ' || " HOLDER_SHORT_ID ") || " HOLDER_SESSION " " HOLDER_FROM HOLDER_WHERE "LIMIT 1",
						  1, params);
	free(name);
	return holder;
}
