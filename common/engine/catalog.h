/*
 * catalog.h: questions asked of pg_catalog before any DDL, so every step can
 * be re-run: does the column exist and with what type, is the index valid,
 * which views, rules and foreign keys depend on a column.
 */
#ifndef PHASEMIG_CATALOG_H
#define PHASEMIG_CATALOG_H

#include <stdbool.h>

#include "engine/plan.h"

typedef enum
{
	INDEX_MISSING,
	INDEX_INVALID,
	INDEX_VALID
} IndexState;

/* format_type() of the column of the plan's table, or NULL if it has none (caller frees). */
char *catalog_column_type(const Plan *plan, const char *column);
bool catalog_column_exists(const Plan *plan, const char *column);
/* Whether two type names are the same type, typmods aside (varchar(32) is varchar(255)). */
bool catalog_same_type(const Plan *plan, const char *existing, const char *wanted);
bool catalog_column_not_null(const Plan *plan, const char *column);
/* The same questions of any table QTABLE (quoted, qualified): a uuid job's referencing tables. */
bool catalog_column_not_null_on(PGconn *conn, const char *qtable, const char *column);
bool catalog_constraint_exists_on(PGconn *conn, const char *qtable, const char *name);
/* State of index NAME of table QTABLE (in the table's schema). */
IndexState catalog_index_state_on(PGconn *conn, const char *qtable, const char *name);
/*
 * TYPE as the server names it (regtype's output, typmod dropped); NULL when it
 * is no type (caller frees).  A query that fails otherwise exits 1 (db_query_answer).
 */
char *catalog_canonical_type(PGconn *conn, const char *type);
/* State of index NAME in the plan's schema. */
IndexState catalog_index_state(const Plan *plan, const char *name);
bool catalog_constraint_exists(const Plan *plan, const char *name);
bool catalog_trigger_exists(const Plan *plan, const char *name);
/*
 * Objects that depend on the column and would be dropped with it or break:
 * views and rules, foreign keys of other tables, policies.  One line per
 * object ("view public.v"), comma separated; NULL when there are none.
 * Views in the schemas of EXCEPT_SCHEMAS (a JSON array of names, or NULL)
 * are left out: the plan's own versioned views (ops/versions.h).
 */
char *catalog_column_dependents(const Plan *plan, const char *column, const char *except_schemas);
/*
 * Tables the plan alters that the session's role cannot alter (it neither owns
 * them nor is a member of their owner's role): the plan's table and, with
 * with_children, every table with a foreign key to it.  "public.t (owner x)",
 * comma separated; NULL when there are none (caller frees).
 */
char *catalog_tables_not_owned(const Plan *plan, bool with_children);
/* The same for any table (a quoted name); include_keys false leaves out foreign and primary keys. */
char *catalog_dependents(PGconn *conn, const char *qtable, const char *column, bool include_keys,
						 const char *except_schemas);

#endif
