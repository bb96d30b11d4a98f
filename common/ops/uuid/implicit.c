/*
 * implicit.c: columns that hold the key's values without a foreign key
 * (convert_to_uuid's "references without a foreign key").  A text column
 * named after the key's table ("user_id", "userId", "owner_user_id" for
 * users.id) and with no foreign key is one when its values are found among
 * the keys: phase1 warns, and phase3's pre-flight refuses while one holds
 * values the conversion would leave pointing nowhere, until the plan lists
 * it in "also_convert" (a child without a constraint: discover.c records it)
 * or in "not_references".
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

/* Values of a column sampled by phase1 to tell whether they are keys. */
#define IMPLICIT_SAMPLE 1000

/*
 * The columns that look like references: a text type, a name that, in snake
 * case and lower case, matches $3, no foreign key, not the key itself ($1,
 * $2), in a schema of the application's, and not listed in the plan ($4: a
 * JSON array of {schema, table, column}).
 */
static const char *const candidates_sql =
	"SELECT c.oid::regclass::text AS rel, a.attname, quote_ident(a.attname) AS q_col "
	"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
	"WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
	" AND n.nspname NOT IN ('information_schema', 'migration_backup') AND n.nspname NOT LIKE 'pg\\_%' "
	" AND a.atttypid IN ('pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype, 'pg_catalog.bpchar'::regtype) "
	" AND lower(regexp_replace(a.attname, '([[:lower:][:digit:]])([[:upper:]])', '\\1_\\2', 'g')) ~ $3 "
	" AND NOT (c.oid = $1::regclass AND a.attname = $2) "
	" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.conrelid = c.oid "
	"  AND a.attnum = ANY (f.conkey)) "
	" AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements($4::jsonb) e "
	"  WHERE c.oid = pg_catalog.to_regclass(quote_ident(e->>'schema') || '.' || quote_ident(e->>'table')) "
	"  AND a.attname = e->>'column') "
	"ORDER BY 1, 2";

/* NAME in snake case and lower case ("OwnerUser" -> "owner_user"), regex characters escaped, into SB. */
static void
append_snake(StrBuf *sb, const char *name)
{
	for (const char *c = name; *c; c++)
	{
		bool upper = *c >= 'A' && *c <= 'Z';

		if (upper && c > name && ((c[-1] >= 'a' && c[-1] <= 'z') || (c[-1] >= '0' && c[-1] <= '9')))
			sb_append(sb, "_");
		if (upper)
			sb_printf(sb, "%c", *c - 'A' + 'a');
		else if ((unsigned char) *c < 0x80 && !(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '_')
			sb_printf(sb, "\\%c", *c);
		else
			sb_printf(sb, "%c", *c);
	}
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * The regular expression a column's snake-case name must match to refer to
 * TABLE's KEY: "(^|_)(users|user)_?id$" for users.id and "User"."id".  The
 * table's name is taken as it is, singular ("users" -> "user", "companies"
 * -> "company", "boxes" -> "box") and plural ("user" -> "users").  Malloc'd.
 */
char *
uuid_reference_pattern(const char *table, const char *key)
{
	StrBuf snake, sb;
	char *t;
	size_t n;

	sb_init(&snake);
	append_snake(&snake, table);
	t = snake.data;
	n = strlen(t);
	sb_init(&sb);
	sb_printf(&sb, "(^|_)(%s", t);
	if (ends_with(t, "ies") && n > 3)
		sb_printf(&sb, "|%.*sy", (int) (n - 3), t);
	else if ((ends_with(t, "ses") || ends_with(t, "xes") || ends_with(t, "ches") || ends_with(t, "shes")) && n > 3)
		sb_printf(&sb, "|%.*s|%.*s", (int) (n - 2), t, (int) (n - 1), t);
	else if (ends_with(t, "s") && !ends_with(t, "ss") && n > 1)
		sb_printf(&sb, "|%.*s", (int) (n - 1), t);
	else if (ends_with(t, "y") && n > 1)
		sb_printf(&sb, "|%.*sies|%ss", (int) (n - 1), t, t);
	else
		sb_printf(&sb, "|%ss", t);
	sb_append(&sb, ")_?");
	append_snake(&sb, key);
	sb_append(&sb, "$");
	sb_free(&snake);
	return sb_steal(&sb);
}

/* The plan's also_convert and not_references, as the JSON candidates_sql takes ($4). */
static char *
listed_json(const Run *run, const Op *op)
{
	const UuidSpec *spec = uuid_spec(op);
	json_t *list = json_array();
	const ColumnRef *refs[2] = {spec->also_convert, spec->not_references};
	const int n[2] = {spec->n_also_convert, spec->n_not_references};
	char *text;

	for (int l = 0; l < 2; l++)
		for (int i = 0; i < n[l]; i++)
			json_array_append_new(list,
								  json_pack("{s:s, s:s, s:s}", "schema",
											refs[l][i].schema ? refs[l][i].schema : run->plan->schema, "table",
											refs[l][i].table, "column", refs[l][i].column));
	text = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return text;
}

PGresult *
uuid_reference_candidates(Run *run, const Op *op)
{
	const Plan *p = run->plan;
	char *pattern = uuid_reference_pattern(p->table, op->column);
	char *listed = listed_json(run, op);
	const char *params[4] = {p->q_table, op->column, pattern, listed};
	PGresult *res = db_query(run->conn, candidates_sql, 4, params);

	free(pattern), free(listed);
	return res;
}

/*
 * Up to IMPLICIT_SAMPLE non-NULL values of row R of the candidates: how many
 * were read and how many are keys (in *sampled and *found).
 */
static void
sample_values(Run *run, const PGresult *cands, int r, long long *sampled, long long *found)
{
	const Plan *p = run->plan;
	const char *q_col = db_field(cands, r, "q_col");
	char *sql = str_printf("SELECT count(*) AS sampled, count(p.%s) AS found FROM (SELECT c.%s AS v FROM %s c "
						   "WHERE c.%s IS NOT NULL LIMIT %d) s LEFT JOIN %s p ON p.%s = s.v",
						   p->q_key, q_col, db_field(cands, r, "rel"), q_col, IMPLICIT_SAMPLE, p->q_table, p->q_key);
	PGresult *res = db_query(run->conn, sql, 0, NULL);

	*sampled = db_field_ll(res, 0, "sampled");
	*found = db_field_ll(res, 0, "found");
	PQclear(res);
	free(sql);
}

/*
 * Each candidate with values found among the keys, warned (table, column,
 * share of the sample) into LIST, a JSON array; returns how many.
 */
static int
warn_candidates(Run *run, const PGresult *cands, json_t *list)
{
	const Plan *p = run->plan;
	int warned = 0;

	for (int r = 0; r < PQntuples(cands); r++)
	{
		long long sampled, found;
		double share;

		sample_values(run, cands, r, &sampled, &found);
		if (found == 0)
			continue;
		share = (double) found / (double) sampled;
		log_warning("%s.%s looks like a reference to %s.%s without a foreign key: %lld of %lld sampled values "
					"(%.1f%%) are keys",
					db_field(cands, r, "rel"), db_field(cands, r, "q_col"), p->q_table, p->q_key, found, sampled,
					100.0 * share);
		json_array_append_new(list,
							  json_pack("{s:s, s:s, s:I, s:I, s:f}", "table", db_field(cands, r, "rel"), "column",
										db_field(cands, r, "attname"), "sampled", (json_int_t) sampled, "found",
										(json_int_t) found, "share", share));
		warned++;
	}
	return warned;
}

static const char *const refs_hint =
	"a column that holds the key's values is not converted unless the plan says so: list it in the "
	"convert_to_uuid's \"also_convert\" (converted with the foreign keys; \"add_foreign_key\": true adds one at "
	"the swap), or in \"not_references\" if it is not a reference to the key (docs/runbook.md)";

/*
 * phase1 (apply and --dry-run): warn of each column that looks like a
 * reference to the key without a foreign key, and record them (and the
 * plan's not_references) in the step's migration_log metadata.  Never
 * refuses.  Nothing to look for once the key is uuid.
 */
void
uuid_warn_references(Run *run, const Op *op)
{
	const UuidSpec *spec = uuid_spec(op);
	json_t *meta, *list = json_array(), *nots = json_array();
	PGresult *cands;

	if (run->plan->key_type && strcmp(run->plan->key_type, "uuid") == 0)
	{
		json_decref(list), json_decref(nots);
		return;
	}
	cands = uuid_reference_candidates(run, op);
	if (warn_candidates(run, cands, list) > 0)
		log_hint("%s", refs_hint);
	PQclear(cands);
	for (int i = 0; i < spec->n_not_references; i++)
		json_array_append_new(
			nots,
			json_pack("{s:s, s:s, s:s}", "schema",
					  spec->not_references[i].schema ? spec->not_references[i].schema : run->plan->schema, "table",
					  spec->not_references[i].table, "column", spec->not_references[i].column));
	meta = run->op_metadata ? json_loads(run->op_metadata, 0, NULL) : NULL;
	if (meta == NULL)
		meta = json_object();
	json_object_set_new(meta, "references_without_foreign_key", list);
	json_object_set_new(meta, "not_references", nots);
	free(run->op_metadata);
	run->op_metadata = json_dumps(meta, JSON_COMPACT);
	json_decref(meta);
}

/*
 * Rows of candidate R whose value is a key whose uuid is not its text (a
 * regenerated key, or one not in canonical form): after the swap they point
 * at nothing.  A finding with sample values; returns the rows.
 */
static long long
check_candidate(UuidJob *job, Findings *f, const PGresult *cands, int r)
{
	const UuidTarget *k = &job->t[0];
	const char *q_col = db_field(cands, r, "q_col");
	char *value = uuid_value_sql(job, "p", k->q_col);
	char *subject = str_printf("%s.%s", db_field(cands, r, "rel"), q_col);
	StrBuf sql;
	long long n;

	sb_init(&sql);
	/*
	 * j, the rows that hold a key, materialized: the uuid of a key is then
	 * computed for those only, where the planner would otherwise filter
	 * every row of the key table by it before the join (1.5 s at 100,000
	 * users for a join that finds none)
	 */
	sb_printf(&sql, "WITH j AS MATERIALIZED (SELECT c.%s::text AS v, p.%s FROM %s c JOIN %s p ON p.%s = c.%s), ", q_col,
			  k->q_col, db_field(cands, r, "rel"), k->table, k->q_col, q_col);
	sb_printf(&sql, "d AS (SELECT v FROM j p WHERE (%s)::text IS DISTINCT FROM p.%s::text) ", value, k->q_col);
	sb_printf(&sql,
			  "SELECT (SELECT count(*) FROM d), (SELECT string_agg(v, " FINDINGS_SEP
			  ") FROM (SELECT DISTINCT v FROM d ORDER BY 1 LIMIT %d) s)",
			  SAMPLE_LIMIT);
	n = findings_query_keys(job->run, f, "reference without a foreign key", subject, sql.data);
	sb_free(&sql);
	free(value), free(subject);
	return n;
}

/*
 * An also_convert column phase1 did not record (the plan was edited after
 * it): the swap would leave it as it is.  Returns the problems found.
 */
static long long
check_also_recorded(UuidJob *job, Findings *f)
{
	const UuidSpec *spec = uuid_spec(job->op);
	long long problems = 0;

	for (int i = 0; i < spec->n_also_convert; i++)
	{
		const ColumnRef *c = &spec->also_convert[i];
		const char *params[2] = {c->schema ? c->schema : job->run->plan->schema, c->table};
		char *rel =
			db_value(job->run->conn, "SELECT pg_catalog.to_regclass(quote_ident($1) || '.' || quote_ident($2))::text",
					 2, params);
		bool recorded = false;

		for (int t = 1; t < job->n && !recorded; t++)
			recorded = rel && strcmp(job->t[t].table, rel) == 0 && strcmp(job->t[t].column, c->column) == 0;
		if (!recorded)
		{
			char *subject = str_printf("%s.%s", rel ? rel : c->table, c->column);

			findings_add(f, "also_convert not prepared", subject, 1, NULL);
			findings_hint(f, f->n - 1,
						  "phase1 recorded the columns to convert before the plan listed this one: roll back "
						  "phase2 and phase1 and apply them again with this plan (regenerated keys are kept: "
						  "every row gets the same uuid again)");
			free(subject);
			problems++;
		}
		free(rel);
	}
	return problems;
}

long long
uuid_check_references(UuidJob *job, Findings *f)
{
	Run *run = job->run;
	PGresult *cands = uuid_reference_candidates(run, job->op);
	long long problems = check_also_recorded(job, f);
	json_t *warned = json_array();
	int from = f->n;

	for (int r = 0; r < PQntuples(cands); r++)
		problems += check_candidate(job, f, cands, r) > 0 ? 1 : 0;
	if (f->n > from)
		findings_hint(f, from,
					  "these rows hold keys whose uuid is not their text (regenerated, or not in canonical form): "
					  "after the swap they would point at no row; list the column in the convert_to_uuid's "
					  "\"also_convert\" (then roll back phase2 and phase1 and apply them again) or, if it is not a "
					  "reference to the key, in \"not_references\"");
	else if (warn_candidates(run, cands, warned) > 0)
		log_hint("%s", refs_hint);
	json_decref(warned);
	PQclear(cands);
	return problems;
}
