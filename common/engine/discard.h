/*
 * discard.h: what a rollback would throw away of the application's writes.
 * Each operation adds, per column its rollback drops or empties, the
 * condition under which a row's value there is the application's, not
 * phasemig's (operation.h, OpHandlers.discards); the counts come from one
 * scan per table, before the rollback changes anything.
 */
#ifndef PHASEMIG_DISCARD_H
#define PHASEMIG_DISCARD_H

#include <jansson.h>

#include "engine/cli.h"
#include "engine/mlog.h"

typedef struct DiscardItem
{
	char *table;  /* quoted, schema-qualified */
	char *column; /* as named in messages: "public.users.uid" */
	char *cond;   /* SQL over the table's alias t: this row's value is the application's */
	char *join;   /* a LEFT JOIN COND reads, or NULL; items of a table share an identical one */
	long long count;
} DiscardItem;

typedef struct Discards
{
	DiscardItem *items;
	int n;
} Discards;

/*
 * Add a column: TABLE quoted, TABLE_NAME and COLUMN as shown, COND and JOIN
 * (NULL: none) stolen (malloc'd).
 */
void discards_add(Discards *d, const char *table, const char *table_name, const char *column, char *cond, char *join);
/* Count every item, one query per table (aggregates with FILTER, each distinct join once). */
void discards_count(Run *run, Discards *d);
long long discards_total(const Discards *d);
/* {"column": count, ...} of the items with a count (a new reference). */
json_t *discards_json(const Discards *d);
void discards_free(Discards *d);

/*
 * Before a rollback changes anything: count, per column, the values it would
 * discard that the application wrote (each operation's discards handler says
 * which those are).  None: EXIT_DONE.  Some: each logged and recorded on the
 * phase's migration_log row with the decision; EXIT_DONE only with
 * --discard-application-writes or a yes typed on the terminal; without a
 * terminal EXIT_REFUSED, a no EXIT_BAD_INPUT (declined).  A dry run prints
 * the counts and ends as a run without the option off a terminal would (3).
 */
int discards_confirm(Run *run, const Options *opts);

#endif
