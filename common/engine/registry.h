/*
 * registry.h: migration_backup.phasemig_objects, the registry of what
 * phasemig created (columns, indexes, triggers, backup tables, a dropped
 * column's definition, a uuid job's targets): one row per (plan, kind, name)
 * with JSON detail.  A rollback removes what is registered and nothing
 * else; an object is registered in the same transaction that creates it.
 */
#ifndef PHASEMIG_REGISTRY_H
#define PHASEMIG_REGISTRY_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "engine/plan.h"

/* The INSERT registering an object, for the caller's transaction of DDL (malloc'd). */
char *registry_add_sql(const Plan *plan, int phase, const char *kind, const char *name);
/* The same with DETAIL, JSON text, in the detail column. */
char *registry_add_detail_sql(const Plan *plan, int phase, const char *kind, const char *name, const char *detail);
/* Register KIND NAME now with DETAIL (JSON text), replacing the detail of one already there. */
void registry_set(PGconn *conn, const Plan *plan, int phase, const char *kind, const char *name, const char *detail);
bool registry_has(PGconn *conn, const Plan *plan, const char *kind, const char *name);
/* Its detail (JSON text, malloc'd), or NULL when it is not registered. */
char *registry_detail(PGconn *conn, const Plan *plan, const char *kind, const char *name);
/*
 * Another plan that registered an object of KIND named NAME on table QTABLE
 * (or with no table in its detail), the oldest first; NULL when none (malloc'd).
 */
char *registry_other_plan(PGconn *conn, const Plan *plan, const char *kind, const char *name, const char *qtable);
/* The details of the objects of KIND of every plan but PLAN, as a JSON array (malloc'd; "[]" when none). */
char *registry_others_of_kind(PGconn *conn, const Plan *plan, const char *kind);
/* The names of the objects of KIND of every plan, as a JSON array (malloc'd; "[]" when none). */
char *registry_names_of_kind(PGconn *conn, const char *kind);
void registry_remove(PGconn *conn, const Plan *plan, const char *kind, const char *name);
/* The DELETE of the objects of KINDS (NULL-terminated) named NAME, for a transaction of DDL (malloc'd). */
char *registry_remove_sql(const Plan *plan, const char *const *kinds, const char *name);
/* Remove every object of KINDS (NULL-terminated), whatever its name. */
void registry_remove_kinds(PGconn *conn, const Plan *plan, const char *const *kinds);

#endif
