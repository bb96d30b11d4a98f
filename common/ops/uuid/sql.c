/*
 * sql.c: the pieces of SQL convert_to_uuid's phases share, so that the
 * triggers, the fill, the checks and the rollbacks say the same thing the
 * same way: the uuid a text key stands for, a key that stands for none, a
 * child's parent, and the keys that would be one uuid.
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>

#include "core/strbuf.h"

/* "<alias>.<qcol>", or QCOL alone when ALIAS is NULL. */
static void
uuid_append_column(StrBuf *sb, const char *alias, const char *qcol)
{
	if (alias)
		sb_printf(sb, "%s.", alias);
	sb_append(sb, qcol);
}

void
uuid_append_choices(StrBuf *sb, const UuidJob *job, const char *alias, const char *qcol)
{
	sb_printf(sb, "(SELECT m.new FROM %s m WHERE m.old = ", job->map);
	uuid_append_column(sb, alias, qcol);
	sb_printf(sb, "::text), %s(", job->try_fn);
	uuid_append_column(sb, alias, qcol);
	sb_append(sb, "::text)");
}

char *
uuid_value_sql(const UuidJob *job, const char *alias, const char *qcol)
{
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "coalesce(");
	uuid_append_choices(&sb, job, alias, qcol);
	sb_append(&sb, ")");
	return sb_steal(&sb);
}

char *
uuid_invalid_sql(const UuidJob *job, const char *alias, const char *qcol)
{
	StrBuf sb;

	sb_init(&sb);
	uuid_append_column(&sb, alias, qcol);
	sb_printf(&sb, " IS NOT NULL AND %s(", job->try_fn);
	uuid_append_column(&sb, alias, qcol);
	sb_printf(&sb, "::text) IS NULL AND NOT EXISTS (SELECT 1 FROM %s m WHERE m.old = ", job->map);
	uuid_append_column(&sb, alias, qcol);
	sb_append(&sb, "::text)");
	return sb_steal(&sb);
}

/*
 * Text equal to a uuid's canonical text is that uuid (the try function's
 * pattern accepts it and the cast gives it back): only the other rows are
 * matched against the pattern, about 9 us a row, 1.7 s of a 100,000-row
 * check that called it twice a row.
 */
char *
uuid_text_as_uuid_sql(const UuidJob *job, const char *alias, const char *qcol, const char *qshadow)
{
	StrBuf sb;

	sb_init(&sb);
	sb_append(&sb, "CASE WHEN ");
	uuid_append_column(&sb, alias, qcol);
	sb_append(&sb, "::text = ");
	uuid_append_column(&sb, alias, qshadow);
	sb_append(&sb, "::text THEN ");
	uuid_append_column(&sb, alias, qshadow);
	sb_printf(&sb, " ELSE %s(", job->try_fn);
	uuid_append_column(&sb, alias, qcol);
	sb_append(&sb, "::text) END");
	return sb_steal(&sb);
}

void
uuid_append_parent(StrBuf *sb, const UuidJob *job, const char *parent_column, const char *alias, const char *qcol)
{
	const UuidTarget *key = &job->t[0];

	if (parent_column)
		sb_printf(sb, "(SELECT p.%s", parent_column);
	else
		sb_append(sb, "(SELECT 1");
	sb_printf(sb, " FROM %s p WHERE p.%s = ", key->table, key->q_col);
	uuid_append_column(sb, alias, qcol);
	sb_append(sb, ")");
}

long long
uuid_find_equal_keys(UuidJob *job, Findings *f, const char *check, const char *uuid_expr)
{
	const UuidTarget *k = &job->t[0];
	StrBuf sql;
	long long n;

	sb_init(&sql);
	sb_printf(&sql, "WITH d AS (SELECT %s AS u, ", uuid_expr);
	sb_printf(&sql, "string_agg(quote_literal(%s), ' and ' ORDER BY %s) AS keys ", k->q_col, k->q_col);
	sb_printf(&sql, "FROM %s WHERE %s IS NOT NULL GROUP BY 1 HAVING count(*) > 1) ", k->table, uuid_expr);
	sb_printf(&sql,
			  "SELECT (SELECT count(*) FROM d), (SELECT string_agg(keys, " FINDINGS_SEP ") FROM "
			  "(SELECT keys FROM d LIMIT %d) s)",
			  SAMPLE_LIMIT);
	n = findings_query(job->run, f, check, k->regname, sql.data);
	sb_free(&sql);
	return n;
}
