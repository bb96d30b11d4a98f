/*
 * role.c: see role.h.  The switch is set_config('role', ...), SET ROLE as a
 * function with the role as a parameter; it lasts for the session.
 */
#include "engine/role.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

bool
role_set(PGconn *conn, const char *role)
{
	const char *params[1] = {role};
	PGresult *res;
	bool ok;

	if (role == NULL)
		return true;
	res = db_query_try(conn, "SELECT pg_catalog.set_config('role', $1, false)", 1, params);
	ok = db_ok(res);
	if (!ok)
	{
		db_report(res, conn, NULL);
		log_detail("phasemig runs every statement as \"%s\", the owner of the tables it migrates (SET ROLE)", role);
	}
	PQclear(res);
	return ok;
}

bool
role_assume_owner(PGconn *conn, const Plan *plan, char **role)
{
	const char *params[1] = {plan->q_table};
	PGresult *res;
	bool ok = true;

	*role = NULL;
	/* pg_has_role is true for a superuser: it may become any role */
	res = db_query(conn,
				   "SELECT pg_catalog.pg_get_userbyid(c.relowner) AS owner, "
				   "pg_catalog.pg_get_userbyid(c.relowner) = CURRENT_USER AS is_owner, "
				   "pg_catalog.pg_has_role(c.relowner, 'MEMBER') AS may_become, "
				   "SESSION_USER AS connected, "
				   "(SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = SESSION_USER) AS superuser "
				   "FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass",
				   1, params);
	if (PQntuples(res) == 1 && !db_field_true(res, 0, "is_owner") && db_field_true(res, 0, "may_become"))
	{
		const char *owner = db_field(res, 0, "owner");

		if (role_set(conn, owner))
		{
			*role = xstrdup(owner);
			log_info("connected as %s\"%s\": every statement runs as \"%s\", the owner of %s (SET ROLE)",
					 db_field_true(res, 0, "superuser") ? "superuser " : "", db_field(res, 0, "connected"), owner,
					 plan->q_table);
		}
		else
			ok = false;
	}
	PQclear(res);
	return ok;
}
