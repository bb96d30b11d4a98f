/*
 * plan_read.h: the pieces of plan_load() an operation's reader uses
 * (operation.h): each logs the first problem with the plan's file and the
 * JSON path, and marks the plan refused; later problems are not reported.
 */
#ifndef PHASEMIG_PLAN_READ_H
#define PHASEMIG_PLAN_READ_H

#include <stdbool.h>

#include <jansson.h>

#define PLAN_MAX_IDENT 63 /* NAMEDATALEN - 1 */

typedef struct PlanReader
{
	const char *path;
	const char *plan_name; /* NULL until read */
	bool ok;
} PlanReader;

void plan_read_fail(PlanReader *r, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A non-empty string (malloc'd), or NULL: missing (refused when required) or not a string. */
char *plan_read_string(PlanReader *r, json_t *obj, const char *where, const char *key, bool required);
/* The same, at most PLAN_MAX_IDENT bytes: a name PostgreSQL keeps whole. */
char *plan_read_ident(PlanReader *r, json_t *obj, const char *where, const char *key, bool required);
/* Refuse a key of OBJ (a nested object) that is not in ALLOWED (NULL-terminated). */
void plan_read_check_keys(PlanReader *r, json_t *obj, const char *where, const char *const *allowed);
bool plan_read_bool(PlanReader *r, json_t *obj, const char *where, const char *key, bool dflt);

#endif
