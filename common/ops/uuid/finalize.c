/*
 * finalize.c: convert_to_uuid's phase3 finalize and its undo.  Finalize saves
 * every legacy key into migration_backup (a child's legacy value is its
 * parent's), then drops the reverse triggers and the legacy columns,
 * recording how each was defined.  The undo adds them back as they were and
 * fills them from the backup, in batches, before the swap back.
 */
#include "ops/uuid/uuid.h"
#include "ops/versions.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"

/*
 * Finalize once, and only a swapped job; refused while sessions still use
 * the before schema's views (they read the legacy columns).
 */
int
uuid_finalize_ready(UuidJob *job)
{
	if (job->finalized)
	{
		log_info("already finalized");
		return UUID_FINISHED;
	}
	if (!job->swapped)
	{
		log_error("phase3 apply has not swapped %s yet; nothing to finalize", job->t[0].regname);
		return EXIT_FAILED;
	}
	return versions_refuse_if_held(job->run, VERSIONS_BEFORE);
}

/* Every legacy key into migration_backup, by its new uuid. */
int
uuid_save_legacy_keys(UuidJob *job)
{
	const UuidTarget *k = &job->t[0];
	char *create =
		str_printf("CREATE TABLE IF NOT EXISTS %s (new uuid PRIMARY KEY, legacy text NOT NULL)", job->legacy_backup);
	StrBuf copy;

	sb_init(&copy);
	sb_printf(&copy, "INSERT INTO %s (new, legacy) ", job->legacy_backup);
	sb_printf(&copy, "SELECT %s, %s::text FROM %s ", k->q_col, k->q_legacy, k->table);
	sb_append(&copy, "ON CONFLICT (new) DO UPDATE SET legacy = EXCLUDED.legacy");
	db_exec(job->run->conn, create);
	log_info("saving the legacy keys into %s", job->legacy_backup);
	db_exec(job->run->conn, copy.data);
	free(create);
	sb_free(&copy);
	return EXIT_DONE;
}

/* How target T's legacy column is defined: {type, not_null, default?}. */
static json_t *
legacy_definition(const UuidJob *job, const UuidTarget *t)
{
	const char *params[2] = {t->table, t->legacy};
	PGresult *res = db_query(job->run->conn,
							 "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, "
							 "pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_sql FROM pg_catalog.pg_attribute a "
							 "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
							 "WHERE a.attrelid = $1::regclass AND a.attname = $2",
							 2, params);
	const char *default_sql = db_field(res, 0, "default_sql");
	json_t *c =
		json_pack("{s:s, s:b}", "type", db_field(res, 0, "type"), "not_null", db_field_true(res, 0, "attnotnull"));

	if (default_sql)
		json_object_set_new(c, "default", json_string(default_sql));
	PQclear(res);
	return c;
}

/*
 * The before schema (its views read the legacy columns), the reverse
 * triggers and the legacy columns dropped in one transaction, the columns'
 * definitions recorded.
 */
int
uuid_drop_legacy_columns(UuidJob *job)
{
	Run *run = job->run;
	UuidStmts st = {0};
	json_t *cols = json_array();
	char *detail, *holders, *drop_before = versions_drop_sql(run, VERSIONS_BEFORE, NULL);
	int rc;

	uuid_add_lock_tables(&st, job, NULL);
	if (drop_before)
		uuid_stmts_add(&st, drop_before);
	for (int i = 0; i < job->n; i++)
	{
		UuidTarget *t = &job->t[i];

		char *others = versions_drop_others_reading_sql(run, t->table, t->legacy);

		json_array_append_new(cols, legacy_definition(job, t));
		if (others)
			uuid_stmts_add(&st, others);
		uuid_stmts_add(&st, uuid_drop_trigger_sql(job, i, true));
		uuid_stmts_add(&st, str_printf("ALTER TABLE %s DROP COLUMN %s", t->table, t->q_legacy));
	}
	detail = json_dumps(cols, JSON_COMPACT);
	uuid_stmts_add(&st, registry_add_detail_sql(run->plan, 3, "uuid_finalized", job->op->column, detail));
	free(detail);
	json_decref(cols);
	log_info("dropping the %d legacy columns", job->n);
	if ((rc = uuid_stmts_run(run, "dropping the legacy columns", &st)) != EXIT_DONE
		&& (holders = versions_holders(run, VERSIONS_BEFORE)) != NULL)
	{
		/* a session that began on the before views after the check: say who, as the check does */
		log_detail("sessions hold locks on the views of schema \"%s\": %s", versions_schema(run->plan, VERSIONS_BEFORE),
				   holders);
		log_hint("retire the application version that reads \"%s\" (its search_path), then run this again",
				 versions_schema(run->plan, VERSIONS_BEFORE));
		free(holders);
	}
	return rc;
}

/* ---------- the undo ---------- */

/*
 * The legacy columns back, nullable, with the reverse triggers in the same
 * transaction: every row the application writes from then on gets its
 * legacy value at once.
 */
static int
add_legacy_columns(UuidJob *job, json_t *cols)
{
	UuidStmts st = {0};

	uuid_add_lock_tables(&st, job, NULL);
	for (int i = 0; i < job->n; i++)
	{
		const char *type = json_string_value(json_object_get(json_array_get(cols, (size_t) i), "type"));

		uuid_stmts_add(
			&st,
			str_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", job->t[i].table, job->t[i].q_legacy, type));
	}
	for (int i = 0; i < job->n; i++)
	{
		char *fn, *trigger;

		uuid_trigger_sql(job, i, true, &fn, &trigger);
		uuid_stmts_add(&st, fn);
		uuid_stmts_add(&st, trigger);
	}
	return uuid_stmts_run(job->run, "adding the legacy columns back", &st);
}

/* Target i's legacy column set to VALUE where COND holds, in batches labelled by the target. */
static int
restore_legacy(UuidJob *job, int i, const char *value, const char *cond)
{
	char *label = str_printf("restore legacy %s", job->t[i].regname);
	int rc = uuid_undo_batches(job, i, label, job->t[i].q_legacy, value, cond);

	free(label);
	return rc;
}

/*
 * The legacy values of the rows already there, in resumable batches that
 * lock only the rows they fill: the keys from the backup (a user written
 * since finalize has none: its text is its uuid), then each child's from its
 * parent, once every parent has its value.
 */
static int
restore_legacy_values(UuidJob *job)
{
	const UuidTarget *k = &job->t[0];
	char *value = str_printf("coalesce((SELECT l.legacy FROM %s l WHERE l.new = t.%s), t.%s::text)", job->legacy_backup,
							 k->q_col, k->q_col);
	char *cond = str_printf("t.%s IS NULL", k->q_legacy);
	int rc;

	log_info("restoring the legacy keys from %s", job->legacy_backup);
	rc = restore_legacy(job, 0, value, cond);
	free(value), free(cond);
	for (int i = 1; i < job->n && rc == EXIT_DONE; i++)
	{
		const UuidTarget *t = &job->t[i];
		StrBuf parent, child_cond;

		sb_init(&parent);
		uuid_append_parent(&parent, job, k->q_legacy, "t", t->q_col);
		sb_init(&child_cond);
		sb_printf(&child_cond, "t.%s IS NOT NULL AND t.%s IS DISTINCT FROM %s", t->q_col, t->q_legacy, parent.data);
		rc = restore_legacy(job, i, parent.data, child_cond.data);
		sb_free(&parent), sb_free(&child_cond);
	}
	return rc;
}

/* Each legacy column's default and NOT NULL, as COLS recorded them. */
static int
restore_legacy_constraints(UuidJob *job, json_t *cols)
{
	int rc = EXIT_DONE;

	for (int i = 0; i < job->n && rc == EXIT_DONE; i++)
	{
		const UuidTarget *t = &job->t[i];
		json_t *c = json_array_get(cols, (size_t) i);
		const char *default_sql = json_string_value(json_object_get(c, "default"));

		if (default_sql)
		{
			UuidStmts st = {0};

			uuid_stmts_add(
				&st, str_printf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t->table, t->q_legacy, default_sql));
			rc = uuid_stmts_run(job->run, "restoring a default", &st);
		}
		if (rc == EXIT_DONE && json_is_true(json_object_get(c, "not_null")))
			rc = ops_enforce_not_null_on(job->run, t->table, t->legacy);
	}
	return rc;
}

/* The legacy indexes (CONCURRENTLY), and the unique constraints they backed. */
static int
restore_legacy_indexes(UuidJob *job)
{
	Run *run = job->run;
	int rc = EXIT_DONE;

	for (int i = 0; i < job->n_ix && rc == EXIT_DONE; i++)
	{
		UuidIndex *x = &job->ix[i];
		const char *params[2] = {x->table, x->names.legacy};

		rc = ops_build_index_on(run, x->table, x->names.legacy, x->legacy_columns, x->unique);
		if (rc == EXIT_DONE && x->constraint
			&& !db_exists(run->conn,
						  "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass "
						  "AND conname = $2",
						  2, params))
		{
			UuidStmts st = {0};

			uuid_stmts_add(&st,
						   str_printf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", x->table,
									  x->names.q_legacy, x->names.q_legacy));
			rc = uuid_stmts_run(run, "restoring a legacy unique constraint", &st);
		}
	}
	return rc;
}

/*
 * Finalize undone, when the job was finalized: 1. the legacy columns and the
 * reverse triggers, 2. their values, 3. defaults and NOT NULL, 4. indexes and
 * unique constraints, 5. the before schema of views, 6. the record of the
 * finalize and the backup dropped.
 */
int
uuid_unfinalize(UuidJob *job)
{
	json_t *cols;
	int rc;

	if (!job->finalized)
		return EXIT_DONE;
	cols = uuid_recorded_detail(job, "uuid_finalized");
	if (!json_is_array(cols) || (int) json_array_size(cols) != job->n)
	{
		log_error("the record of the finalized legacy columns is missing or damaged");
		json_decref(cols);
		return EXIT_FAILED;
	}
	rc = add_legacy_columns(job, cols);
	if (rc == EXIT_DONE)
		rc = restore_legacy_values(job);
	if (rc == EXIT_DONE)
		rc = restore_legacy_constraints(job, cols);
	if (rc == EXIT_DONE)
		rc = restore_legacy_indexes(job);
	/* 5. the before schema, whose views read the legacy columns (while the record of their defaults is there) */
	if (rc == EXIT_DONE)
		rc = versions_create(job->run, VERSIONS_BEFORE);
	if (rc == EXIT_DONE)
	{
		UuidStmts st = {0};

		uuid_stmts_add(
			&st, registry_remove_sql(job->run->plan, (const char *const[]){"uuid_finalized", NULL}, job->op->column));
		uuid_stmts_add(&st, str_printf("DROP TABLE IF EXISTS %s", job->legacy_backup));
		rc = uuid_stmts_run(job->run, "forgetting the finalize", &st);
	}
	json_decref(cols);
	return rc;
}
