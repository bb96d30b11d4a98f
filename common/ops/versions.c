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

#define VERSIONS_KIND "versioned_schema"

static const char *const version_names[2] = {"before", "after"};

/* One column of a view: NAME reading the table's column READS. */
typedef struct VersionsColumn
{
	char *name;
	char *reads;
	char *default_sql; /* the default of READS, or NULL */
	long sort;         /* its place: the recorded order, else the attnum of the column it stands for */
} VersionsColumn;

typedef struct VersionsView
{
	char *table;   /* quoted, schema-qualified */
	char *relname; /* the view's name: the table's */
	VersionsColumn *c;
	int n;
} VersionsView;

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
	return versions_op(plan)->schemas[version];
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
			json_array_append_new(a, json_string(op->schemas[v]));
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

/* ---------- what each view shows ---------- */

/* The convert_to_uuid job, loaded into JOB when the plan has one phase1 recorded. */
static bool
load_uuid_job(Run *run, UuidJob *job)
{
	for (int i = 0; i < run->plan->n_ops; i++)
	{
		const Op *op = &run->plan->ops[i];

		if (op->kind == &op_type_convert_to_uuid && uuid_job_recorded(run, op))
			return uuid_job_load(job, run, op, NULL);
	}
	return false;
}

/* The columns the plan's other operations add (PLAN_ADDS) or drop (PLAN_DROPS), as a JSON array. */
static json_t *
plan_columns(const Plan *plan, PlanUseKind kind)
{
	json_t *cols = json_array();

	for (int i = 0; i < plan->n_ops; i++)
	{
		const Op *op = &plan->ops[i];
		PlanUses u = {0};

		if (op->kind->uses == NULL || op->kind == &op_type_convert_to_uuid)
			continue;
		op->kind->uses(op, &u);
		for (int k = 0; k < u.n; k++)
		{
			if (u.use[k].kind == kind)
				json_array_append_new(cols, json_string(u.use[k].what));
			free(u.use[k].what);
		}
		free(u.use);
	}
	return cols;
}

static bool
json_has(json_t *array, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(array, i, v) if (strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* The tables: the plan's, then the uuid job's, each once (by oid), as {table, relname}. */
static json_t *
plan_tables(Run *run, const UuidJob *job)
{
	json_t *names = json_array(), *tables;
	char *text;
	const char *p[1];

	json_array_append_new(names, json_string(run->plan->q_table));
	for (int i = 0; job && i < job->n; i++)
		json_array_append_new(names, json_string(job->t[i].table));
	text = json_dumps(names, JSON_COMPACT);
	p[0] = text;
	{
		char *rows = db_value(run->conn,
							  "SELECT pg_catalog.json_agg(json_build_object('table', t, 'relname', relname, 'oid', "
							  "oid::text, 'plan_table', first = 1) ORDER BY first)::text FROM (SELECT min(o) AS first, "
							  "c.oid, c.relname, "
							  "pg_catalog.format('%I.%I', n.nspname, c.relname) AS t FROM "
							  "pg_catalog.json_array_elements_text($1::json) WITH ORDINALITY e(name, o) "
							  "JOIN pg_catalog.pg_class c ON c.oid = e.name::regclass "
							  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace GROUP BY c.oid, c.relname, "
							  "n.nspname) x",
							  1, p);

		tables = rows ? json_loads(rows, 0, NULL) : json_array();
		free(rows);
	}
	free(text);
	json_decref(names);
	return tables;
}

/* Whether target T of the job is on the table with oid OID. */
static bool
target_on(Run *run, const UuidTarget *t, const char *oid)
{
	const char *p[2] = {t->table, oid};

	return db_exists(run->conn, "SELECT 1 WHERE $1::regclass = $2::oid", 2, p);
}

static void
add_column(VersionsView *v, const char *name, const char *reads, const char *default_sql, long sort)
{
	VersionsColumn *c;

	v->c = xrealloc(v->c, (size_t) (v->n + 1) * sizeof *v->c);
	c = &v->c[v->n++];
	c->name = xstrdup(name);
	c->reads = xstrdup(reads);
	c->default_sql = default_sql ? xstrdup(default_sql) : NULL;
	c->sort = sort;
}

static int
by_sort(const void *a, const void *b)
{
	const VersionsColumn *x = a, *y = b;

	return x->sort < y->sort ? -1 : x->sort > y->sort;
}

/* The attnum of column NAME in RES (the table's columns), or -1. */
static long
attnum_of(const PGresult *res, const char *name)
{
	for (int r = 0; r < PQntuples(res); r++)
		if (strcmp(db_field(res, r, "attname"), name) == 0)
			return atol(db_field(res, r, "attnum"));
	return -1;
}

/*
 * The shadow and legacy columns another plan's convert_to_uuid keeps on the
 * table with oid OID: not the application's, in no view of this plan (and
 * that plan drops them without meeting this plan's views).
 */
static json_t *
other_plans_columns(Run *run, const char *oid)
{
	char *text = registry_others_of_kind(run->conn, run->plan, "uuid_target");
	json_t *targets = json_loads(text, 0, NULL), *cols = json_array();
	size_t i;
	json_t *d;

	json_array_foreach(targets, i, d)
	{
		const char *table = json_string_value(json_object_get(d, "table"));
		const char *column = json_string_value(json_object_get(d, "column"));
		const char *p[2] = {table, oid};

		if (!table || !column || !db_exists(run->conn, "SELECT 1 WHERE $1::regclass = $2::oid", 2, p))
			continue;
		for (int k = 0; k < 2; k++)
		{
			char *name = str_printf("%s_%s", column, k ? "legacy" : "uuid");

			if (strlen(name) > 63)
				name[63] = '\0';
			json_array_append_new(cols, json_string(name));
			free(name);
		}
	}
	json_decref(targets);
	free(text);
	return cols;
}

/* The default of column NAME in RES (the table's columns), or NULL. */
static const char *
default_of(const PGresult *res, const char *name)
{
	for (int r = 0; r < PQntuples(res); r++)
		if (strcmp(db_field(res, r, "attname"), name) == 0)
			return db_field(res, r, "default_sql");
	return NULL;
}

static bool
view_has(const VersionsView *v, const char *name)
{
	for (int i = 0; i < v->n; i++)
		if (strcmp(v->c[i].name, name) == 0)
			return true;
	return false;
}

/*
 * Target T's column in VERSION's view: its text before the swap and its
 * legacy column after it in the before view, its shadow before the swap and
 * itself after it in the after view.  The names come from the job, not from
 * the catalog, so that a dry run (whose earlier steps changed nothing) says
 * what the real run does; a legacy column finalize dropped has the default
 * its record kept.
 */
static void
add_target(const UuidJob *job, int i, const PGresult *res, int version, long attnum, VersionsView *v)
{
	const UuidTarget *t = &job->t[i];
	long legacy_at = attnum_of(res, t->legacy);
	long sort = job->swapped && legacy_at > 0 ? legacy_at : attnum;

	if (version == VERSIONS_AFTER)
		add_column(v, t->column, job->swapped ? t->column : t->shadow,
				   job->swapped ? default_of(res, t->column) : NULL, sort);
	else if (!job->swapped)
		add_column(v, t->column, t->column, default_of(res, t->column), sort);
	else if (legacy_at > 0)
		add_column(v, t->column, t->legacy, default_of(res, t->legacy), sort);
	else
	{
		json_t *cols = uuid_recorded_detail(job, "uuid_finalized");
		json_t *def = json_object_get(json_array_get(cols, (size_t) i), "default");

		add_column(v, t->column, t->legacy, json_string_value(def), sort);
		json_decref(cols);
	}
}

/*
 * VERSION's view of table TBL ({table, relname, oid, plan_table}): a
 * converted column as add_target() says, the plan's added columns not in the
 * before view and its dropped ones not in the after view, the rest as they
 * are.  ORDER (the names recorded when the schema was first created, or
 * NULL) places them; a recorded name the catalog lacks yet (a dry run's
 * restore, which restores nothing) is shown as the column of that name.
 */
static void
build_view(Run *run, const UuidJob *job, json_t *tbl, int version, json_t *order, VersionsView *v)
{
	const char *oid = json_string_value(json_object_get(tbl, "oid"));
	const char *p[1] = {oid};
	PGresult *res = db_query(run->conn,
							 "SELECT a.attname, a.attnum, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_sql "
							 "FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d "
							 "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
							 "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
							 1, p);
	bool plan_table = json_is_true(json_object_get(tbl, "plan_table"));
	json_t *hidden = plan_table ? plan_columns(run->plan, version == VERSIONS_BEFORE ? PLAN_ADDS : PLAN_DROPS)
								: json_array();
	json_t *others = other_plans_columns(run, oid);
	json_t *names = json_object_get(order, json_string_value(json_object_get(tbl, "relname")));
	bool *on_table = xcalloc((size_t) (job ? job->n : 0) + 1, sizeof *on_table);
	size_t k;
	json_t *e;

	memset(v, 0, sizeof *v);
	v->table = xstrdup(json_string_value(json_object_get(tbl, "table")));
	v->relname = xstrdup(json_string_value(json_object_get(tbl, "relname")));
	for (int i = 0; job && i < job->n; i++)
		on_table[i] = target_on(run, &job->t[i], oid);
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *col = db_field(res, r, "attname");
		long attnum = atol(db_field(res, r, "attnum"));
		bool mine = false;

		for (int i = 0; job && i < job->n && !mine; i++)
		{
			const UuidTarget *t = &job->t[i];

			if (!on_table[i])
				continue;
			if (strcmp(col, t->shadow) == 0 || strcmp(col, t->legacy) == 0)
				mine = true;
			else if (strcmp(col, t->column) == 0)
			{
				add_target(job, i, res, version, attnum, v);
				mine = true;
			}
		}
		if (!mine && !json_has(hidden, col) && !json_has(others, col))
			add_column(v, col, col, db_field(res, r, "default_sql"), attnum);
	}
	/* what a dry run's earlier steps would have added: the plan's new columns, a restored column */
	if (plan_table && version == VERSIONS_AFTER)
	{
		json_t *added = plan_columns(run->plan, PLAN_ADDS);

		json_array_foreach(added, k, e) if (!view_has(v, json_string_value(e)))
			add_column(v, json_string_value(e), json_string_value(e), NULL, 1000000 + (long) k);
		json_decref(added);
	}
	json_array_foreach(names, k, e) if (!view_has(v, json_string_value(e)))
		add_column(v, json_string_value(e), json_string_value(e), NULL, 0);
	/* the recorded order first, then the others by their place in the table */
	for (int i = 0; i < v->n; i++)
		json_array_foreach(names, k, e) if (strcmp(json_string_value(e), v->c[i].name) == 0)
	{
		v->c[i].sort = (long) k - 100000;
		break;
	}
	qsort(v->c, (size_t) v->n, sizeof *v->c, by_sort);
	free(on_table);
	json_decref(hidden), json_decref(others);
	PQclear(res);
}

static void
free_view(VersionsView *v)
{
	for (int i = 0; i < v->n; i++)
	{
		free(v->c[i].name);
		free(v->c[i].reads);
		free(v->c[i].default_sql);
	}
	free(v->c);
	free(v->table);
	free(v->relname);
}

/* ---------- statements ---------- */

/*
 * CREATE OR REPLACE VIEW, its defaults and the table's grants, appended to
 * SB.  security_invoker from PostgreSQL 15 on (versions_create warns before).
 */
static void
append_view(Run *run, StrBuf *sb, const char *qschema, const VersionsView *v)
{
	char *qview = sql_ident(v->relname);
	const char *p[1] = {v->table};
	PGresult *res;

	sb_printf(sb, "CREATE OR REPLACE VIEW %s.%s%s AS SELECT ", qschema, qview,
			  PQserverVersion(run->conn) >= 150000 ? " WITH (security_invoker = true)" : "");
	for (int i = 0; i < v->n; i++)
	{
		char *qr = sql_ident(v->c[i].reads), *qn = sql_ident(v->c[i].name);

		sb_printf(sb, "%s%s AS %s", i ? ", " : "", qr, qn);
		free(qr), free(qn);
	}
	sb_printf(sb, " FROM %s;\n", v->table);
	for (int i = 0; i < v->n; i++)
		if (v->c[i].default_sql)
		{
			char *qn = sql_ident(v->c[i].name);

			sb_printf(sb, "ALTER VIEW %s.%s ALTER COLUMN %s SET DEFAULT %s;\n", qschema, qview, qn,
					  v->c[i].default_sql);
			free(qn);
		}
	/* the table's grants (its owner's too, when another role owns the view), and USAGE on the schema */
	res = db_query(run->conn,
				   "SELECT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident("
				   "pg_catalog.pg_get_userbyid(g.grantee)) END AS who, "
				   "pg_catalog.string_agg(DISTINCT g.privilege_type, ', ') AS privileges "
				   "FROM pg_catalog.pg_class c, pg_catalog.aclexplode(coalesce(c.relacl, "
				   "pg_catalog.acldefault('r', c.relowner))) g WHERE c.oid = $1::regclass "
				   "AND g.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') "
				   "AND g.grantee IS DISTINCT FROM (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) "
				   "GROUP BY 1 ORDER BY 1",
				   1, p);
	for (int r = 0; r < PQntuples(res); r++)
		sb_printf(sb, "GRANT %s ON %s.%s TO %s;\nGRANT USAGE ON SCHEMA %s TO %s;\n", db_field(res, r, "privileges"),
				  qschema, qview, db_field(res, r, "who"), qschema, db_field(res, r, "who"));
	PQclear(res);
	free(qview);
}

int
versions_create(Run *run, int version)
{
	const char *name = versions_schema(run->plan, version);
	char *qschema = sql_ident(name);
	char *detail = registry_detail(run->conn, run->plan, VERSIONS_KIND, name);
	json_t *recorded = detail ? json_loads(detail, 0, NULL) : NULL;
	json_t *order = json_object_get(recorded, "columns");
	json_t *record = json_pack("{s:s, s:{}}", "version", version_names[version], "columns");
	UuidJob job;
	bool have_job = load_uuid_job(run, &job);
	json_t *tables = plan_tables(run, have_job ? &job : NULL);
	StrBuf sb;
	size_t i;
	json_t *tbl;
	char *record_text, *reg;
	int rc;

	sb_init(&sb);
	sb_printf(&sb, "CREATE SCHEMA IF NOT EXISTS %s;\n", qschema);
	sb_printf(&sb, "COMMENT ON SCHEMA %s IS ", qschema);
	{
		char *comment = str_printf("phasemig plan %s: its tables as the application %s the migration knows them",
								   run->plan->name, version == VERSIONS_BEFORE ? "before" : "after");

		sb_append_literal(&sb, comment);
		free(comment);
	}
	sb_append(&sb, ";\n");
	json_array_foreach(tables, i, tbl)
	{
		VersionsView v;
		json_t *names = json_array();

		build_view(run, have_job ? &job : NULL, tbl, version, order, &v);
		append_view(run, &sb, qschema, &v);
		for (int k = 0; k < v.n; k++)
			json_array_append_new(names, json_string(v.c[k].name));
		json_object_set_new(json_object_get(record, "columns"), v.relname, names);
		free_view(&v);
	}
	record_text = json_dumps(record, JSON_COMPACT);
	/* the first record stays: the order of the columns a rollback recreates them in */
	reg = registry_add_detail_sql(run->plan, run->phase, VERSIONS_KIND, name, record_text);
	sb_append(&sb, reg);
	if (PQserverVersion(run->conn) < 150000)
		log_warning("PostgreSQL before 15 has no security_invoker: the views of %s check the table's rights as "
					"their owner; the grants copied on them decide who reads and writes through them",
					qschema);
	log_info("creating schema %s: %zu views of the tables as the application %s the migration knows them", qschema,
			 json_array_size(tables), version_names[version]);
	{
		const char *stmts[1] = {sb.data};

		rc = ops_ddl(run, "creating a versioned schema", stmts, 1);
	}
	free(reg), free(record_text), free(detail), free(qschema);
	sb_free(&sb);
	json_decref(tables), json_decref(record), json_decref(recorded);
	if (have_job)
		uuid_job_free(&job);
	return rc;
}

/* The versions whose drop this run made (a dry run's drop drops nothing). */
static bool dropped_by_this_run[2];

char *
versions_drop_sql(Run *run, int version)
{
	const char *name = versions_schema(run->plan, version);
	const char *p[1] = {name};
	char *qschema, *views, *sql;

	if (dropped_by_this_run[version] || !schema_exists(run, name))
		return NULL;
	dropped_by_this_run[version] = true;
	qschema = sql_ident(name);
	views = db_value(run->conn,
					 "SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', ' "
					 "ORDER BY c.relname) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
					 "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'v'",
					 1, p);
	sql = str_printf("%s%s%sDROP SCHEMA IF EXISTS %s", views ? "DROP VIEW IF EXISTS " : "", views ? views : "",
					 views ? ";\n" : "", qschema);
	free(views), free(qschema);
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
	const char *p[6] = {qtable, column, except, run->plan->name, own ? own->schemas[0] : "", own ? own->schemas[1] : ""};
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
		char *drop = versions_drop_sql(run, v);
		const char *stmts[1] = {drop};

		if (!registry_has(run->conn, run->plan, VERSIONS_KIND, op->schemas[v]))
		{
			free(drop);
			continue;
		}
		log_info("dropping schema \"%s\"", op->schemas[v]);
		rc = ops_ddl_forget(run, "dropping a versioned schema", stmts, drop ? 1 : 0, VERSIONS_KIND, op->schemas[v]);
		free(drop);
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
	if ((drop = versions_drop_sql(run, VERSIONS_BEFORE)) == NULL)
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
	if (schema_exists(run, op->schemas[VERSIONS_BEFORE])
		|| !registry_has(run->conn, run->plan, VERSIONS_KIND, op->schemas[VERSIONS_BEFORE]))
		return EXIT_DONE;
	if (load_uuid_job(run, &job))
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
	char *name = obj ? plan_read_ident(r, obj, "versions", version_names[version], false) : NULL;

	if (name == NULL)
		name = xstrdup(dflt);
	else if (strncmp(name, "pg_", 3) == 0 || strcmp(name, "public") == 0 || strcmp(name, "migration_backup") == 0
			 || strcmp(name, "information_schema") == 0)
		plan_read_fail(r, "versions", "\"%s\": \"%s\" is a schema phasemig may not create", version_names[version],
					   name);
	return name;
}

static void
versions_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	static const char *const keys[] = {"before", "after", "comment", NULL};
	const char *key;
	json_t *value;

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
		char *dflt = str_printf("%s_%s", r->plan_name ? r->plan_name : "plan", version_names[v]);

		for (char *s = dflt; *s; s++)
			if (*s == '-')
				*s = '_';
		op->schemas[v] = read_name(r, obj, v, dflt);
		free(dflt);
	}
	if (op->schemas[0] && op->schemas[1] && strcmp(op->schemas[0], op->schemas[1]) == 0)
		plan_read_fail(r, where, "\"before\" and \"after\" must name two schemas, not \"%s\" twice", op->schemas[0]);
}

/* Refuse a schema of that name that is not this plan's. */
static int
versions_check_plan(Run *run, const Op *op)
{
	int problems = 0;

	for (int v = 0; v < 2; v++)
	{
		const char *name = op->schemas[v];

		if (!schema_exists(run, name)
			|| (mlog_state_exists(run->conn) && registry_has(run->conn, run->plan, VERSIONS_KIND, name)))
			continue;
		log_error("schema \"%s\" exists and is not phasemig's (plan \"%s\" would create it as its %s schema)", name,
				  run->plan->name, version_names[v]);
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
		json_array_append_new(offers, json_string(op->schemas[VERSIONS_BEFORE]));
	json_array_append_new(offers, json_string(op->schemas[VERSIONS_AFTER]));
	json_object_set_new(obj, "schemas", offers);
	json_object_set_new(obj, "schemas_now",
						json_pack("{s:b, s:b}", op->schemas[VERSIONS_BEFORE],
								  schema_exists(run, op->schemas[VERSIONS_BEFORE]), op->schemas[VERSIONS_AFTER],
								  schema_exists(run, op->schemas[VERSIONS_AFTER])));
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
	.check_plan = versions_check_plan,
	.uses = versions_uses,
	.handlers = &versions_handlers,
	.status = versions_status,
	.plan_key = "versions",
	.finalize_drops = "drops the before schema of views (refused while sessions use it)",
};
