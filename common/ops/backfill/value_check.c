/*
 * value_check.c: finds staged export values that would not fit their target
 * column (too long for a varchar(n), not castable to its type) or that the
 * export gave with the wrong JSON type (mapping.c marks those in "invalid");
 * with --skip-invalid-values, stages them as NULL and lists them instead.
 */
#include "ops/backfill/value_check.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/backfill.h"

/* What the check needs to know about one column. */
typedef struct ColumnType
{
	char *type;     /* format_type() */
	long max_chars; /* varchar(n) and char(n): n; otherwise -1 */
} ColumnType;

/* The type of COLUMN of relation QREL (a quoted name); false when it has none. */
static bool
column_type(PGconn *conn, const char *qrel, const char *column, ColumnType *ct)
{
	const char *params[2] = {qrel, column};
	PGresult *res = db_query(conn,
							 "SELECT pg_catalog.format_type(atttypid, atttypmod) AS type, "
							 "CASE WHEN atttypid IN ('pg_catalog.varchar'::pg_catalog.regtype, "
							 "'pg_catalog.bpchar'::pg_catalog.regtype) AND atttypmod >= 4 THEN atttypmod - 4 END "
							 "AS max_chars "
							 "FROM pg_catalog.pg_attribute WHERE attrelid = $1::pg_catalog.regclass AND attname = $2 "
							 "AND attnum > 0 AND NOT attisdropped",
							 2, params);
	bool found = PQntuples(res) == 1;

	if (found)
	{
		const char *max_chars = db_field(res, 0, "max_chars");

		ct->type = xstrdup(db_field(res, 0, "type"));
		ct->max_chars = max_chars ? atol(max_chars) : -1;
	}
	PQclear(res);
	return found;
}

/* One field of one plan's "set" (or the email the match falls back to). */
typedef struct CheckedField
{
	const IdProvider *prov;
	const char *field;   /* the export's field */
	const char *column;  /* the table's column */
	const char *scol;    /* its staging column, NULL if none */
	const char *subject; /* "field "x" (column "y")" for messages */
} CheckedField;

/*
 * With --skip-invalid-values: the users matching COND listed in
 * pg_temp.phasemig_skipped (PROBLEM is SQL text) and the field staged as NULL,
 * so that neither the batches nor the sync trigger write it.
 */
static void
skip_values(Run *run, const CheckedField *t, const char *cond, const char *problem)
{
	char *list = str_printf("INSERT INTO pg_temp.phasemig_skipped SELECT %s, element, $1::text, $2::text, "
							"%s, %s FROM pg_temp.phasemig_staging WHERE %s",
							t->prov->target_id, problem, t->prov->source_id, cond);

	db_execp(run->conn, list, 2, (const char *[]){t->field, t->column});
	if (t->scol)
	{
		char *clear = str_printf("UPDATE pg_temp.phasemig_staging SET %s = NULL WHERE %s", t->scol, cond);

		db_exec(run->conn, clear);
		free(clear);
	}
	free(list);
}

/*
 * Count and sample the staged users matching COND; DETAIL is SQL text added
 * to each sample.  SKIP: list them and stage the field as NULL, with PROBLEM
 * (SQL text) as the reason.
 */
static long long
staged_where(Run *run, Findings *f, const CheckedField *t, const char *check, const char *cond, const char *detail,
			 const char *problem, bool skip)
{
	/* how a sample names its user: localId 'abc' (element 12) ... */
	char *user = str_printf("format('%s %%s (element %%s)', quote_literal(%s), coalesce(element::text, 'none'))",
							t->prov->uid_field, t->prov->target_id);
	char *sql = str_printf("SELECT (SELECT count(*) FROM pg_temp.phasemig_staging WHERE %s), "
						   "(SELECT string_agg(s, " FINDINGS_SEP ") FROM (SELECT %s || ': ' || %s AS s "
						   "FROM pg_temp.phasemig_staging WHERE %s ORDER BY element, %s LIMIT %d) x)",
						   cond, user, detail, cond, t->prov->target_id, SAMPLE_LIMIT);
	int from = f->n;
	long long n = findings_query(run, f, check, t->subject, sql);

	findings_hint(f, from,
				  skip ? "these values are left empty and listed in the logs directory's RUN-ID-invalid-values.csv"
					   : "correct the export, or run phase2 apply --skip-invalid-values to leave those values empty "
						 "(listed in RUN-ID-invalid-values.csv); nothing was written");
	if (skip && n > 0)
		skip_values(run, t, cond, problem);
	free(user);
	free(sql);
	return n;
}

/* The export gave the field with the wrong JSON type or out of range. */
static long long
check_json_type(Run *run, Findings *f, const CheckedField *t, bool skip)
{
	char *lit = sql_literal(t->field);
	char *cond = str_printf("invalid IS NOT NULL AND invalid ? %s", lit);
	char *detail = str_printf("(invalid ->> %s)", lit);
	/* such a value is staged as NULL already: skipping only lists it */
	CheckedField listed = {.prov = t->prov, .field = t->field, .column = t->column, .subject = t->subject};
	long long n = staged_where(run, f, &listed, "invalid value in the export", cond, detail, detail, skip);

	free(cond);
	free(detail);
	free(lit);
	return n;
}

/*
 * A cast test for types without a cheaper check: true when V, read as
 * FROM_TYPE, converts to TO_TYPE the way the batches convert it.
 */
static void
create_cast_test(PGconn *conn)
{
	db_exec(conn,
			"CREATE OR REPLACE FUNCTION pg_temp.phasemig_casts(v text, from_type text, to_type text) "
			"RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN "
			"EXECUTE format('SELECT ($1::%s)::%s', from_type, to_type) USING v; RETURN true; "
			"EXCEPTION WHEN others THEN RETURN false; END $f$");
}

/* The staged values of the field (of type STAGED) must fit the column's TARGET type. */
static long long
check_fits(Run *run, Findings *f, const CheckedField *t, const ColumnType *staged, const ColumnType *target, bool skip)
{
	const char *scol = t->scol;
	char *check, *cond, *detail, *problem;
	long long n;

	if (target->max_chars >= 0)
	{
		check = str_printf("value longer than %s", target->type);
		cond = str_printf("length(%s::text) > %ld", scol, target->max_chars);
		detail = str_printf("length(%s::text) || ' characters'", scol);
	}
	else if (strcmp(target->type, staged->type) != 0 && strcmp(target->type, "text") != 0)
	{
		char *from = sql_literal(staged->type);
		char *to = sql_literal(target->type);

		create_cast_test(run->conn);
		check = str_printf("value not valid for %s", target->type);
		cond = str_printf("%s IS NOT NULL AND NOT pg_temp.phasemig_casts(%s::text, %s, %s)", scol, scol, from, to);
		detail = str_printf("quote_literal(left(%s::text, 40))", scol);
		free(from);
		free(to);
	}
	else
		return 0; /* the same type, or text: every value fits */
	problem = sql_literal(check);
	n = staged_where(run, f, t, check, cond, detail, problem, skip);
	free(problem);
	free(check);
	free(cond);
	free(detail);
	return n;
}

long long
value_check_staging(Run *run, const Op *op, Findings *f, bool skip)
{
	const Plan *p = run->plan;
	const BackfillSpec *spec = bf_spec(op);
	const IdProvider *prov = spec->provider;
	long long total = 0;

	if (skip)
	{
		/*
		 * the list's first column is the export's user id, as the export names
		 * it ("localId"); the last the source's (a user the import files would
		 * list has no target id yet)
		 */
		char *create = str_printf("CREATE TEMP TABLE IF NOT EXISTS phasemig_skipped (\"%s\" text, element bigint, "
								  "field text, \"column\" text, problem text, %s text)",
								  prov->uid_field, prov->source_id);

		db_exec(run->conn, create);
		db_exec(run->conn, "TRUNCATE pg_temp.phasemig_skipped");
		free(create);
	}
	if (spec->email_column)
	{
		char *subject = str_printf("field \"%s\" (column \"%s\")", prov->email_field, spec->email_column);
		CheckedField t = {.prov = prov, .field = prov->email_field, .column = spec->email_column, .subject = subject};

		total += check_json_type(run, f, &t, skip);
		free(subject);
	}
	for (int i = 0; i < spec->n_set; i++)
	{
		char *subject = str_printf("field \"%s\" (column \"%s\")", spec->set[i].field, spec->set[i].column);
		CheckedField t = {.prov = prov,
						  .field = spec->set[i].field,
						  .column = spec->set[i].column,
						  .scol = prov->field_column(spec->set[i].field),
						  .subject = subject};
		ColumnType staged, target;

		total += check_json_type(run, f, &t, skip);
		if (t.scol && column_type(run->conn, "pg_temp.phasemig_staging", t.scol, &staged))
		{
			if (column_type(run->conn, p->q_table, t.column, &target))
			{
				total += check_fits(run, f, &t, &staged, &target, skip);
				free(target.type);
			}
			free(staged.type);
		}
		free(subject);
	}
	return total;
}
