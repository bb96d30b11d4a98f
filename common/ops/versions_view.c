/*
 * versions_view.c: what each view of a versioned schema shows (a converted
 * column under its name for the version, the plan's added or dropped
 * columns, the rest as they are, in the order first recorded) and the
 * statements creating a schema of them; versions.c is the operation.
 */
#include "ops/versions.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"
#include "ops/uuid/uuid.h"


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


/* ---------- what each view shows ---------- */

/* The convert_to_uuid job, loaded into JOB when the plan has one phase1 recorded. */
bool
versions_uuid_job(Run *run, UuidJob *job)
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
	json_t *record = json_pack("{s:s, s:{}}", "version", versions_names[version], "columns");
	UuidJob job;
	bool have_job = versions_uuid_job(run, &job);
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
			 json_array_size(tables), versions_names[version]);
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
