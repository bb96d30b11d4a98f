/*
 * unswap.c: convert_to_uuid's phase3 rollback, the exact undo of the swap
 * (after finalize's undo when the job was finalized).  A unique index on the
 * legacy key, then the swap backwards in one transaction (the legacy columns
 * take their names back, the uuid columns become the shadows again, the
 * forward triggers return), the indexes phase3 built on the shadows dropped,
 * the foreign keys validated one by one.  When the swap had not happened,
 * what an apply stopped before it may have left.
 */
#include "engine/registry.h"
#include "ops/uuid/uuid.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

/*
 * Not swapped: an apply that stopped before the swap may have set NOT NULL
 * (or left its CHECK) on shadows; the validation and the dropping of reverse
 * functions that follow finish a swap back that stopped after its commit.
 */
int
uuid_drop_shadows_not_null(UuidJob *job)
{
	UuidStmts st = {0};

	if (job->swapped)
		return EXIT_DONE;
	for (int i = 0; i < job->n; i++)
	{
		UuidTarget *t = &job->t[i];
		char *check = ops_not_null_check_name(job->run->plan, t->shadow);
		char *q_check = sql_ident(check);

		uuid_stmts_add(&st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t->table, t->q_shadow));
		uuid_stmts_add(&st, str_printf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", t->table, q_check));
		free(check), free(q_check);
	}
	return uuid_stmts_run(job->run, "dropping NOT NULL of the shadows", &st);
}

/* Swapped: a unique index on the legacy key, to become the primary key again. */
int
uuid_build_legacy_key(UuidJob *job)
{
	UuidTarget *k = &job->t[0];

	if (!job->swapped)
		return EXIT_DONE;
	return ops_build_index_on(job->run, k->table, job->pk.legacy, k->q_legacy, true);
}

/*
 * Target T's uuid column back to the shadow, without its default and NOT
 * NULL, and its legacy column to its name, with the default the swap took
 * from it (uuid_legacy_default).
 */
static void
add_column_swap_back(UuidStmts *st, const UuidJob *job, const UuidTarget *t)
{
	static const char *const kinds[] = {"uuid_legacy_default", NULL};
	const Plan *p = job->run->plan;
	char *text = registry_detail(job->run->conn, p, "uuid_legacy_default", t->regname);
	json_t *detail = text ? json_loads(text, 0, NULL) : NULL;
	const char *text_default = json_string_value(json_object_get(detail, "default"));

	uuid_stmts_add(st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", t->table, t->q_col));
	uuid_stmts_add(st, str_printf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t->table, t->q_col));
	uuid_stmts_add(st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_col, t->q_shadow));
	uuid_stmts_add(st, str_printf("ALTER TABLE %s RENAME COLUMN %s TO %s", t->table, t->q_legacy, t->q_col));
	if (text_default)
		uuid_stmts_add(st,
					   str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t->table, t->q_col, text_default));
	if (text)
		uuid_stmts_add(st, registry_remove_sql(p, kinds, t->regname));
	json_decref(detail);
	free(text);
}

/* Swapped: the swap backwards, in one transaction; saved views are recreated as they were. */
int
uuid_swap_back(UuidJob *job)
{
	UuidStmts st = {0};
	json_t *views;
	int rc;

	if (!job->swapped)
		return EXIT_DONE;
	views = uuid_recorded_detail(job, "uuid_views");
	uuid_add_swap_teardown(&st, job, views, false);
	for (int i = 0; i < job->n; i++)
		add_column_swap_back(&st, job, &job->t[i]);
	uuid_add_swap_rebuild(&st, job, views, false);
	uuid_stmts_add(&st,
				   registry_remove_sql(job->run->plan, (const char *const[]){"uuid_swapped", "uuid_views", NULL},
									   job->op->column));
	log_info("swapping %d columns back to text in one transaction", job->n);
	rc = uuid_stmts_run(job->run, "the swap back", &st);
	json_decref(views);
	return rc;
}

/*
 * phase2 rollback: the indexes phase2 apply built on the shadows (the key's
 * unique one and every mirror); phase1's schema has none of them.
 */
int
uuid_drop_mirrors(UuidJob *job)
{
	int rc = ops_drop_index_on(job->run, job->t[0].table, job->pk.mirror);

	for (int i = 0; i < job->n_ix && rc == EXIT_DONE; i++)
		rc = ops_drop_index_on(job->run, job->ix[i].table, job->ix[i].names.mirror);
	return rc;
}

/*
 * phase3 rollback, either way: phase2's indexes on the shadows.  The swap
 * back left them on the shadows under their mirror names, except those a
 * constraint adopted (the primary key, a unique constraint), which went with
 * it and are built again; an apply that stopped before the swap left them
 * all, and the text key's index it built for after the swap, dropped here.
 */
int
uuid_restore_mirrors(UuidJob *job)
{
	int rc;

	/* not swapped: all there, or built again if a rollback of the stopped apply dropped one */
	if (!job->swapped)
	{
		rc = ops_drop_index_on(job->run, job->t[0].table, job->pk.legacy);
		return rc == EXIT_DONE ? uuid_build_mirrors(job) : rc;
	}
	/*
	 * Swapped back: only the adopted ones, named from the job, not looked up
	 * in the catalog, so that a dry run (whose swap back changed nothing)
	 * prints what the real run does.
	 */
	return uuid_build_shadow_indexes(job, true);
}

/* The reverse trigger functions, not needed once the triggers are gone. */
int
uuid_drop_reverse_functions(UuidJob *job)
{
	UuidStmts st = {0};

	for (int i = 0; i < job->n; i++)
		uuid_stmts_add(&st, str_printf("DROP FUNCTION IF EXISTS %s()", job->t[i].fn[1]));
	return uuid_stmts_run(job->run, "dropping reverse trigger functions", &st);
}
