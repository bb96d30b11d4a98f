/*
 * swap.c: convert_to_uuid's phase3 apply.  After tables.c's per-table work
 * (the indexes the swap adopts built CONCURRENTLY, the shadows' NOT NULL
 * CHECKs validated, on --jobs connections), NOT NULL on the shadows, then the swap in one short
 * transaction (foreign keys and primary key dropped, each column renamed to
 * <name>_legacy and each shadow to <name>, primary key USING INDEX, foreign
 * keys back NOT VALID with their names and actions, reverse triggers keeping
 * the legacy columns filled) and one validation per foreign key.  The
 * teardown and rebuild around the renames serve the swap back too.
 */
#include "ops/uuid/uuid.h"

#include <regex.h>
#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"

/* A swap that committed before a run stopped: only its foreign keys may be left to validate. */
int
uuid_validate_if_swapped(UuidJob *job)
{
	int rc;

	if (!job->swapped)
		return EXIT_DONE;
	log_info("%s is already native uuid", job->t[0].regname);
	rc = uuid_validate_foreign_keys(job);
	return rc == EXIT_DONE ? UUID_FINISHED : rc;
}

int
uuid_build_shadow_indexes(UuidJob *job, bool adopted_only)
{
	int rc = ops_build_index_on(job->run, job->t[0].table, job->pk.mirror, job->t[0].q_shadow, true);

	for (int i = 0; i < job->n_ix && rc == EXIT_DONE; i++)
	{
		const UuidIndex *x = &job->ix[i];

		if (!adopted_only || x->constraint)
			rc = ops_build_index_on(job->run, x->table, x->names.mirror, x->columns, x->unique);
	}
	return rc;
}

/* The unique index that becomes the primary key, and every mirrored index (rebuilt if a rollback dropped them). */
int
uuid_build_mirrors(UuidJob *job)
{
	return uuid_build_shadow_indexes(job, false);
}

/*
 * NOT NULL on the key's shadow and each NOT NULL child's, before the swap's
 * exclusive locks: SET NOT NULL on the CHECKs uuid_prepare_tables validated
 * (a short lock, no scan), on the run's own connection, in the job's order.
 */
int
uuid_enforce_shadows_not_null(UuidJob *job)
{
	int rc = EXIT_DONE;

	for (int i = 0; i < job->n && rc == EXIT_DONE; i++)
		if (i == 0 || job->t[i].not_null)
			rc = ops_finish_not_null_on(job->run, job->t[i].table, job->t[i].shadow);
	return rc;
}

static char *
column_default(Run *run, const char *table, const char *column)
{
	const char *p[2] = {table, column};

	return db_value(run->conn,
					"SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
					"JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
					"WHERE d.adrelid = $1::regclass AND a.attname = $2",
					2, p);
}

/* A text default such as (gen_random_uuid())::text becomes gen_random_uuid(); others are cast. */
static char *
uuid_default(const char *text_default)
{
	regex_t re;
	regmatch_t m[2];
	char *out;

	regcomp(&re, "^\\((.*)\\)::(text|character varying)$", REG_EXTENDED);
	if (regexec(&re, text_default, 2, m, 0) == 0)
		out = str_printf("%.*s", (int) (m[1].rm_eo - m[1].rm_so), text_default + m[1].rm_so);
	else
		out = str_printf("(%s)::uuid", text_default);
	regfree(&re);
	return out;
}

/* Index X's names traded, forward: the original becomes legacy and the mirror takes its name; or back. */
static void
add_index_rename(UuidStmts *st, Run *run, const UuidIndex *x, bool forward)
{
	const UuidIndexNames *nm = &x->names;

	if (x->constraint && forward)
	{
		uuid_stmts_add(st, str_printf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", x->table, nm->q_name, nm->q_legacy));
		uuid_stmts_add(
			st,
			str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", x->table, nm->q_name, nm->q_mirror));
	}
	else if (x->constraint)
	{
		uuid_stmts_add(st, str_printf("ALTER TABLE %s DROP CONSTRAINT %s", x->table, nm->q_name));
		uuid_stmts_add(st, str_printf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", x->table, nm->q_legacy, nm->q_name));
	}
	else
	{
		/* the index named NAME makes way (to legacy, or back to mirror) for the other side's */
		char *in_use = ops_qualified_index(run, x->table, nm->name);
		char *other = ops_qualified_index(run, x->table, forward ? nm->mirror : nm->legacy);

		uuid_stmts_add(st, str_printf("ALTER INDEX %s RENAME TO %s", in_use, forward ? nm->q_legacy : nm->q_mirror));
		uuid_stmts_add(st, str_printf("ALTER INDEX %s RENAME TO %s", other, nm->q_name));
		free(in_use), free(other);
	}
}

/*
 * What the swap and the swap back both do first, in their one transaction:
 * lock every table, drop the views saved around it, the foreign keys, the
 * triggers of the side being left and the primary key, and trade the index
 * names (forward: originals become legacy, mirrors take their names).
 */
void
uuid_add_swap_teardown(UuidStmts *st, const UuidJob *job, json_t *views, bool forward)
{
	uuid_add_lock_tables(st, job, views);
	uuid_add_view_drops(st, views);
	uuid_add_foreign_keys(st, job, true);
	for (int i = 0; i < job->n; i++)
		uuid_stmts_add(st, uuid_drop_trigger_sql(job, i, !forward));
	uuid_stmts_add(st, str_printf("ALTER TABLE %s DROP CONSTRAINT %s", job->t[0].table, job->pk.q_name));
	for (int i = 0; i < job->n_ix; i++)
		add_index_rename(st, job->run, &job->ix[i], forward);
}

/*
 * And what both do last, once the columns are renamed: the primary key back
 * with its name on the index of the side now in use, the foreign keys NOT
 * VALID with their names and actions, the triggers that keep the other side
 * filled, and the saved views.
 */
void
uuid_add_swap_rebuild(UuidStmts *st, const UuidJob *job, json_t *views, bool forward)
{
	uuid_stmts_add(st,
				   str_printf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s", job->t[0].table,
							  job->pk.q_name, forward ? job->pk.q_mirror : job->pk.q_legacy));
	uuid_add_foreign_keys(st, job, false);
	for (int i = 0; i < job->n; i++)
	{
		char *fn, *trigger;

		uuid_trigger_sql(job, i, forward, &fn, &trigger);
		uuid_stmts_add(st, fn);
		uuid_stmts_add(st, trigger);
	}
	uuid_add_view_creates(st, views);
}

/*
 * Target T's original renamed legacy and its shadow to its name, with the
 * default as uuid.  The legacy column loses its default until the swap back
 * (recorded as uuid_legacy_default): a row inserted with one side only must
 * leave the other NULL for the two-way trigger to fill (job.c), and only the
 * real column may hold a default's value.
 */
static void
add_column_swap(UuidStmts *st, Run *run, const UuidTarget *t)
{
	char *text_default = column_default(run, t->table, t->column);

	uuid_stmts_add(st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_col, t->q_legacy));
	uuid_stmts_add(st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_shadow, t->q_col));
	if (text_default)
	{
		char *converted = uuid_default(text_default);
		json_t *detail = json_pack("{s:s}", "default", text_default);
		char *text = json_dumps(detail, JSON_COMPACT);

		uuid_stmts_add(st, str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t->table, t->q_col, converted));
		uuid_stmts_add(st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", t->table, t->q_legacy));
		uuid_stmts_add(st, registry_add_detail_sql(run->plan, 3, "uuid_legacy_default", t->regname, text));
		free(converted), free(text);
		json_decref(detail);
	}
	free(text_default);
}

/* With recreate_views, the views to recreate around the swap, recorded as they were for the rollback. */
static json_t *
save_views(UuidJob *job)
{
	char *blocked = NULL;
	json_t *views = uuid_dependent_views(job, &blocked);

	free(blocked);
	if (json_array_size(views) > 0)
	{
		uuid_record(job->run, 3, "uuid_views", job->op->column, json_incref(views));
		log_info("recreating %zu dependent views around the swap", json_array_size(views));
	}
	return views;
}

/* The swap, in one transaction under lock_timeout with retry. */
int
uuid_swap_columns(UuidJob *job)
{
	Run *run = job->run;
	UuidStmts st = {0};
	json_t *views = uuid_spec(job->op)->recreate_views ? save_views(job) : NULL;
	int rc;

	uuid_add_swap_teardown(&st, job, views, true);
	for (int i = 0; i < job->n; i++)
		add_column_swap(&st, run, &job->t[i]);
	uuid_add_swap_rebuild(&st, job, views, true);
	uuid_stmts_add(&st, registry_add_sql(run->plan, 3, "uuid_swapped", job->op->column));
	log_info("swapping %d columns to uuid in one transaction", job->n);
	db_ddl_stats_reset();
	rc = uuid_stmts_run(run, "the swap", &st);
	if (rc == EXIT_DONE)
		log_info("swap committed; its locks were held %.0f ms", db_ddl_stats().longest_attempt_ms);
	json_decref(views);
	return rc;
}
