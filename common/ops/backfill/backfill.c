/*
 * backfill.c: backfill_from_mapping, the move of a table's users from one
 * identity provider to another (the plan's provider: Clerk to Firebase), as
 * the numbered steps of each phase's apply and rollback (the steps
 * themselves live in the files backfill.h lists).
 *   phase1: the plan's source table (the loaded export), the backup table and
 *           a trigger that fills new columns of rows the application writes
 *           from then on, saving what it overwrites first;
 *   phase2: load the mapping, refuse values that do not fit their column
 *           and conflicts before any write, give rows that match nobody a
 *           uid (kept for good), save the originals and fill the columns in
 *           keyset batches, write the import file;
 *   phase3: remove the trigger (the application writes the columns itself).
 * Each rollback undoes its phase; phase2's and phase1's restore the saved
 * originals where the column still holds what phasemig wrote.
 *
 * The application's value wins: phasemig only fills a column that is NULL,
 * and the backup table keeps, per row and column, the value before
 * (original_N) and the value phasemig wrote (written_N).
 */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/catalog.h"
#include "engine/registry.h"
#include "engine/run.h"
#include "ops/backfill/backfill.h"
#include "ops/backfill/import_file.h"

/* ---------- phase1: source table, backup table and sync trigger ---------- */

/* EXIT_BAD_INPUT (logged) unless every column the operation names exists. */
static int
check_columns(Run *run, const Op *op)
{
	const Plan *p = run->plan;
	const BackfillSpec *spec = bf_spec(op);

	/* a dry run adds no column: plan_check_catalog has checked each exists or an add_column adds it */
	if (dryrun_on())
		return EXIT_DONE;
	if (!catalog_column_exists(p, spec->match_column)
		|| (spec->email_column && !catalog_column_exists(p, spec->email_column)))
	{
		log_error("column \"%s\"%s%s%s named by the backfill does not exist in %s", spec->match_column,
				  spec->email_column ? " or \"" : "", spec->email_column ? spec->email_column : "",
				  spec->email_column ? "\"" : "", p->q_table);
		return EXIT_BAD_INPUT;
	}
	for (int i = 0; i < spec->n_set; i++)
		if (!catalog_column_exists(p, spec->set[i].column))
		{
			log_error("column \"%s\" filled by the backfill does not exist in %s; add it with an add_column "
					  "operation before the backfill",
					  spec->set[i].column, p->q_table);
			return EXIT_BAD_INPUT;
		}
	return EXIT_DONE;
}

static int
backfill_apply1(Run *run, const Op *op, const Options *opts)
{
	BackfillSql n;
	int rc;

	(void) opts;
	/* 1. the columns the operation reads and fills exist */
	if ((rc = check_columns(run, op)) != EXIT_DONE)
		return rc;
	bf_sql_init(&n, run, op);
	/* 2. the source table the trigger and the batches read the mapping from */
	rc = bf_create_source_table(run, &n);
	/* 3. the backup table, which must exist as long as the trigger writes to it */
	if (rc == EXIT_DONE)
		rc = bf_ensure_backup_table(run, &n, 1);
	/* 4. the trigger */
	if (rc == EXIT_DONE)
		rc = bf_install_sync_trigger(run, op, &n);
	bf_sql_free(&n);
	return rc;
}

static int
backfill_rollback1(Run *run, const Op *op, const Options *opts)
{
	BackfillSql n;
	int rc;

	bf_sql_init(&n, run, op);
	/* 1. generated uids an earlier phasemig kept in the source table survive its drop */
	rc = bf_adopt_source_generated(run, &n);
	/* 2. no more fills */
	if (rc == EXIT_DONE && registry_has(run->conn, run->plan, "sync_trigger", n.trigger_name))
		rc = bf_drop_sync_trigger(run, &n);
	/* 3. what the backup still holds (an interrupted phase2 never rolled back) goes back, then the table */
	if (rc == EXIT_DONE && registry_has(run->conn, run->plan, "backup_table", "backfill")
		&& bf_table_exists(run, n.backup))
		rc = bf_restore_backup(run, &n, opts);
	if (rc == EXIT_DONE)
		rc = bf_drop_registered_table(run, n.backup, "backup_table", "backfill");
	/* 4. the source table, and the one a killed phase2 built and never swapped in */
	if (rc == EXIT_DONE)
		rc = bf_drop_registered_table(run, n.source, "source_table", "source");
	if (rc == EXIT_DONE)
		rc = bf_drop_source_build(run);
	/* 5. generated uids stay, like migration_log, unless the operator discards them */
	if (rc == EXIT_DONE && opts->discard_generated_uids)
		bf_discard_generated(run, &n, true);
	else if (rc == EXIT_DONE && bf_table_exists(run, n.generated))
		log_info("kept the generated uids in %s: the next apply gives each user the same one "
				 "(--discard-generated-uids forgets them)",
				 n.generated);
	bf_sql_free(&n);
	return rc;
}

/* ---------- phase2: load, refuse conflicts, back up, fill ---------- */

/*
 * EXIT_BAD_INPUT (logged) without a mapping, or with an option another
 * provider than the plan's adds: refused, not ignored.
 */
static int
check_inputs(Run *run, const IdProvider *prov, const Options *opts)
{
	if (opts->mapping == NULL)
	{
		log_error("no mapping given: use --mapping FILE (%s)", prov->mapping_kinds);
		return EXIT_BAD_INPUT;
	}
	for (int i = 0; i < opts->n_added; i++)
	{
		bool declared = false;

		for (int k = 0; prov->options && prov->options[k].name; k++)
			declared = declared || strcmp(prov->options[k].name, opts->added[i].option->name) == 0;
		if (!declared)
		{
			log_error("option \"--%s\" does not apply to plan \"%s\": its provider %s does not read it",
					  opts->added[i].option->name, run->plan->name, prov->name);
			return EXIT_BAD_INPUT;
		}
	}
	return EXIT_DONE;
}

static int
backfill_apply2(Run *run, const Op *op, const Options *opts)
{
	BackfillRun s = {.run = run, .op = op, .opts = opts};
	ImportFile partials = {.logs_dir = opts->logs_dir};
	int rc;

	if ((rc = check_inputs(run, bf_spec(op)->provider, opts)) != EXIT_DONE)
		return rc;
	bf_sql_init(&s.sql, run, op);
	/* 1. finish the import files an interrupted run left under their temporary name */
	partials.ledger = s.sql.import_files;
	partials.format = s.sql.prov->import;
	if (!dryrun_on())
		import_file_finish_partials(run, &partials);
	/* 2. read the inputs into temporary staging tables; nothing is written yet */
	run_session_writable(run, true);
	rc = bf_stage_inputs(&s);
	/* 3. refuse (or, asked to, leave empty) values that do not fit their column, then conflicts */
	if (rc == EXIT_DONE)
		rc = bf_check_staging(&s);
	run_session_writable(run, false);
	/* a dry run: what the fill would do, then the statements of the steps below */
	if (rc == EXIT_DONE && dryrun_on())
		rc = bf_dry_run_report(&s);
	/* 4. the mapping becomes the plan's source (the sync trigger reads it too) */
	if (rc == EXIT_DONE)
		rc = bf_replace_source(&s);
	/* 5. rows that match nobody get new uids when asked */
	if (rc == EXIT_DONE && opts->generate_missing)
		rc = bf_generate_missing(&s);
	/* 6. originals are saved in the same statement that fills each batch */
	if (rc == EXIT_DONE)
		rc = bf_ensure_backup_table(run, &s.sql, 2);
	if (rc == EXIT_DONE)
	{
		rc = bf_fill(&s);
		/* 7. a resumed run also fills the rows before its resume point that have a match now */
		if (rc == EXIT_DONE && s.fill.resumed)
			rc = bf_fill_before_resume_point(&s);
		/* 8. report what is left and what to import, and how the fill went */
		rc = bf_report(&s, rc);
		/* done or failed: --jobs's lookups go */
		bf_drop_shared_lookups(run, &s.sql, true);
	}
	bf_sql_free(&s.sql);
	return rc;
}

static int
backfill_rollback2(Run *run, const Op *op, const Options *opts)
{
	BackfillSql n;
	int rc;

	bf_sql_init(&n, run, op);
	bf_drop_shared_lookups(run, &n, false); /* a killed --jobs run's */
	/* 1. the trigger must not fill rows again from a mapping that is being rolled back */
	if ((rc = bf_adopt_source_generated(run, &n)) == EXIT_DONE && bf_table_exists(run, n.source))
		bf_exec_free(run, str_printf("DELETE FROM %s", n.source));
	/* ... nor is a mapping a killed apply built and never swapped in (source.c) kept */
	if (rc == EXIT_DONE)
		rc = bf_drop_source_build(run);
	/*
	 * 2. originals back, in batches, for rows filled by batches and by the
	 * trigger alike; the table stays (empty) for the trigger until phase1 rollback
	 */
	if (rc == EXIT_DONE && bf_table_exists(run, n.backup))
		rc = bf_restore_backup(run, &n, opts);
	/* 3. the generated uids stay for the next apply, unless the operator discards them */
	if (rc == EXIT_DONE && opts->discard_generated_uids)
		bf_discard_generated(run, &n, false);
	bf_sql_free(&n);
	return rc;
}

/* ---------- phase3: the application writes the columns itself now ---------- */

static int
backfill_apply3(Run *run, const Op *op, const Options *opts)
{
	BackfillSql n;
	int rc = EXIT_DONE;

	(void) opts;
	bf_sql_init(&n, run, op);
	/* 1. no more fills */
	if (catalog_trigger_exists(run->plan, n.trigger_name))
		rc = bf_drop_sync_trigger(run, &n);
	/* 2. recorded, so that phase3's rollback puts it back */
	if (rc == EXIT_DONE)
		bf_exec_free(run, registry_add_sql(run->plan, 3, "sync_trigger_removed", n.trigger_name));
	bf_sql_free(&n);
	return rc;
}

static int
backfill_rollback3(Run *run, const Op *op, const Options *opts)
{
	BackfillSql n;
	int rc = EXIT_DONE;

	(void) opts;
	bf_sql_init(&n, run, op);
	/* 1. the trigger back, if phase3 removed it */
	if (registry_has(run->conn, run->plan, "sync_trigger_removed", n.trigger_name))
	{
		rc = bf_install_sync_trigger(run, op, &n);
		if (rc == EXIT_DONE)
			registry_remove(run->conn, run->plan, "sync_trigger_removed", n.trigger_name);
	}
	bf_sql_free(&n);
	return rc;
}

const OpHandlers op_backfill_from_mapping = {
	.apply = {[1] = backfill_apply1, [2] = backfill_apply2, [3] = backfill_apply3},
	.rollback = {[1] = backfill_rollback1, [2] = backfill_rollback2, [3] = backfill_rollback3},
	.contract_last = true,
};
