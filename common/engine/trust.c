/*
 * trust.c: the catalog queries behind trust.h.  A role counts as ours when it
 * is the session's role or one it is a member of through pg_auth_members
 * (not pg_has_role, which is always true for a superuser).  A trigger is
 * foreign when its function's owner is not the owner of the plan's table,
 * the role phasemig runs as (role.h) and so fires every trigger as.
 */
#include "engine/trust.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/operation.h"

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
 * The statements that give the state's objects owned by a superuser (or by
 * the role that connected, when the session switched to the table's owner)
 * to the role phasemig runs as: what an earlier run as a superuser made,
 * before phasemig ran as the table's owner.  One row: role, stmts (NULL: none).
 */
static const char *const adopt_sql =
	"WITH me AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER), "
	"ns AS (SELECT oid, nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'migration_backup'), "
	"made(ord, stmt, owner) AS ("
	"  SELECT 1, pg_catalog.format('ALTER SCHEMA migration_backup OWNER TO %I', CURRENT_USER), nspowner FROM ns "
	"  UNION ALL SELECT 2, pg_catalog.format('ALTER TABLE %s OWNER TO %I', c.oid::pg_catalog.regclass, CURRENT_USER), "
	"    c.relowner FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p') "
	"    AND (c.oid = pg_catalog.to_regclass('public.migration_log') OR c.relnamespace IN (SELECT oid FROM ns)) "
	"  UNION ALL SELECT 3, pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', p.oid::pg_catalog.regprocedure, "
	"    CURRENT_USER), p.proowner FROM pg_catalog.pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns)) "
	"SELECT CURRENT_USER AS role, pg_catalog.string_agg(made.stmt, '; ' ORDER BY made.ord, made.stmt) AS stmts "
	"FROM made "
	"JOIN pg_catalog.pg_roles r ON r.oid = made.owner "
	"WHERE made.owner NOT IN (SELECT oid FROM me) AND (r.rolsuper OR r.rolname = SESSION_USER)";

/* After a refusal: when the state is a superuser's, the statements that give it to the role phasemig runs as. */
static void
hint_adopt(PGconn *conn)
{
	PGresult *res = db_query(conn, adopt_sql, 0, NULL);
	const char *stmts = db_field(res, 0, "stmts");

	if (stmts)
		log_hint("phasemig runs as the owner of the tables it migrates; what an earlier run made as a superuser "
				 "belongs to that superuser: once you know that is all this is, give it to \"%s\" (as a superuser): %s",
				 db_field(res, 0, "role"), stmts);
	PQclear(res);
}

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
		hint_adopt(conn);
	}
	PQclear(res);
	return n == 0;
}

/*
 * Every user trigger on the tables the plan writes ($1, with $2 the tables
 * with a foreign key to it and $4 those its operations name besides, from
 * plan_extra_tables(), and their partitions and inheritance children)
 * whose function another role than $1's owner owns (on a referencing table
 * with an owner of its own too: phasemig fires it as $1's owner); phasemig's own
 * (functions in migration_backup, all ours by trust_state) and the server's
 * (pg_catalog: suppress_redundant_updates_trigger, tsvector_update_trigger)
 * left out.  $3: the plan's trusted triggers as [[schema, table, trigger], ...].
 */
static const char *const foreign_triggers_sql =
	"WITH RECURSIVE tabs(oid) AS ("
	"  SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass OR ($2::bool AND c.oid IN ("
	"    SELECT f.conrelid FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' "
	"    AND f.confrelid = $1::pg_catalog.regclass UNION ALL "
	"    SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(x->>0) || '.' || pg_catalog.quote_ident(x->>1)) "
	"    FROM pg_catalog.json_array_elements($4::pg_catalog.json) x)) "
	"  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tabs ON i.inhparent = tabs.oid), "
	"trusted AS (SELECT x->>0 AS nspname, x->>1 AS relname, x->>2 AS tgname "
	"  FROM pg_catalog.json_array_elements($3::pg_catalog.json) x) "
	"SELECT pg_catalog.quote_ident(t.tgname) AS trigger, c.oid::pg_catalog.regclass::pg_catalog.text AS table, "
	"  p.oid::pg_catalog.regprocedure::pg_catalog.text AS function, "
	"  pg_catalog.pg_get_userbyid(p.proowner) AS function_owner, "
	"  pg_catalog.pg_get_userbyid(o.relowner) AS runs_as, $1::pg_catalog.regclass::pg_catalog.text AS plan_table, "
	"  EXISTS (SELECT 1 FROM trusted WHERE trusted.nspname = n.nspname AND trusted.relname = c.relname "
	"    AND trusted.tgname = t.tgname) AS trusted "
	"FROM tabs JOIN pg_catalog.pg_class c ON c.oid = tabs.oid "
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal "
	"JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
	"JOIN pg_catalog.pg_class o ON o.oid = $1::pg_catalog.regclass "
	"WHERE p.proowner <> o.relowner AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace "
	"AND p.pronamespace IS DISTINCT FROM "
	"  (SELECT s.oid FROM pg_catalog.pg_namespace s WHERE s.nspname = 'migration_backup') "
	"ORDER BY 2, 1";

/* The plan's trusted triggers as JSON text [[schema, table, trigger], ...] (malloc'd). */
static char *
trusted_json(const Plan *plan)
{
	json_t *list = json_array();
	char *text;

	for (int i = 0; i < plan->n_trusted_triggers; i++)
	{
		const TrustedTrigger *t = &plan->trusted_triggers[i];

		json_array_append_new(list, json_pack("[sss]", t->schema, t->table, t->trigger));
	}
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return text;
}

bool
trust_triggers(PGconn *conn, const Plan *plan)
{
	bool children = false;
	char *trusted = trusted_json(plan);
	char *also = plan_extra_tables(plan);
	const char *params[4];
	PGresult *res;
	int refused = 0;

	for (int i = 0; i < plan->n_ops; i++)
		children = children || plan->ops[i].kind->alters_referencing_tables;
	params[0] = plan->q_table;
	params[1] = children ? "t" : "f";
	params[2] = trusted;
	params[3] = also;
	res = db_query(conn, foreign_triggers_sql, 4, params);
	for (int i = 0; i < PQntuples(res); i++)
	{
		char *line =
			str_printf("trigger %s on %s runs %s, owned by \"%s\", not by \"%s\" (the owner of %s, whom "
					   "phasemig runs as)",
					   db_field(res, i, "trigger"), db_field(res, i, "table"), db_field(res, i, "function"),
					   db_field(res, i, "function_owner"), db_field(res, i, "runs_as"), db_field(res, i, "plan_table"));

		if (db_field_true(res, i, "trusted"))
			log_info("%s: trusted by the plan", line);
		else
		{
			log_error("%s", line);
			refused++;
		}
		free(line);
	}
	if (refused > 0)
	{
		log_detail("phasemig writes these tables as the owner of %s, and a trigger's function runs with the rights "
				   "of whoever fires it: another role's code would run with that owner's rights, and could read "
				   "migration_backup",
				   plan->q_table);
		log_hint("review each: drop it, have that owner own its function (ALTER FUNCTION ... OWNER TO), "
				 "or list it in the plan's \"trusted_triggers\" as {\"table\": ..., \"trigger\": ...}");
		log_error("pre-flight refused: %d trigger%s of another role on the tables plan \"%s\" writes; nothing "
				  "was changed",
				  refused, refused == 1 ? "" : "s", plan->name);
	}
	PQclear(res);
	free(trusted), free(also);
	return refused == 0;
}
