/*
 * versions.c: versioned_views, the operation every plan has (its top-level
 * key "versions"): from phase1 apply, a before and an after schema of views
 * over the plan's tables (the plan's table and, for convert_to_uuid, every
 * table pointing at its key), one view per table, a plain column list with
 * security_invoker, the table's defaults and grants; see versions.h.
 */
#include "ops/versions.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"
#include "ops/uuid/uuid.h"

const char *const versions_names[2] = {"before", "after"};

/* The two schemas' names the reader filled (VersionsSpec). */
static char **
schemas_of(const Op *op)
{
	VersionsSpec *spec = op->data;

	return spec->schemas;
}

/* The plan's versioned_views operation. */
static const Op *
versions_op(const Plan *plan)
{
	for (int i = 0; i < plan->n_ops; i++)
		if (plan->ops[i].kind == &op_type_versioned_views)
			return &plan->ops[i];
	return NULL;
}

const char *
versions_schema(const Plan *plan, int version)
{
	return schemas_of(versions_op(plan))[version];
}

char *
versions_except_schemas(const Plan *plan)
{
	const Op *op = versions_op(plan);
	json_t *a = NULL;
	char *text;

	/* every plan's: another plan's views on a shared table read this plan's columns too */
	if (mlog_state_exists(plan->conn))
	{
		char *all = registry_names_of_kind(plan->conn, VERSIONS_KIND);

		a = json_loads(all, 0, NULL);
		free(all);
	}
	if (!json_is_array(a))
	{
		json_decref(a);
		a = json_array();
	}
	if (op)
		for (int v = 0; v < 2; v++)
			json_array_append_new(a, json_string(schemas_of(op)[v]));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text;
}

static bool
schema_exists(Run *run, const char *name)
{
	const char *p[1] = {name};

	return db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, p);
}

/* The versions whose drop this run made (a dry run's drop drops nothing). */
static bool dropped_by_this_run[2];

char *
versions_drop_sql(Run *run, int version, int *n_views)
{
	const char *name = versions_schema(run->plan, version);
	const char *p[1] = {name};
	char *qschema, *views, *sql, *lock = NULL;
	PGresult *res;

	if (n_views)
		*n_views = 0;
	if (dropped_by_this_run[version] || !schema_exists(run, name))
		return NULL;
	dropped_by_this_run[version] = true;
	qschema = sql_ident(name);
	res = db_query(run->conn,
				   "SELECT count(*) AS n, pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), "
				   "', ' ORDER BY c.relname) AS views FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
				   "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'v'",
				   1, p);
	views = db_field(res, 0, "views") ? xstrdup(db_field(res, 0, "views")) : NULL;
	if (n_views)
		*n_views = (int) db_field_ll(res, 0, "n");
	PQclear(res);
	/*
	 * Every view in one LOCK first (under the caller's lock_timeout, which
	 * versions_unapply keeps below deadlock_timeout): the DROP VIEW of several
	 * would lock them one by one, and an application transaction that wrote
	 * through one view and then waits behind the drop for another would
	 * deadlock with it, and be the one aborted (ops_lock_share_ms).
	 */
	if (views)
		lock = str_printf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE;\n", views);
	sql = str_printf("%s%s%s%sDROP SCHEMA IF EXISTS %s", lock ? lock : "", views ? "DROP VIEW IF EXISTS " : "",
					 views ? views : "", views ? ";\n" : "", qschema);
	free(lock), free(views), free(qschema);
	return sql;
}

char *
versions_holders(Run *run, int version)
{
	const char *p[1] = {versions_schema(run->plan, version)};

	return db_value(run->conn,
							 "SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('pid %s (application_name %s)', "
							 "a.pid, pg_catalog.quote_literal(a.application_name)), ', ') "
							 "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation "
							 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
							 "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
							 "WHERE n.nspname = $1 AND l.pid <> pg_catalog.pg_backend_pid()",
							 1, p);
}

int
versions_refuse_if_held(Run *run, int version)
{
	const char *name = versions_schema(run->plan, version);
	char *holders = versions_holders(run, version);

	if (holders == NULL)
		return EXIT_DONE;
	log_error("schema \"%s\" is still in use: sessions hold locks on its views: %s", name, holders);
	log_hint("retire the application version that reads \"%s\" (its search_path), then run this again", name);
	free(holders);
	return EXIT_REFUSED;
}

char *
versions_drop_others_reading_sql(Run *run, const char *qtable, const char *column)
{
	char *except = versions_except_schemas(run->plan);
	const Op *own = versions_op(run->plan);
	/* this plan's own schemas, by name too: a dry run has not dropped them (nor their registry rows) */
	const char *p[6] = {
		qtable, column, except, run->plan->name, own ? schemas_of(own)[0] : "", own ? schemas_of(own)[1] : ""};
	char *views = db_value(run->conn,
						   "SELECT pg_catalog.string_agg(DISTINCT r.ev_class::regclass::text, ', ') "
						   "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_depend d ON d.refobjid = a.attrelid "
						   "AND d.refobjsubid = a.attnum JOIN pg_catalog.pg_rewrite r ON d.classid = "
						   "'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid JOIN pg_catalog.pg_class v "
						   "ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace "
						   "WHERE a.attrelid = $1::regclass AND a.attname = $2 AND r.rulename = '_RETURN' "
						   "AND n.nspname IN (SELECT pg_catalog.jsonb_array_elements_text($3::jsonb)) "
						   "AND n.nspname NOT IN (SELECT o.name FROM migration_backup.phasemig_objects o "
						   "WHERE o.plan = $4 AND o.kind = 'versioned_schema') AND n.nspname NOT IN ($5, $6)",
						   6, p);
	char *sql = NULL;

	if (views)
	{
		log_warning("dropping %s: versioned views of another plan that read %s.%s", views, qtable, column);
		sql = str_printf("DROP VIEW IF EXISTS %s", views);
	}
	free(views), free(except);
	return sql;
}

/* ---------- the operation ---------- */

/* phase1: both schemas. */
static int
versions_apply(Run *run, const Op *op, const Options *opts)
{
	int rc = versions_create(run, VERSIONS_BEFORE);

	(void) op, (void) opts;
	return rc == EXIT_DONE ? versions_create(run, VERSIONS_AFTER) : rc;
}

/* phase1 rollback: both schemas and their records, first of all (they read the columns phase1 added). */
static int
versions_unapply(Run *run, const Op *op, const Options *opts)
{
	int rc = EXIT_DONE;

	(void) opts;
	for (int v = VERSIONS_AFTER; v >= VERSIONS_BEFORE && rc == EXIT_DONE; v--)
	{
		int n_views;
		char *drop = versions_drop_sql(run, v, &n_views);
		/* the views' LOCK waits less than deadlock_timeout in all: the application never is the victim */
		char *timeout = str_printf("SET LOCAL lock_timeout = %lld", ops_lock_share_ms(run, n_views));
		const char *stmts[2] = {timeout, drop};

		if (!registry_has(run->conn, run->plan, VERSIONS_KIND, schemas_of(op)[v]))
		{
			free(drop), free(timeout);
			continue;
		}
		log_info("dropping schema \"%s\"", schemas_of(op)[v]);
		rc = ops_ddl_forget(run, "dropping a versioned schema", stmts, drop ? 2 : 0, VERSIONS_KIND, schemas_of(op)[v]);
		free(drop), free(timeout);
	}
	return rc;
}

/* Finalize: the before schema, unless convert_to_uuid's finalize or drop_column dropped it already. */
static int
versions_finalize(Run *run, const Op *op, const Options *opts)
{
	char *drop;
	int rc;

	(void) op, (void) opts;
	if ((rc = versions_refuse_if_held(run, VERSIONS_BEFORE)) != EXIT_DONE)
		return rc;
	if ((drop = versions_drop_sql(run, VERSIONS_BEFORE, NULL)) == NULL)
		return EXIT_DONE;
	log_info("dropping schema \"%s\": the application before the migration is retired",
			 versions_schema(run->plan, VERSIONS_BEFORE));
	rc = ops_ddl(run, "dropping the before schema", (const char *const[]){drop}, 1);
	free(drop);
	return rc;
}

/*
 * phase3 rollback: the before schema back when it was dropped (by finalize,
 * or with drop_column's column, which that rollback restored first).  A
 * finalized uuid job's legacy columns are not back yet: its own undo
 * recreates the schema once they are.
 */
static int
versions_unfinalize(Run *run, const Op *op, const Options *opts)
{
	UuidJob job;
	bool waits = false;

	(void) opts;
	if (schema_exists(run, schemas_of(op)[VERSIONS_BEFORE])
		|| !registry_has(run->conn, run->plan, VERSIONS_KIND, schemas_of(op)[VERSIONS_BEFORE]))
		return EXIT_DONE;
	if (versions_uuid_job(run, &job))
	{
		waits = job.finalized;
		uuid_job_free(&job);
	}
	return waits ? EXIT_DONE : versions_create(run, VERSIONS_BEFORE);
}

/* A schema name of the plan's "versions": an identifier PostgreSQL keeps whole, not a system one. */
static char *
read_name(PlanReader *r, json_t *obj, int version, const char *dflt)
{
	char *name = obj ? plan_read_ident(r, obj, "versions", versions_names[version], false) : NULL;

	if (name == NULL)
		name = xstrdup(dflt);
	else if (strncmp(name, "pg_", 3) == 0 || strcmp(name, "public") == 0 || strcmp(name, "migration_backup") == 0
			 || strcmp(name, "information_schema") == 0)
		plan_read_fail(r, "versions", "\"%s\": \"%s\" is a schema phasemig may not create", versions_names[version],
					   name);
	return name;
}

static void
versions_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	static const char *const keys[] = {"before", "after", "comment", NULL};
	const char *key;
	json_t *value;

	op->data = xcalloc(1, sizeof(VersionsSpec));
	if (obj && !json_is_object(obj))
	{
		plan_read_fail(r, where, "must be an object: {\"before\": schema, \"after\": schema}");
		return;
	}
	json_object_foreach(obj, key, value)
	{
		bool known = false;

		(void) value;
		for (int k = 0; keys[k]; k++)
			known = known || strcmp(keys[k], key) == 0;
		if (!known)
			plan_read_fail(r, where, "unknown key \"%s\"", key);
	}
	for (int v = 0; v < 2; v++)
	{
		/* the plan's name with '-' as '_': a schema name search_path takes unquoted */
		char *dflt = str_printf("%s_%s", r->plan_name ? r->plan_name : "plan", versions_names[v]);

		for (char *s = dflt; *s; s++)
			if (*s == '-')
				*s = '_';
		schemas_of(op)[v] = read_name(r, obj, v, dflt);
		free(dflt);
	}
	if (schemas_of(op)[0] && schemas_of(op)[1] && strcmp(schemas_of(op)[0], schemas_of(op)[1]) == 0)
		plan_read_fail(r, where, "\"before\" and \"after\" must name two schemas, not \"%s\" twice", schemas_of(op)[0]);
}

/* Refuse a schema of that name that is not this plan's. */
static int
versions_check_plan(Run *run, const Op *op)
{
	int problems = 0;

	for (int v = 0; v < 2; v++)
	{
		const char *name = schemas_of(op)[v];

		if (!schema_exists(run, name)
			|| (mlog_state_exists(run->conn) && registry_has(run->conn, run->plan, VERSIONS_KIND, name)))
			continue;
		log_error("schema \"%s\" exists and is not phasemig's (plan \"%s\" would create it as its %s schema)", name,
				  run->plan->name, versions_names[v]);
		log_hint("name other schemas in the plan: \"versions\": {\"before\": ..., \"after\": ...}");
		problems++;
	}
	return problems;
}

/* status: the schemas each phase offers. */
static void
versions_status(Run *run, const Op *op, int phase, json_t *obj)
{
	json_t *offers = json_array();
	bool drops_before = false;

	for (int i = 0; i < run->plan->n_ops; i++)
		drops_before = drops_before || strcmp(run->plan->ops[i].kind->name, "drop_column") == 0;
	if (phase < 3 || !drops_before)
		json_array_append_new(offers, json_string(schemas_of(op)[VERSIONS_BEFORE]));
	json_array_append_new(offers, json_string(schemas_of(op)[VERSIONS_AFTER]));
	json_object_set_new(obj, "schemas", offers);
	json_object_set_new(obj, "schemas_now",
						json_pack("{s:b, s:b}", schemas_of(op)[VERSIONS_BEFORE],
								  schema_exists(run, schemas_of(op)[VERSIONS_BEFORE]), schemas_of(op)[VERSIONS_AFTER],
								  schema_exists(run, schemas_of(op)[VERSIONS_AFTER])));
}

static void
versions_free(void *data)
{
	VersionsSpec *spec = data;

	if (spec)
		free(spec->schemas[0]), free(spec->schemas[1]);
	free(spec);
}

static void
versions_uses(const Op *op, PlanUses *u)
{
	(void) op, (void) u;
}

static const OpHandlers versions_handlers = {
	.apply = {[1] = versions_apply},
	.rollback = {[1] = versions_unapply, [3] = versions_unfinalize},
	.finalize = versions_finalize,
};

const OpType op_type_versioned_views = {
	.name = "versioned_views",
	.keys = (const char *const[]){NULL},
	.read = versions_read,
	.free = versions_free,
	.check_plan = versions_check_plan,
	.uses = versions_uses,
	.handlers = &versions_handlers,
	.status = versions_status,
	.plan_key = "versions",
	.finalize_drops = "drops the before schema of views (refused while sessions use it)",
};
