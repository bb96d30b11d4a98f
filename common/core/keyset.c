/*
 * keyset.c: the batch statement of keyset.h, written in one place.
 */
#include "core/keyset.h"

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
			  "), %s SELECT (SELECT count(*) FROM b) AS scanned, "
			  "(SELECT key::text FROM b ORDER BY key DESC LIMIT 1) AS last_key, (SELECT count(*) FROM %s) AS changed",
			  k->steps, k->changed);
	return sb.data;
}
