/*
 * registry.c: see registry.h.  Every statement on
 * migration_backup.phasemig_objects but the uuid job's catalog joins is here.
 */
#include "engine/registry.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/db.h"
#include "core/strbuf.h"

char *
registry_add_sql(const Plan *plan, int phase, const char *kind, const char *name)
{
	return registry_add_detail_sql(plan, phase, kind, name, "{}");
}

char *
registry_add_detail_sql(const Plan *plan, int phase, const char *kind, const char *name, const char *detail)
{
	char *qp = sql_literal(plan->name), *qk = sql_literal(kind), *qn = sql_literal(name), *qd = sql_literal(detail);
	char *sql = str_printf("INSERT INTO migration_backup.phasemig_objects (plan, kind, name, phase, detail) "
						   "VALUES (%s, %s, %s, %d, %s::jsonb) ON CONFLICT DO NOTHING",
						   qp, qk, qn, phase, qd);

	free(qp), free(qk), free(qn), free(qd);
	return sql;
}

bool
registry_has(PGconn *conn, const Plan *plan, const char *kind, const char *name)
{
	const char *params[3] = {plan->name, kind, name};

	return db_exists(
		conn, "SELECT 1 FROM migration_backup.phasemig_objects WHERE plan = $1 AND kind = $2 AND name = $3", 3, params);
}

char *
registry_detail(PGconn *conn, const Plan *plan, const char *kind, const char *name)
{
	const char *params[3] = {plan->name, kind, name};

	return db_value(conn,
					"SELECT detail::text FROM migration_backup.phasemig_objects "
					"WHERE plan = $1 AND kind = $2 AND name = $3",
					3, params);
}

char *
registry_other_plan(PGconn *conn, const Plan *plan, const char *kind, const char *name, const char *qtable)
{
	const char *params[4] = {plan->name, kind, name, qtable};

	return db_value(conn,
					"SELECT plan FROM migration_backup.phasemig_objects WHERE kind = $2 AND plan <> $1 "
					"AND name = $3 AND coalesce(detail->>'table', $4) = $4 ORDER BY created_at LIMIT 1",
					4, params);
}

char *
registry_others_of_kind(PGconn *conn, const Plan *plan, const char *kind)
{
	const char *params[2] = {plan->name, kind};
	char *details = db_value(conn,
							 "SELECT pg_catalog.json_agg(detail)::text FROM migration_backup.phasemig_objects "
							 "WHERE plan <> $1 AND kind = $2",
							 2, params);

	return details ? details : xstrdup("[]");
}

char *
registry_names_of_kind(PGconn *conn, const char *kind)
{
	const char *params[1] = {kind};
	char *names = db_value(conn,
						   "SELECT pg_catalog.json_agg(DISTINCT name)::text FROM migration_backup.phasemig_objects "
						   "WHERE kind = $1",
						   1, params);

	return names ? names : xstrdup("[]");
}

void
registry_remove(PGconn *conn, const Plan *plan, const char *kind, const char *name)
{
	const char *params[3] = {plan->name, kind, name};

	db_execp(conn, "DELETE FROM migration_backup.phasemig_objects WHERE plan = $1 AND kind = $2 AND name = $3", 3,
			 params);
}

void
registry_set(PGconn *conn, const Plan *plan, int phase, const char *kind, const char *name, const char *detail)
{
	char phase_text[16];
	const char *params[5] = {plan->name, kind, name, phase_text, detail};

	snprintf(phase_text, sizeof phase_text, "%d", phase);
	db_execp(conn,
			 "INSERT INTO migration_backup.phasemig_objects (plan, kind, name, phase, detail) "
			 "VALUES ($1, $2, $3, $4::int, $5::jsonb) "
			 "ON CONFLICT (plan, kind, name) DO UPDATE SET detail = EXCLUDED.detail",
			 5, params);
}

/* " AND kind IN ('a', 'b')" for KINDS (NULL-terminated), appended to SB. */
static void
append_kinds(StrBuf *sb, const char *const *kinds)
{
	sb_append(sb, " AND kind IN (");
	for (int i = 0; kinds[i]; i++)
	{
		if (i > 0)
			sb_append(sb, ", ");
		sb_append_literal(sb, kinds[i]);
	}
	sb_append(sb, ")");
}

char *
registry_remove_sql(const Plan *plan, const char *const *kinds, const char *name)
{
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "DELETE FROM migration_backup.phasemig_objects WHERE plan = ");
	sb_append_literal(&sb, plan->name);
	append_kinds(&sb, kinds);
	sb_append(&sb, " AND name = ");
	sb_append_literal(&sb, name);
	return sb.data;
}

void
registry_remove_kinds(PGconn *conn, const Plan *plan, const char *const *kinds)
{
	StrBuf sb;
	const char *params[1] = {plan->name};

	sb_init(&sb);
	sb_append(&sb, "DELETE FROM migration_backup.phasemig_objects WHERE plan = $1");
	append_kinds(&sb, kinds);
	db_execp(conn, sb.data, 1, params);
	sb_free(&sb);
}
