/*
 * backfill_spec.c: what a backfill_from_mapping says in a plan: read from its JSON
 * (the identity provider, the source id column, the email fallback, and
 * "set": each column filled from a field of the provider's export, one of
 * them its user id, and "custom_claims": each claim of the target's accounts
 * and where in the source's export it comes from, as the provider takes
 * them) and checked against the catalog before phase1 (every column there,
 * every field castable to it); and its OpType.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/plan_check.h"
#include "ops/backfill/backfill.h"

const BackfillSpec *
bf_spec(const Op *op)
{
	return op->data;
}

/* One "column": "export field" pair of "set" into the next FieldMap of SPEC. */
static void
read_field(PlanReader *r, BackfillSpec *spec, const char *column, json_t *field, const char *where)
{
	const IdProvider *prov = spec->provider;
	FieldMap *fm = &spec->set[spec->n_set];

	if (!json_is_string(field))
	{
		plan_read_fail(r, where, "set.\"%s\" must be the name of a %s", column, prov->field_kind);
		return;
	}
	if (prov->field_column(json_string_value(field)) == NULL)
		plan_read_fail(r, where, "set.\"%s\": unknown %s \"%s\"", column, prov->field_kind, json_string_value(field));
	if (strlen(column) > PLAN_MAX_IDENT)
		plan_read_fail(r, where, "set: column name longer than %d bytes", PLAN_MAX_IDENT);
	fm->column = xstrdup(column);
	fm->field = xstrdup(json_string_value(field));
	if (strcmp(fm->field, prov->uid_field) == 0)
		spec->uid_column = fm->column;
	spec->n_set++;
}

/* "provider": one of bf_providers by name, else the first (refused: the first, to read on). */
static const IdProvider *
read_provider(PlanReader *r, json_t *obj, const char *where)
{
	char *name = plan_read_string(r, obj, where, "provider", false);
	const IdProvider *prov = name ? bf_provider(name) : bf_providers[0];

	if (prov == NULL)
	{
		StrBuf known;

		sb_init(&known);
		for (int i = 0; bf_providers[i]; i++)
			sb_printf(&known, "%s%s", i ? ", " : "", bf_providers[i]->name);
		plan_read_fail(r, where, "unknown provider \"%s\" (known: %s)", name, known.data);
		sb_free(&known);
		prov = bf_providers[0];
	}
	free(name);
	return prov;
}

/* "custom_claims": {"claim": "path in the source's export", ...}, optional; each pair as the provider takes it. */
static void
read_claims(PlanReader *r, BackfillSpec *spec, json_t *obj, const char *where)
{
	json_t *claims = json_object_get(obj, "custom_claims"), *path;
	const IdProvider *prov = spec->provider;
	const char *claim;

	if (claims == NULL)
		return;
	if (prov->claim_problem == NULL)
	{
		plan_read_fail(r, where, "the provider \"%s\" takes no \"custom_claims\"", prov->name);
		return;
	}
	if (!json_is_object(claims))
	{
		plan_read_fail(r, where, "\"custom_claims\" must be an object of claim: path");
		return;
	}
	/* n_claims counts the pairs filled so far, so plan_free frees them on every path */
	spec->claims = xcalloc(json_object_size(claims) + 1, sizeof(ClaimMap));
	json_object_foreach(claims, claim, path)
	{
		const char *problem;

		if (!json_is_string(path))
		{
			plan_read_fail(r, where, "custom_claims.\"%s\" must be a path (a string)", claim);
			return;
		}
		if ((problem = prov->claim_problem(claim, json_string_value(path))) != NULL)
		{
			plan_read_fail(r, where, "custom_claims.\"%s\": %s", claim, problem);
			return;
		}
		spec->claims[spec->n_claims].claim = xstrdup(claim);
		spec->claims[spec->n_claims].path = xstrdup(json_string_value(path));
		spec->n_claims++;
	}
}

static void
backfill_read(PlanReader *r, Op *op, json_t *obj, const char *where)
{
	json_t *set = json_object_get(obj, "set");
	BackfillSpec *spec = op->data = xcalloc(1, sizeof(BackfillSpec));
	const char *column;
	json_t *field;

	spec->provider = read_provider(r, obj, where);
	spec->match_column = plan_read_ident(r, obj, where, "match_column", true);
	spec->email_column = plan_read_ident(r, obj, where, "email_column", false);
	if (!json_is_object(set) || json_object_size(set) == 0)
	{
		plan_read_fail(r, where, "\"set\" must be an object of column: %s", spec->provider->field_kind);
		return;
	}
	/* n_set counts the pairs filled so far, so plan_free frees them on every path */
	spec->set = xcalloc(json_object_size(set), sizeof(FieldMap));
	json_object_foreach(set, column, field) read_field(r, spec, column, field, where);
	if (spec->uid_column == NULL)
		plan_read_fail(r, where, "\"set\" must name the column that receives \"%s\"", spec->provider->uid_field);
	op->column = xstrdup(spec->uid_column);
	read_claims(r, spec, obj, where);
}

/*
 * A "set" column whose type the field's values cannot be cast to (the
 * batches write r.field::type): a boolean into a date, say.  Returns 1 then.
 * A column that is missing is plan_check_column's to report.
 */
static int
uncastable_field(Run *run, const Op *op, const FieldMap *set)
{
	const Plan *plan = run->plan;
	const Op *adder = plan_check_added_earlier(plan, op->index, set->column);
	char *type = adder ? xstrdup(add_column_type(adder)) : catalog_column_type(plan, set->column);
	char *target = type ? catalog_canonical_type(run->conn, type) : NULL;
	const char *staged = bf_spec(op)->provider->field_type(set->field);
	int problem = 0;

	if (target && staged)
	{
		char *sql = str_printf("SELECT CAST(NULL::%s AS %s)", staged, target);
		PGresult *res = db_query_answer(run->conn, sql, 0, NULL);

		if (!db_ok(res))
		{
			log_error("step %d (%s): column \"%s\" is of type %s: the field \"%s\" (%s) cannot be written to it",
					  op->index + 1, op->label, set->column, type, set->field, staged);
			problem = 1;
		}
		PQclear(res);
		free(sql);
	}
	free(type);
	free(target);
	return problem;
}

static int
backfill_check_plan(Run *run, const Op *op)
{
	const BackfillSpec *spec = op->data;
	int problems = plan_check_column(run->plan, op, spec->match_column, "match_column")
		+ plan_check_column(run->plan, op, spec->email_column, "email_column");

	for (int s = 0; s < spec->n_set; s++)
	{
		problems += plan_check_column(run->plan, op, spec->set[s].column, "filled column");
		problems += uncastable_field(run, op, &spec->set[s]);
	}
	return problems;
}

/* It reads the source id and email columns and fills the "set" columns. */
static void
backfill_uses(const Op *op, PlanUses *u)
{
	const BackfillSpec *spec = op->data;

	plan_uses_add(u, PLAN_READS, spec->match_column);
	plan_uses_add(u, PLAN_READS, spec->email_column);
	for (int s = 0; s < spec->n_set; s++)
		plan_uses_add(u, PLAN_FILLS, spec->set[s].column);
}

static void
backfill_free(void *data)
{
	BackfillSpec *spec = data;

	if (spec == NULL)
		return;
	free(spec->match_column);
	free(spec->email_column);
	for (int k = 0; k < spec->n_set; k++)
	{
		free(spec->set[k].column);
		free(spec->set[k].field);
	}
	free(spec->set);
	for (int k = 0; k < spec->n_claims; k++)
	{
		free(spec->claims[k].claim);
		free(spec->claims[k].path);
	}
	free(spec->claims);
	free(spec);
}

/* "plan --json": the plan's uid column is the first backfill's. */
static void
backfill_describe(const Op *op, json_t *obj, json_t *plan_obj)
{
	const BackfillSpec *spec = op->data;

	(void) obj;
	if (spec->uid_column && json_is_null(json_object_get(plan_obj, "uid_column")))
		json_object_set_new(plan_obj, "uid_column", json_string(spec->uid_column));
}

const OpType op_type_backfill_from_mapping = {
	.name = "backfill_from_mapping",
	.keys = (const char *const[]){"provider", "match_column", "email_column", "set", "custom_claims", NULL},
	.read = backfill_read,
	.free = backfill_free,
	.describe = backfill_describe,
	.check_plan = backfill_check_plan,
	.uses = backfill_uses,
	.one_per_plan = true, /* its source, backup and trigger are "<plan>:..." */
	.handlers = &op_backfill_from_mapping,
	.apply_drops = "removes the sync trigger (phase2 rollback still restores the originals)",
	.needs_mapping = true,
	.options = CLI_MAPPING | CLI_DISCARD_GENERATED,
	.added_option = bf_provider_option, /* each provider's (--clerk-export) */
};
