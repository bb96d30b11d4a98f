/*
 * keyset.c: the batch statement of keyset.h, written in one place, and the
 * step a caller adds to it (the batch loop's checkpoint).
 */
#include "core/keyset.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

/* "WHERE ..." for the batch's rows: after $2, up to the range's end, the filter. */
static void
append_where(StrBuf *sb, const KeysetBatch *k, bool first)
{
	const char *glue = " WHERE ";

	if (!first)
	{
		sb_printf(sb, "%st.%s > $2", glue, k->key);
		glue = " AND ";
	}
	if (k->upper)
	{
		sb_printf(sb, "%st.%s <= %s", glue, k->key, k->upper);
		glue = " AND ";
	}
	if (k->filter)
		sb_printf(sb, "%s(%s)", glue, k->filter);
}

char *
keyset_batch_sql(const KeysetBatch *k, bool first)
{
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "WITH b AS (");
	if (k->take)
		sb_printf(&sb, "DELETE FROM %s d WHERE d.%s IN (SELECT t.%s FROM %s t", k->table, k->key, k->key, k->table);
	else
		sb_printf(&sb, "SELECT t.%s AS key%s FROM %s t", k->key, k->columns ? k->columns : "", k->table);
	append_where(&sb, k, first);
	/* NOWAIT: a row the application holds fails the batch at once (engine/batch.c retries a smaller one) */
	sb_printf(&sb, " ORDER BY t.%s LIMIT $1%s", k->key, k->lock ? " FOR NO KEY UPDATE NOWAIT" : "");
	if (k->take)
		sb_append(&sb, ") RETURNING d.*");
	sb_printf(&sb,
			  "), %s, keyset_counts AS (SELECT (SELECT count(*) FROM b) AS scanned, "
			  "(SELECT key::text FROM b ORDER BY key DESC LIMIT 1) AS last_key, (SELECT count(*) FROM %s) AS changed)"
			  KEYSET_RESULT,
			  k->steps, k->changed);
	return sb.data;
}

char *
keyset_with_step(const char *sql, const char *step)
{
	size_t n = strlen(sql), tail = strlen(KEYSET_RESULT);
	StrBuf sb;

	/* only a statement of keyset_batch_sql's shape takes a step: anything else is a bug */
	if (n < tail || strcmp(sql + n - tail, KEYSET_RESULT) != 0)
		return NULL;
	sb_init(&sb);
	sb_printf(&sb, "%.*s, %s" KEYSET_RESULT, (int) (n - tail), sql, step);
	return sb.data;
}

void
keyset_range_sql(const KeysetBatch *k, const char *upper, char *sql[2])
{
	KeysetBatch ranged = *k;
	char *lit = upper ? sql_literal(upper) : NULL;

	ranged.upper = lit;
	sql[0] = keyset_batch_sql(&ranged, false);
	sql[1] = keyset_batch_sql(&ranged, true);
	free(lit);
}
