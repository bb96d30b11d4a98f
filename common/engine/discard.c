/*
 * discard.c: counting what a rollback would discard of the application's
 * writes: the items of each table in one aggregate query (one scan).
 */
#include "engine/discard.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/strbuf.h"

void
discards_add(Discards *d, const char *table, const char *table_name, const char *column, char *cond, char *join)
{
	d->items = xrealloc(d->items, (size_t) (d->n + 1) * sizeof *d->items);
	d->items[d->n++] = (DiscardItem){
		.table = xstrdup(table), .column = str_printf("%s.%s", table_name, column), .cond = cond, .join = join};
}

/* Whether item J of D is of item I's table and its join is not among the items before it there. */
static bool
first_join(const Discards *d, int i, int j)
{
	if (d->items[j].join == NULL || strcmp(d->items[j].table, d->items[i].table) != 0)
		return false;
	for (int k = i; k < j; k++)
		if (d->items[k].join && strcmp(d->items[k].table, d->items[i].table) == 0
			&& strcmp(d->items[k].join, d->items[j].join) == 0)
			return false;
	return true;
}

void
discards_count(Run *run, Discards *d)
{
	bool *done = xcalloc((size_t) d->n + 1, sizeof *done);

	for (int i = 0; i < d->n; i++)
	{
		StrBuf sql;
		PGresult *res;
		int k = 0;

		if (done[i])
			continue;
		sb_init(&sql);
		sb_append(&sql, "SELECT ");
		for (int j = i; j < d->n; j++)
			if (!done[j] && strcmp(d->items[j].table, d->items[i].table) == 0)
				sb_printf(&sql, "%scount(*) FILTER (WHERE %s)", k++ ? ", " : "", d->items[j].cond);
		sb_printf(&sql, " FROM %s t", d->items[i].table);
		for (int j = i; j < d->n; j++)
			if (!done[j] && first_join(d, i, j))
				sb_printf(&sql, " %s", d->items[j].join);
		res = db_query(run->conn, sql.data, 0, NULL);
		k = 0;
		for (int j = i; j < d->n; j++)
			if (!done[j] && strcmp(d->items[j].table, d->items[i].table) == 0)
			{
				d->items[j].count = atoll(PQgetvalue(res, 0, k++));
				done[j] = true;
			}
		PQclear(res);
		sb_free(&sql);
	}
	free(done);
}

long long
discards_total(const Discards *d)
{
	long long total = 0;

	for (int i = 0; i < d->n; i++)
		total += d->items[i].count;
	return total;
}

json_t *
discards_json(const Discards *d)
{
	json_t *obj = json_object();

	for (int i = 0; i < d->n; i++)
		if (d->items[i].count > 0)
			json_object_set_new(obj, d->items[i].column, json_integer(d->items[i].count));
	return obj;
}

void
discards_free(Discards *d)
{
	for (int i = 0; i < d->n; i++)
	{
		free(d->items[i].table);
		free(d->items[i].column);
		free(d->items[i].cond);
		free(d->items[i].join);
	}
	free(d->items);
	d->items = NULL;
	d->n = 0;
}
