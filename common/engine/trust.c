/*
 * trust.c: the catalog query behind trust.h.  A role counts as ours when it
 * is the session's role or one it is a member of through pg_auth_members
 * (not pg_has_role, which is always true for a superuser).
 */
#include "engine/trust.h"

#include <string.h>

#include "core/db.h"
#include "core/log.h"

/* the problem untrusted_sql gives for an object owned by another role (its text, below) */
#define NOT_OURS "is owned by a role phasemig does not run as"

/* (object, its owner, what is wrong) for everything of the state phasemig did not make */
static const char *const untrusted_sql =
	"WITH RECURSIVE mine(oid) AS ("
	"  SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER"
	"  UNION SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN mine ON m.member = mine.oid), "
	"ns AS (SELECT oid, nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'migration_backup'), "
	"log AS (SELECT pg_catalog.to_regclass('public.migration_log') AS oid), "
	/* the schema's relations, migration_log and what hangs on it (its sequence, indexes) */
	"rels AS (SELECT c.oid, c.relkind, c.relowner FROM pg_catalog.pg_class c, log "
	"  WHERE c.relnamespace IN (SELECT oid FROM ns) OR c.oid = log.oid OR c.oid IN ("
	"    SELECT d.objid FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
	"    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = log.oid)) "
	"SELECT what, owner, problem, (SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class "
	"  WHERE oid = pg_catalog.to_regclass($1)) AS table_owner FROM ("
	"  SELECT 'schema migration_backup' AS what, pg_catalog.pg_get_userbyid(nspowner) AS owner, "
	"    'is owned by a role phasemig does not run as' AS problem FROM ns WHERE nspowner NOT IN (SELECT oid FROM mine)"
	"  UNION ALL SELECT pg_catalog.format('relation %s', oid::pg_catalog.regclass), pg_catalog.pg_get_userbyid(relowner), "
	"    'is owned by a role phasemig does not run as' FROM rels WHERE relowner NOT IN (SELECT oid FROM mine)"
	"  UNION ALL SELECT pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure), "
	"    pg_catalog.pg_get_userbyid(p.proowner), 'is owned by a role phasemig does not run as' "
	"    FROM pg_catalog.pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns) AND p.proowner NOT IN (SELECT oid FROM mine)"
	"  UNION ALL SELECT pg_catalog.format('trigger %I on %s', t.tgname, t.tgrelid::pg_catalog.regclass), "
	"    pg_catalog.pg_get_userbyid(r.relowner), 'was not created by phasemig' "
	"    FROM pg_catalog.pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal"
	"  UNION ALL SELECT pg_catalog.format('rule %I on %s', w.rulename, w.ev_class::pg_catalog.regclass), "
	"    pg_catalog.pg_get_userbyid(r.relowner), 'was not created by phasemig' "
	"    FROM pg_catalog.pg_rewrite w JOIN rels r ON r.oid = w.ev_class WHERE w.rulename <> '_RETURN'"
	"  UNION ALL SELECT pg_catalog.format('policy %I on %s', p.polname, p.polrelid::pg_catalog.regclass), "
	"    pg_catalog.pg_get_userbyid(r.relowner), 'was not created by phasemig' "
	"    FROM pg_catalog.pg_policy p JOIN rels r ON r.oid = p.polrelid"
	"  UNION ALL SELECT 'relation public.migration_log', pg_catalog.pg_get_userbyid(c.relowner), "
	"    'is not a plain table (a view, a partition, inheritance or row level security)' "
	"    FROM pg_catalog.pg_class c JOIN log ON c.oid = log.oid WHERE c.relkind <> 'r' OR c.relrowsecurity "
	"    OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid OR i.inhrelid = c.oid)"
	"  UNION ALL SELECT pg_catalog.format('column %I of public.migration_log', a.attname), "
	"    pg_catalog.pg_get_userbyid(ty.typowner), pg_catalog.format('has type %s, from outside pg_catalog', "
	"    a.atttypid::pg_catalog.regtype) FROM pg_catalog.pg_attribute a JOIN log ON a.attrelid = log.oid "
	"    JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid WHERE a.attnum > 0 AND NOT a.attisdropped "
	"    AND ty.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace"
	/* a default, a constraint or an index of these tables that calls someone else's function */
	"  UNION ALL SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), "
	"    pg_catalog.pg_get_userbyid(p.proowner), pg_catalog.format('calls %s, which phasemig did not create', "
	"    p.oid::pg_catalog.regprocedure) FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p "
	"    ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.refobjid "
	"    WHERE p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace AND p.pronamespace NOT IN (SELECT oid FROM ns) "
	"    AND ((d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid IN "
	"          (SELECT ad.oid FROM pg_catalog.pg_attrdef ad JOIN rels r ON r.oid = ad.adrelid)) "
	"      OR (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid IN "
	"          (SELECT co.oid FROM pg_catalog.pg_constraint co JOIN rels r ON r.oid = co.conrelid)) "
	"      OR (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid IN "
	"          (SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN rels r ON r.oid = i.indrelid)))"
	") problems ORDER BY 1, 3";

/*
 * The owner of the plan's table when it owns every object of RES and owning
 * them is all that is wrong: the state a run as the table's owner made, seen
 * by a run as another role.  NULL otherwise.
 */
static const char *
table_owner_state(const PGresult *res)
{
	const char *owner = PQntuples(res) > 0 && !PQgetisnull(res, 0, 3) ? PQgetvalue(res, 0, 3) : NULL;

	for (int i = 0; i < PQntuples(res) && owner; i++)
		if (strcmp(PQgetvalue(res, i, 2), NOT_OURS) != 0 || strcmp(PQgetvalue(res, i, 1), owner) != 0)
			owner = NULL;
	return owner;
}

bool
trust_state(PGconn *conn, const char *qtable)
{
	PGresult *res = db_query(conn, untrusted_sql, 1, &qtable);
	int n = PQntuples(res);
	const char *owner = table_owner_state(res);

	if (owner)
	{
		/* phasemig's own state, made by a run as the table's owner: say whose, not to drop it */
		log_error("phasemig's state (migration_log, schema migration_backup) belongs to role \"%s\", the owner "
				  "of the plan's table; this run connects as \"%s\", which is not a member of it; nothing was read "
				  "or changed",
				  owner, PQuser(conn));
		log_detail("%d object%s owned by \"%s\", e.g. %s", n, n == 1 ? "" : "s", owner, PQgetvalue(res, 0, 0));
		log_hint("run phasemig as \"%s\", or as a member of it (GRANT \"%s\" TO \"%s\"); do not drop that "
				 "state: it holds the audit trail and the backups",
				 owner, owner, PQuser(conn));
		PQclear(res);
		return false;
	}
	for (int i = 0; i < n; i++)
		log_error("%s (owner %s) %s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
	if (n > 0)
	{
		log_detail("phasemig keeps its audit trail and backups there and writes to them with your rights; "
				   "it uses them only when it made them itself");
		log_hint("find out who made them and why; drop them (or change their owner) only once you know");
	}
	PQclear(res);
	return n == 0;
}
