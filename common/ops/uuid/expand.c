/*
 * expand.c: convert_to_uuid's phase1 and its rollback.  The map of
 * regenerated keys and the function that reads text as uuid without failing;
 * then on the key and every foreign key column a uuid shadow column, kept
 * filled by a forward trigger for every row the application writes.
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"
#include "ops/versions.h"

/* PostgreSQL's uuid input: hex in groups of 4, optional hyphens between groups, optional braces */
#define UUID_TEXT_RE "^(\\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\\}|[0-9a-f]{4}(-?[0-9a-f]{4}){7})$"

int
uuid_log_job(UuidJob *job)
{
	log_info("converting %s.%s and %d foreign key column%s to uuid", job->run->plan->q_table, job->t[0].q_col,
			 job->n - 1, job->n == 2 ? "" : "s");
	for (int i = 1; i < job->n; i++)
		if (job->t[i].constraint && !job->t[i].fk_added)
			log_info("  %s.%s (foreign key \"%s\")", job->t[i].table, job->t[i].q_col, job->t[i].constraint);
		else
			log_info("  %s.%s (no foreign key: the plan's also_convert)", job->t[i].table, job->t[i].q_col);
	return EXIT_DONE;
}

/* The map of regenerated keys and the function that never fails on bad text. */
int
uuid_create_map(UuidJob *job)
{
	UuidStmts st = {0};

	uuid_stmts_add(&st,
				   str_printf("CREATE TABLE IF NOT EXISTS %s (old text PRIMARY KEY, new uuid NOT NULL UNIQUE, "
							  "created_at timestamptz NOT NULL DEFAULT now())",
							  job->map));
	uuid_stmts_add(&st,
				   str_printf("CREATE OR REPLACE FUNCTION %s(value text) RETURNS uuid LANGUAGE sql IMMUTABLE "
							  "PARALLEL SAFE AS $fn$ SELECT CASE WHEN value ~* '%s' THEN value::uuid END $fn$",
							  job->try_fn, UUID_TEXT_RE));
	return uuid_stmts_run(job->run, "the uuid map", &st);
}

/*
 * A shadow column and a forward trigger on each table, the key first, each
 * table in a transaction of its own; then the shadows recorded as done.
 *
 * The indexes on the shadows are built by phase3 apply (its step 1,
 * CONCURRENTLY, before the constraints that use them), once phase2 has
 * filled the shadows: keeping them up to date row by row through the fill
 * cost more than the fill itself (a keyset loop took 2.7 times as long
 * with them in place, at 100,000 users); nothing before phase3 apply
 * reads the shadows through an index.
 */
int
uuid_add_shadows(UuidJob *job)
{
	int rc = EXIT_DONE;

	for (int i = 0; i < job->n && rc == EXIT_DONE; i++)
	{
		UuidTarget *t = &job->t[i];
		UuidStmts st = {0};
		char *add_column = str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s uuid", t->table, t->q_shadow);
		char *fn, *trigger;

		uuid_trigger_sql(job, i, false, &fn, &trigger);
		uuid_stmts_add(&st, xstrdup(add_column));
		uuid_stmts_add(&st, fn);
		uuid_stmts_add(&st, trigger);
		log_info("adding %s.%s and its trigger", t->table, t->q_shadow);
		rc = uuid_stmts_run(job->run, add_column, &st);
		free(add_column);
	}
	if (rc == EXIT_DONE)
	{
		char *shadows_done = registry_add_sql(job->run->plan, 1, "uuid_shadows", job->op->column);

		db_exec(job->run->conn, shadows_done);
		free(shadows_done);
	}
	return rc;
}

/* Shadows, their triggers and functions, the children first; the mirror indexes go with the shadow columns. */
int
uuid_drop_shadows(UuidJob *job)
{
	int rc = EXIT_DONE;

	for (int i = job->n - 1; i >= 0 && rc == EXIT_DONE; i--)
	{
		UuidTarget *t = &job->t[i];
		UuidStmts st = {0};
		char *drop_column = str_printf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", t->table, t->q_shadow);
		/* another plan's versioned views made while the key was swapped read the shadow now */
		char *others = versions_drop_others_reading_sql(job->run, t->table, t->shadow);

		if (others)
			uuid_stmts_add(&st, others);
		uuid_stmts_add(&st, uuid_drop_trigger_sql(job, i, false));
		uuid_stmts_add(&st, str_printf("DROP FUNCTION IF EXISTS %s()", t->fn[0]));
		uuid_stmts_add(&st, xstrdup(drop_column));
		log_info("dropping %s.%s", t->table, t->q_shadow);
		rc = uuid_stmts_run(job->run, drop_column, &st);
		free(drop_column);
	}
	return rc;
}

/*
 * The function that reads text as uuid; the regenerated keys survive the
 * rollback, like migration_log (a uuid handed to a row stays its own if the
 * job is applied again) unless told to forget them.  Then what discover()
 * recorded.
 */
int
uuid_drop_map(UuidJob *job)
{
	UuidStmts st = {0};
	char *drop_fn = str_printf("DROP FUNCTION IF EXISTS %s(text)", job->try_fn);
	int rc;

	uuid_stmts_add(&st, xstrdup(drop_fn));
	if (job->opts->discard_generated_uids)
	{
		log_info("--discard-generated-uids: forgetting the regenerated keys in %s", job->map);
		uuid_stmts_add(&st, str_printf("DROP TABLE IF EXISTS %s", job->map));
	}
	rc = uuid_stmts_run(job->run, drop_fn, &st);
	if (rc == EXIT_DONE)
		registry_remove_kinds(job->run->conn, job->run->plan, uuid_job_kinds);
	free(drop_fn);
	return rc;
}
