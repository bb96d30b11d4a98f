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
#include "core/log.h"
#include "core/strbuf.h"

#define MAX_IDENT 63			/* NAMEDATALEN - 1 */

typedef struct Reader
{
	const char *path;
	bool ok;
} Reader;

static void
fail(Reader *r, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
fail(Reader *r, const char *where, const char *fmt, ...)
{
	va_list ap;
	StrBuf sb;

	if (!r->ok)
		return;					/* report the first problem only */
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

/* Refuse keys of OBJ that are not in ALLOWED (NULL-terminated). */
static void
check_keys(Reader *r, json_t *obj, const char *where, const char *const *allowed)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj, key, value)
	{
		bool known = false;

		(void) value;
		for (int i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				known = true;
		if (!known)
			fail(r, where, "unknown key \"%s\"", key);
	}
}

static char *
get_string(Reader *r, json_t *obj, const char *where, const char *key, bool required)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
	{
		if (required)
			fail(r, where, "missing key \"%s\"", key);
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
	{
		fail(r, where, "\"%s\" must be a non-empty string", key);
		return NULL;
	}
	return xstrdup(json_string_value(v));
}

static char *
get_ident(Reader *r, json_t *obj, const char *where, const char *key, bool required)
{
	char *s = get_string(r, obj, where, key, required);

	if (s && strlen(s) > MAX_IDENT)
		fail(r, where, "\"%s\" is longer than %d bytes, PostgreSQL would truncate it", key, MAX_IDENT);
	return s;
}

static bool
get_bool(Reader *r, json_t *obj, const char *where, const char *key, bool dflt)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return dflt;
	if (!json_is_boolean(v))
		fail(r, where, "\"%s\" must be true or false", key);
	return json_is_true(v);
}

static int
get_int(Reader *r, json_t *obj, const char *where, const char *key, int dflt, int min, int max)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (v == NULL)
		return dflt;
	if (!json_is_integer(v) || (n = json_integer_value(v)) < min || n > max)
	{
		fail(r, where, "\"%s\" must be an integer from %d to %d", key, min, max);
		return dflt;
	}
	return (int) n;
}

static const char *const firebase_fields[] = {
	"localId", "email", "emailVerified", "displayName", "photoUrl",
	"phoneNumber", "lastSignedInAt", "createdAt", "disabled", NULL
};

static void
read_backfill(Reader *r, Op *op, json_t *obj, const char *where)
{
	json_t *set = json_object_get(obj, "set");
	const char *column;
	json_t *field;

	op->match_column = get_ident(r, obj, where, "match_column", true);
	op->email_column = get_ident(r, obj, where, "email_column", false);
	if (!json_is_object(set) || json_object_size(set) == 0)
	{
		fail(r, where, "\"set\" must be an object of column: Firebase field");
		return;
	}
	/* n_set counts the pairs filled so far, so plan_free frees them on every path */
	op->set = xcalloc(json_object_size(set), sizeof(FieldMap));
	json_object_foreach(set, column, field)
	{
		FieldMap *fm = &op->set[op->n_set];
		bool known = false;

		if (!json_is_string(field))
		{
			fail(r, where, "set.\"%s\" must be the name of a Firebase field", column);
			return;
		}
		for (int k = 0; firebase_fields[k]; k++)
			if (strcmp(json_string_value(field), firebase_fields[k]) == 0)
				known = true;
		if (!known)
			fail(r, where, "set.\"%s\": unknown Firebase field \"%s\"", column, json_string_value(field));
		if (strlen(column) > MAX_IDENT)
			fail(r, where, "set: column name longer than %d bytes", MAX_IDENT);
		fm->column = xstrdup(column);
		fm->field = xstrdup(json_string_value(field));
		if (strcmp(fm->field, "localId") == 0)
			op->uid_column = fm->column;
		op->n_set++;
	}
	if (op->uid_column == NULL)
		fail(r, where, "\"set\" must name the column that receives \"localId\"");
	op->column = xstrdup(op->uid_column);
}

static void
read_op(Reader *r, Op *op, json_t *obj, int index, const char *plan_name)
{
	char where[64];
	char *kind;

	snprintf(where, sizeof where, "operations[%d]", index);
	op->index = index;
	if (!json_is_object(obj))
	{
		fail(r, where, "must be an object");
		return;
	}
	kind = get_string(r, obj, where, "op", true);
	if (kind == NULL)
		return;
	if (strcmp(kind, "add_column") == 0)
	{
		static const char *const keys[] = {"op", "column", "type", "comment", NULL};

		op->kind = OP_ADD_COLUMN;
		check_keys(r, obj, where, keys);
		op->column = get_ident(r, obj, where, "column", true);
		op->type = get_string(r, obj, where, "type", true);
		if (op->type && strpbrk(op->type, ";'\"\\"))
			fail(r, where, "\"type\" must be a type name such as varchar(128)");
	}
	else if (strcmp(kind, "create_index") == 0)
	{
		static const char *const keys[] = {"op", "name", "columns", "unique", "comment", NULL};
		json_t *cols = json_object_get(obj, "columns");
		size_t i;
		json_t *c;

		op->kind = OP_CREATE_INDEX;
		check_keys(r, obj, where, keys);
		op->name = get_ident(r, obj, where, "name", true);
		op->unique = get_bool(r, obj, where, "unique", false);
		if (!json_is_array(cols) || json_array_size(cols) == 0)
			fail(r, where, "\"columns\" must be a non-empty array of column names");
		else
		{
			op->columns = xcalloc(json_array_size(cols), sizeof(char *));
			json_array_foreach(cols, i, c)
			{
				if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > MAX_IDENT)
					fail(r, where, "\"columns\"[%zu] must be a column name", i);
				else
					op->columns[op->n_columns++] = xstrdup(json_string_value(c));
			}
			if (op->n_columns > 0)
				op->column = xstrdup(op->columns[0]);
		}
	}
	else if (strcmp(kind, "backfill_from_mapping") == 0)
	{
		static const char *const keys[] = {"op", "match_column", "email_column", "set", "comment", NULL};

		op->kind = OP_BACKFILL_FROM_MAPPING;
		check_keys(r, obj, where, keys);
		read_backfill(r, op, obj, where);
	}
	else if (strcmp(kind, "set_not_null") == 0)
	{
		static const char *const keys[] = {"op", "column", "reject_empty", "comment", NULL};

		op->kind = OP_SET_NOT_NULL;
		check_keys(r, obj, where, keys);
		op->column = get_ident(r, obj, where, "column", true);
		op->reject_empty = get_bool(r, obj, where, "reject_empty", false);
	}
	else if (strcmp(kind, "add_unique") == 0)
	{
		static const char *const keys[] = {"op", "column", "name", "comment", NULL};

		op->kind = OP_ADD_UNIQUE;
		check_keys(r, obj, where, keys);
		op->column = get_ident(r, obj, where, "column", true);
		op->name = get_ident(r, obj, where, "name", true);
	}
	else if (strcmp(kind, "check_unique") == 0)
	{
		static const char *const keys[] = {"op", "column", "ignore_case", "comment", NULL};

		op->kind = OP_CHECK_UNIQUE;
		check_keys(r, obj, where, keys);
		op->column = get_ident(r, obj, where, "column", true);
		op->ignore_case = get_bool(r, obj, where, "ignore_case", false);
	}
	else if (strcmp(kind, "drop_column") == 0)
	{
		static const char *const keys[] = {"op", "column", "comment", NULL};

		op->kind = OP_DROP_COLUMN;
		check_keys(r, obj, where, keys);
		op->column = get_ident(r, obj, where, "column", true);
		if (op->column && plan_name && strlen(plan_name) + strlen(":drop:") + strlen(op->column) > MAX_IDENT)
			fail(r, where, "the backup table \"%s:drop:%s\" would be longer than %d bytes; use a shorter plan name",
				 plan_name, op->column, MAX_IDENT);
	}
	else if (strcmp(kind, "convert_to_uuid") == 0)
	{
		static const char *const keys[] = {"op", "column", "recreate_views", "comment", NULL};

		op->kind = OP_CONVERT_TO_UUID;
		check_keys(r, obj, where, keys);
		op->column = get_ident(r, obj, where, "column", true);
		op->recreate_views = get_bool(r, obj, where, "recreate_views", false);
		if (op->column && strlen(op->column) > MAX_IDENT - 7)
			fail(r, where, "\"column\" must leave room for the suffix \"_legacy\" (%d bytes at most)", MAX_IDENT - 7);
	}
	else
		fail(r, where, "unknown operation \"%s\"", kind);
	op->kind_name = kind;
	op->label = str_printf("%s %s", kind, op->name ? op->name : op->column ? op->column : "");
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
	static const char *const keys[] = {
		"name", "description", "schema", "table", "key", "settings", "operations", NULL
	};
	static const char *const setting_keys[] = {"lock_timeout_ms", "batch_size", "ddl_attempts", NULL};
	Reader r = {.path = path, .ok = true};
	json_error_t jerr;
	json_t *root;
	json_t *ops;
	json_t *settings;
	Plan *plan;

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
		fail(&r, "top level", "must be a JSON object");
		goto done;
	}
	check_keys(&r, root, "top level", keys);
	plan->name = get_string(&r, root, "top level", "name", true);
	if (plan->name && !valid_plan_name(plan->name))
		fail(&r, "name", "must be 1 to 40 characters of a-z, 0-9, '-' and '_'");
	plan->description = get_string(&r, root, "top level", "description", false);
	plan->schema = get_ident(&r, root, "top level", "schema", false);
	if (plan->schema == NULL)
		plan->schema = xstrdup("public");
	plan->table = get_ident(&r, root, "top level", "table", true);
	plan->key = get_ident(&r, root, "top level", "key", true);

	settings = json_object_get(root, "settings");
	plan->lock_timeout_ms = 1000;
	plan->batch_size = 1000;
	plan->ddl_attempts = 30;
	if (settings && !json_is_object(settings))
		fail(&r, "settings", "must be an object");
	else if (settings)
	{
		check_keys(&r, settings, "settings", setting_keys);
		plan->lock_timeout_ms = get_int(&r, settings, "settings", "lock_timeout_ms", 1000, 10, 600000);
		plan->batch_size = get_int(&r, settings, "settings", "batch_size", 1000, 1, 1000000);
		plan->ddl_attempts = get_int(&r, settings, "settings", "ddl_attempts", 30, 1, 1000);
	}

	ops = json_object_get(root, "operations");
	if (!json_is_array(ops) || json_array_size(ops) == 0)
		fail(&r, "top level", "\"operations\" must be a non-empty array");
	else
	{
		plan->n_ops = (int) json_array_size(ops);
		plan->ops = xcalloc((size_t) plan->n_ops, sizeof(Op));
		for (int i = 0; i < plan->n_ops && r.ok; i++)
			read_op(&r, &plan->ops[i], json_array_get(ops, (size_t) i), i, plan->name);
	}

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
		free(op->type);
		free(op->name);
		for (int k = 0; k < op->n_columns; k++)
			free(op->columns[k]);
		free(op->columns);
		free(op->match_column);
		free(op->email_column);
		for (int k = 0; k < op->n_set; k++)
		{
			free(op->set[k].column);
			free(op->set[k].field);
		}
		free(op->set);
		free((char *) op->kind_name);
	}
	free(plan->ops);
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
	return db_ident(plan->conn, name);
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

	if (strlen(name) > MAX_IDENT)
		log_fatal(EXIT_BAD_INPUT, "backup object name \"%s\" is longer than %d bytes; use a shorter plan name", name,
				  MAX_IDENT);
	q = db_ident(plan->conn, name);
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
				   "WHERE n.nspname = $1 AND c.relname = $2", 2, params);
	if (PQntuples(res) == 0 || strchr("rp", PQgetvalue(res, 0, 0)[0]) == NULL)
	{
		log_error("table \"%s.%s\" named by plan \"%s\" does not exist", plan->schema, plan->table, plan->path);
		PQclear(res);
		return false;
	}
	PQclear(res);
	{
		char *qs = db_ident(conn, plan->schema);
		char *qt = db_ident(conn, plan->table);

		plan->q_table = str_printf("%s.%s", qs, qt);
		free(qs);
		free(qt);
	}
	plan->q_key = db_ident(conn, plan->key);
	{
		const char *p[2] = {plan->q_table, plan->key};

		plan->key_type = db_value(conn,
								  "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) "
								  "FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass "
								  "AND a.attname = $2 AND NOT a.attisdropped", 2, p);
		if (plan->key_type == NULL)
		{
			log_error("key column \"%s\" of plan \"%s\" does not exist in table %s", plan->key, plan->path,
					  plan->q_table);
			return false;
		}
		/* keyset batches and the backups' primary keys need one row per key value */
		if (!db_exists(conn, "SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
					   "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = $1::regclass "
					   "AND a.attname = $2 AND a.attnotnull AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1 "
					   "AND i.indexprs IS NULL AND i.indpred IS NULL", 2, p))
		{
			log_error("key column \"%s\" of plan \"%s\" is not unique and NOT NULL in table %s", plan->key,
					  plan->path, plan->q_table);
			log_hint("name the table's primary key (or a NOT NULL column with a unique index) as \"key\"");
			return false;
		}
	}
	for (int i = 0; i < plan->n_ops && ok; i++)
	{
		const Op *op = &plan->ops[i];

		if (op->type)
		{
			const char *p[1] = {op->type};
			PGresult *tr = db_query_try(conn, "SELECT pg_catalog.to_regtype($1)", 1, p);

			if (!db_ok(tr) || PQgetisnull(tr, 0, 0))
			{
				log_error("invalid plan \"%s\": operations[%d]: \"%s\" is not a type known to the database",
						  plan->path, i, op->type);
				ok = false;
			}
			PQclear(tr);
		}
	}
	return ok;
}
