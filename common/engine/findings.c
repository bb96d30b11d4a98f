/*
 * findings.c: collects pre-flight problems with counts and sample keys, and
 * prints them the way an operator reads them at 2 a.m.
 */
#include "engine/findings.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

void
findings_init(Findings *f)
{
	f->items = NULL;
	f->n = f->cap = 0;
}

void
findings_free(Findings *f)
{
	for (int i = 0; i < f->n; i++)
	{
		free(f->items[i].check);
		free(f->items[i].subject);
		json_decref(f->items[i].samples);
		free(f->items[i].hint);
	}
	free(f->items);
	findings_init(f);
}

void
findings_add(Findings *f, const char *check, const char *subject, long long count, const char *samples)
{
	if (f->n == f->cap)
	{
		f->cap = f->cap ? f->cap * 2 : 8;
		f->items = xrealloc(f->items, (size_t) f->cap * sizeof(Finding));
	}
	f->items[f->n].check = xstrdup(check);
	f->items[f->n].subject = xstrdup(subject);
	f->items[f->n].count = count;
	f->items[f->n].samples = json_array();
	/* one sample per piece between FINDINGS_SEP's (0x1f): keys hold no unit separator */
	for (const char *p = samples; p && *p;)
	{
		size_t len = strcspn(p, "\x1f");

		json_array_append_new(f->items[f->n].samples, json_stringn(p, len));
		p += len;
		if (*p)
			p++;
	}
	f->items[f->n].hint = NULL;
	f->items[f->n].keys = false;
	f->n++;
}

void
findings_hint(Findings *f, int from, const char *hint)
{
	for (int i = from; i < f->n; i++)
		if (f->items[i].hint == NULL)
			f->items[i].hint = xstrdup(hint);
}

static long long
query(Run *run, Findings *f, const char *check, const char *subject, const char *sql, bool keys)
{
	PGresult *res = db_query(run->conn, sql, 0, NULL);
	long long count = 0;

	if (PQntuples(res) > 0)
	{
		count = atoll(PQgetvalue(res, 0, 0));
		if (count > 0)
		{
			findings_add(f, check, subject, count, PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
			f->items[f->n - 1].keys = keys;
		}
	}
	PQclear(res);
	return count;
}

long long
findings_query(Run *run, Findings *f, const char *check, const char *subject, const char *sql)
{
	return query(run, f, check, subject, sql, false);
}

long long
findings_query_keys(Run *run, Findings *f, const char *check, const char *subject, const char *sql)
{
	return query(run, f, check, subject, sql, true);
}

long long
findings_rows_where(Run *run, Findings *f, const char *check, const char *subject, const char *cond)
{
	const Plan *p = run->plan;
	char *sql = str_printf("SELECT (SELECT count(*) FROM %s WHERE %s), "
						   "(SELECT string_agg(k, " FINDINGS_SEP ") FROM "
						   "(SELECT %s::text AS k FROM %s WHERE %s ORDER BY %s LIMIT %d) s)",
						   p->q_table, cond, p->q_key, p->q_table, cond, p->q_key, SAMPLE_LIMIT);
	long long n = findings_query_keys(run, f, check, subject, sql);

	free(sql);
	return n;
}

void
findings_print(const Findings *f)
{
	for (int i = 0; i < f->n; i++)
	{
		const Finding *it = &f->items[i];

		log_error("check \"%s\" failed for %s: %lld found", it->check, it->subject, it->count);
		if (json_array_size(it->samples) > 0)
		{
			StrBuf sb;
			size_t k;
			json_t *v;

			sb_init(&sb);
			json_array_foreach(it->samples, k, v)
			{
				sb_append(&sb, k ? ", " : "");
				if (it->keys)
					sb_append_literal(&sb, json_string_value(v));
				else
					sb_append(&sb, json_string_value(v));
			}
			log_detail("samples (up to %d): %s", SAMPLE_LIMIT, sb.data);
			sb_free(&sb);
		}
		if (it->hint)
			log_hint("%s", it->hint);
	}
}

json_t *
findings_json(const Findings *f)
{
	json_t *arr = json_array();

	for (int i = 0; i < f->n; i++)
	{
		const Finding *it = &f->items[i];

		json_t *one = json_pack("{s:s, s:s, s:I, s:O}", "check", it->check, "subject", it->subject, "count",
								(json_int_t) it->count, "samples", it->samples);

		if (it->hint)
			json_object_set_new(one, "hint", json_string(it->hint));
		json_array_append_new(arr, one);
	}
	return arr;
}
