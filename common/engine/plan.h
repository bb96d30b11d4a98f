/*
 * plan.h: a migration plan read from JSON: the table, its key and the ordered
 * operations.  Unknown keys, missing keys and wrong types are refused.
 */
#ifndef PHASEMIG_PLAN_H
#define PHASEMIG_PLAN_H

#include <libpq-fe.h>
#include <stdbool.h>

struct OpType; /* operation.h */

/* One "column": "Firebase field" pair of a backfill_from_mapping. */
typedef struct FieldMap
{
	char *column;
	char *field;
} FieldMap;

/*
 * A column of convert_to_uuid's "also_convert" or "not_references": one that
 * holds the key's values without a foreign key.
 */
typedef struct ColumnRef
{
	char *schema; /* NULL: the plan's schema */
	char *table;
	char *column;
	bool add_foreign_key; /* also_convert: a foreign key to the key added at the swap */
	char *on_delete;      /* its actions, upper case ("NO ACTION" by default) */
	char *on_update;
} ColumnRef;

typedef struct Op
{
	const struct OpType *kind; /* what it is: its name, reader and handlers (operation.h) */
	int index;                 /* position in the plan, from 0 */
	char *label;               /* "add_column firebase_uid": migration_log.operation */
	char *column;              /* the column the operation is about */
	char *type;                /* add_column */
	char *name;                /* create_index, add_unique: index / constraint name */
	char **columns;            /* create_index */
	int n_columns;
	bool unique;        /* create_index */
	bool ignore_case;   /* check_unique */
	bool reject_empty;  /* set_not_null: '' counts as missing too */
	char *match_column; /* backfill: the Clerk id column */
	char *email_column; /* backfill: email fallback, may be NULL */
	FieldMap *set;      /* backfill: columns filled from the export */
	int n_set;
	const char *uid_column; /* backfill: the column set from localId */
	bool recreate_views;    /* convert_to_uuid: views on the columns are recreated around the swap */
	char *schemas[2];       /* versioned_views: the before and after schemas' names */

	/* convert_to_uuid: columns holding the key without a foreign key */
	ColumnRef *also_convert; /* convert_to_uuid: columns converted with the foreign keys */
	int n_also_convert;
	ColumnRef *not_references; /* convert_to_uuid: columns that look like references and are not */
	int n_not_references;
} Op;

/* One of the plan's "trusted_triggers": a trigger of another role's function, reviewed and allowed. */
typedef struct TrustedTrigger
{
	char *schema; /* defaults to the plan's schema */
	char *table;
	char *trigger;
} TrustedTrigger;

typedef struct Plan
{
	char *path;
	char *name;
	char *description;
	char *schema;
	char *table;
	char *key;
	int lock_timeout_ms;
	int batch_size;
	int ddl_attempts;
	Op *ops;
	int n_ops;
	TrustedTrigger *trusted_triggers;
	int n_trusted_triggers;

	/* filled by plan_bind() */
	PGconn *conn;
	char *q_table; /* "schema"."table" */
	char *q_key;
	char *key_type; /* format_type() of the key column */
} Plan;

/*
 * Read and validate a plan.  Returns NULL after logging one clear message
 * (file, position, key) when the file is missing, malformed or not a plan.
 */
Plan *plan_load(const char *path);
void plan_free(Plan *plan);
/*
 * The tables of every operation's also_convert, which it writes and alters
 * like the tables whose foreign keys point at the key: JSON text
 * [[schema, table], ...] (malloc'd).
 */
char *plan_also_convert_tables(const Plan *plan);
/* Free N column references and the array. */
void plan_free_column_refs(ColumnRef *refs, int n);

/*
 * Check the plan against the database (table and key exist, types parse) and
 * fill the quoted names.  Logs and returns false when they do not match.
 */
bool plan_bind(Plan *plan, PGconn *conn);

/* Name of a phasemig-owned object for this plan: "<plan>:<what>", quoted. */
char *plan_backup_table(const Plan *plan, const char *what);
char *plan_object_name(const Plan *plan, const char *what);

/* NAME quoted as an identifier (sql_ident, core/strbuf.h: the one way SQL is quoted); caller frees. */
char *plan_ident(const Plan *plan, const char *name);

#endif
