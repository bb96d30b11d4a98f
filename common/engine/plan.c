/*
 * plan.c: reads a plan file with jansson, refusing unknown keys and wrong
 * types with the file, the JSON path and the reason, and checks it against the
 * catalog once connected.
 */
#include "engine/plan.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/input_file.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/operation.h"
#include "engine/plan_order.h"
#include "engine/plan_read.h"

#define MAX_IDENT PLAN_MAX_IDENT

void
plan_read_fail(PlanReader *r, const char *where, const char *fmt, ...)
{
	va_list ap;
	StrBuf sb;

	if (!r->ok)
		return; /* report the first problem only */
	sb_init(&sb);
	{
		char msg[512];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		sb_printf(&sb, "invalid plan \"%s\": %s: %s", r->path, where, msg);
	}
	log_error("%s", sb.data);
	sb_free(&sb);
	r->ok = false;
}

/* Whether KEY is one of LIST (NULL-terminated; NULL: none). */
static bool
key_in(const char *key, const char *const *list)
{
	for (int i = 0; list && list[i]; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

char *
plan_extra_tables(const Plan *plan)
{
	json_t *list = json_array();
	char *text;

	for (int i = 0; i < plan->n_ops; i++)
		if (plan->ops[i].kind->extra_tables)
			plan->ops[i].kind->extra_tables(&plan->ops[i], plan, list);
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return text;
}

/* Refuse keys of OBJ that are in neither ALLOWED nor MORE. */
static void
check_keys(PlanReader *r, json_t *obj, const char *where, const char *const *allowed, const char *const *more)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj, key, value)
	{
		(void) value;
		if (!key_in(key, allowed) && !key_in(key, more))
			plan_read_fail(r, where, "unknown key \"%s\"", key);
	}
}

void
plan_read_check_keys(PlanReader *r, json_t *obj, const char *where, const char *const *allowed)
{
	check_keys(r, obj, where, allowed, NULL);
}

char *
plan_read_string(PlanReader *r, json_t *obj, const char *where, const char *key, bool required)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
	{
		if (required)
			plan_read_fail(r, where, "missing key \"%s\"", key);
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
	{
		plan_read_fail(r, where, "\"%s\" must be a non-empty string", key);
		return NULL;
	}
	return xstrdup(json_string_value(v));
}

char *
plan_read_ident(PlanReader *r, json_t *obj, const char *where, const char *key, bool required)
{
	char *s = plan_read_string(r, obj, where, key, required);

	if (s && strlen(s) > MAX_IDENT)
		plan_read_fail(r, where, "\"%s\" is longer than %d bytes, PostgreSQL would truncate it", key, MAX_IDENT);
	return s;
}

bool
plan_read_bool(PlanReader *r, json_t *obj, const char *where, const char *key, bool dflt)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return dflt;
	if (!json_is_boolean(v))
		plan_read_fail(r, where, "\"%s\" must be true or false", key);
	return json_is_true(v);
}

static int
get_int(PlanReader *r, json_t *obj, const char *where, const char *key, int dflt, int min, int max)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (v == NULL)
		return dflt;
	if (!json_is_integer(v) || (n = json_integer_value(v)) < min || n > max)
	{
		plan_read_fail(r, where, "\"%s\" must be an integer from %d to %d", key, min, max);
		return dflt;
	}
	return (int) n;
}

/* The operation OBJ names, or NULL after refusing it. */
static const OpType *
find_type(PlanReader *r, json_t *obj, const char *where)
{
	const OpType *const *types = operations();
	char *name = plan_read_string(r, obj, where, "op", true);
	const OpType *found = NULL;

	for (int i = 0; name && types[i] && found == NULL; i++)
		if (strcmp(types[i]->name, name) == 0)
			found = types[i];
	if (found && found->plan_key)
	{
		plan_read_fail(r, where, "\"%s\" is not named in \"operations\": every plan has it (top-level key \"%s\")",
					   name, found->plan_key);
		found = NULL;
	}
	else if (name && found == NULL)
		plan_read_fail(r, where, "unknown operation \"%s\"", name);
	free(name);
	return found;
}

static void
read_op(PlanReader *r, Op *op, json_t *obj, int index)
{
	char where[64];

	snprintf(where, sizeof where, "operations[%d]", index);
	op->index = index;
	if (!json_is_object(obj))
	{
		plan_read_fail(r, where, "must be an object");
		return;
	}
	if ((op->kind = find_type(r, obj, where)) == NULL)
		return;
	check_keys(r, obj, where, (const char *const[]){"op", "comment", NULL}, op->kind->keys);
	op->kind->read(r, op, obj, where);
	/* a reader sets its own label when "<op> <column>" is not it (create_index: its name) */
	if (op->label == NULL)
		op->label = str_printf("%s %s", op->kind->name, op->column ? op->column : "");
}

/*
 * The operations every plan has (OpType.plan_key), after its own, each read
 * from its top-level key (NULL when the plan has none).
 */
static void
add_implicit_ops(PlanReader *r, Plan *plan, json_t *root)
{
	const OpType *const *types = operations();

	for (int i = 0; types[i] && r->ok; i++)
	{
		const OpType *kind = types[i];
		Op *op;

		if (kind->plan_key == NULL)
			continue;
		plan->ops = xrealloc(plan->ops, (size_t) (plan->n_ops + 1) * sizeof(Op));
		op = &plan->ops[plan->n_ops];
		memset(op, 0, sizeof *op);
		op->kind = kind;
		op->index = plan->n_ops++;
		kind->read(r, op, json_object_get(root, kind->plan_key), kind->plan_key);
		op->label = xstrdup(kind->name);
	}
}

/*
 * "trusted_triggers": [{"table": ..., "trigger": ..., "schema": ...}, ...],
 * the triggers of another role's function the operator reviewed (trust.h).
 */
static void
read_trusted_triggers(PlanReader *r, Plan *plan, json_t *list)
{
	static const char *const keys[] = {"schema", "table", "trigger", "comment", NULL};

	if (list == NULL)
		return;
	if (!json_is_array(list))
	{
		plan_read_fail(r, "trusted_triggers", "must be an array of {\"table\": ..., \"trigger\": ...}");
		return;
	}
	plan->trusted_triggers = xcalloc(json_array_size(list) + 1, sizeof(TrustedTrigger));
	for (size_t i = 0; i < json_array_size(list) && r->ok; i++)
	{
		json_t *obj = json_array_get(list, i);
		TrustedTrigger *t = &plan->trusted_triggers[plan->n_trusted_triggers++];
		char where[64];

		snprintf(where, sizeof where, "trusted_triggers[%zu]", i);
		if (!json_is_object(obj))
		{
			plan_read_fail(r, where, "must be an object");
			return;
		}
		check_keys(r, obj, where, keys, NULL);
		t->schema = plan_read_ident(r, obj, where, "schema", false);
		if (t->schema == NULL)
			t->schema = xstrdup(plan->schema);
		t->table = plan_read_ident(r, obj, where, "table", true);
		t->trigger = plan_read_ident(r, obj, where, "trigger", true);
	}
}

static bool
valid_plan_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 40)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

Plan *
plan_load(const char *path)
{
	static const char *const keys[] = {"name",     "description", "schema",           "table", "key",
									   "settings", "operations",  "trusted_triggers", NULL};
	static const char *const setting_keys[] = {"lock_timeout_ms", "batch_size", "target_batch_ms", "ddl_attempts",
											   NULL};
	PlanReader r = {.path = path, .ok = true};
	json_error_t jerr;
	json_t *root;
	json_t *ops;
	json_t *settings;
	Plan *plan;

	if (!input_file_check(path, "plan", INPUT_FILE_PLAN_LIMIT))
		return NULL;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
	{
		/* jansson's own code, not errno: errno may be left over from anything before */
		if (json_error_code(&jerr) == json_error_cannot_open_file)
			log_error("could not read plan \"%s\": %s", path, jerr.text);
		else
			log_error("invalid plan \"%s\": line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	plan = xcalloc(1, sizeof(Plan));
	plan->path = xstrdup(path);
	if (!json_is_object(root))
	{
		plan_read_fail(&r, "top level", "must be a JSON object");
		goto done;
	}
	{
		const OpType *const *types = operations();
		const char *implicit_keys[16] = {NULL};
		int n = 0;

		for (int i = 0; types[i] && n < 15; i++)
			if (types[i]->plan_key)
				implicit_keys[n++] = types[i]->plan_key;
		check_keys(&r, root, "top level", keys, implicit_keys);
	}
	plan->name = plan_read_string(&r, root, "top level", "name", true);
	if (plan->name && !valid_plan_name(plan->name))
		plan_read_fail(&r, "name", "must be 1 to 40 characters of a-z, 0-9, '-' and '_'");
	r.plan_name = plan->name;
	plan->description = plan_read_string(&r, root, "top level", "description", false);
	plan->schema = plan_read_ident(&r, root, "top level", "schema", false);
	if (plan->schema == NULL)
		plan->schema = xstrdup("public");
	plan->table = plan_read_ident(&r, root, "top level", "table", true);
	plan->key = plan_read_ident(&r, root, "top level", "key", true);

	settings = json_object_get(root, "settings");
	plan->lock_timeout_ms = 1000;
	plan->batch_size = 1000;
	plan->target_batch_ms = PLAN_TARGET_BATCH_MS;
	plan->ddl_attempts = 30;
	if (settings && !json_is_object(settings))
		plan_read_fail(&r, "settings", "must be an object");
	else if (settings)
	{
		check_keys(&r, settings, "settings", setting_keys, NULL);
		plan->lock_timeout_ms = get_int(&r, settings, "settings", "lock_timeout_ms", 1000, 10, 600000);
		plan->batch_size = get_int(&r, settings, "settings", "batch_size", 1000, 1, 1000000);
		plan->target_batch_ms = get_int(&r, settings, "settings", "target_batch_ms", PLAN_TARGET_BATCH_MS, 0, 600000);
		plan->ddl_attempts = get_int(&r, settings, "settings", "ddl_attempts", 30, 1, 1000);
	}

	ops = json_object_get(root, "operations");
	if (!json_is_array(ops) || json_array_size(ops) == 0)
		plan_read_fail(&r, "top level", "\"operations\" must be a non-empty array");
	else
	{
		plan->n_ops = (int) json_array_size(ops);
		plan->ops = xcalloc((size_t) plan->n_ops, sizeof(Op));
		for (int i = 0; i < plan->n_ops && r.ok; i++)
			read_op(&r, &plan->ops[i], json_array_get(ops, (size_t) i), i);
		/* the operations against each other: order and duplicates (plan_order.h) */
		if (r.ok && plan_order_check(plan) > 0)
			r.ok = false;
		if (r.ok)
			add_implicit_ops(&r, plan, root);
	}
	read_trusted_triggers(&r, plan, json_object_get(root, "trusted_triggers"));

done:
	json_decref(root);
	if (!r.ok)
	{
		plan_free(plan);
		return NULL;
	}
	return plan;
}

void
plan_free(Plan *plan)
{
	if (plan == NULL)
		return;
	for (int i = 0; i < plan->n_ops; i++)
	{
		Op *op = &plan->ops[i];

		free(op->label);
		free(op->column);
		/* the operation's own data: only its type knows what it holds */
		if (op->kind && op->kind->free)
			op->kind->free(op->data);
		else
			free(op->data);
	}
	free(plan->ops);
	for (int i = 0; i < plan->n_trusted_triggers; i++)
	{
		free(plan->trusted_triggers[i].schema);
		free(plan->trusted_triggers[i].table);
		free(plan->trusted_triggers[i].trigger);
	}
	free(plan->trusted_triggers);
	free(plan->path);
	free(plan->name);
	free(plan->description);
	free(plan->schema);
	free(plan->table);
	free(plan->key);
	free(plan->q_table);
	free(plan->q_key);
	free(plan->key_type);
	free(plan);
}

char *
plan_ident(const Plan *plan, const char *name)
{
	(void) plan;
	return sql_ident(name);
}

char *
plan_object_name(const Plan *plan, const char *what)
{
	return str_printf("%s:%s", plan->name, what);
}

char *
plan_backup_table(const Plan *plan, const char *what)
{
	char *name = plan_object_name(plan, what);
	char *q;
	char *full;

	/*
	 * a guard only: a plan plan_load accepted has a name of 40 bytes at most
	 * and its readers checked the longer names (drop_column's)
	 */
	if (strlen(name) > MAX_IDENT)
		log_fatal(EXIT_BAD_INPUT, "backup object name \"%s\" is longer than %d bytes; use a shorter plan name", name,
				  MAX_IDENT);
	q = sql_ident(name);
	full = str_printf("migration_backup.%s", q);
	free(name);
	free(q);
	return full;
}

bool
plan_bind(Plan *plan, PGconn *conn)
{
	const char *params[2] = {plan->schema, plan->table};
	PGresult *res;
	bool ok = true;

	plan->conn = conn;
	res = db_query(conn,
				   "SELECT c.relkind FROM pg_catalog.pg_class c "
				   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
				   "WHERE n.nspname = $1 AND c.relname = $2",
				   2, params);
	if (PQntuples(res) == 0 || strchr("rp", PQgetvalue(res, 0, 0)[0]) == NULL)
	{
		log_error("table \"%s.%s\" named by plan \"%s\" does not exist", plan->schema, plan->table, plan->path);
		PQclear(res);
		return false;
	}
	PQclear(res);
	{
		char *qs = sql_ident(plan->schema);
		char *qt = sql_ident(plan->table);

		plan->q_table = str_printf("%s.%s", qs, qt);
		free(qs);
		free(qt);
	}
	plan->q_key = sql_ident(plan->key);
	{
		const char *p[2] = {plan->q_table, plan->key};

		plan->key_type = db_value(conn,
								  "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) "
								  "FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass "
								  "AND a.attname = $2 AND NOT a.attisdropped",
								  2, p);
		if (plan->key_type == NULL)
		{
			log_error("key column \"%s\" of plan \"%s\" does not exist in table %s", plan->key, plan->path,
					  plan->q_table);
			return false;
		}
		/* keyset batches and the backups' primary keys need one row per key value */
		if (!db_exists(conn,
					   "SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
					   "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = $1::regclass "
					   "AND a.attname = $2 AND a.attnotnull AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1 "
					   "AND i.indexprs IS NULL AND i.indpred IS NULL",
					   2, p))
		{
			log_error("key column \"%s\" of plan \"%s\" is not unique and NOT NULL in table %s", plan->key, plan->path,
					  plan->q_table);
			log_hint("name the table's primary key (or a NOT NULL column with a unique index) as \"key\"");
			return false;
		}
	}
	/* what each operation checks once connected (add_column: its type is one the database knows) */
	for (int i = 0; i < plan->n_ops && ok; i++)
		if (plan->ops[i].kind->bind)
			ok = plan->ops[i].kind->bind(&plan->ops[i], plan);
	return ok;
}
