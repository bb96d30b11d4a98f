/*
 * uuid.c: convert_to_uuid, a varchar(36) primary key and every foreign key
 * pointing at it turned into native uuid.  Its handlers, each a list of steps
 * run in order over the job phase1 recorded (uuid.h names the file of each
 * step): a step either does its part, or sees from the job's state that an
 * earlier run did, and an exit code other than EXIT_DONE ends the list.
 */
#include "ops/uuid/uuid.h"

#include <stdlib.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

/* phase1: the map, then a shadow column and a forward trigger on each table (discovery first). */
static const UuidStep expand_steps[] = {uuid_log_job, uuid_create_map, uuid_add_shadows, NULL};
static const UuidStep unexpand_steps[] = {uuid_drop_shadows, uuid_drop_map, NULL};

/*
 * phase2: classify the values and fill the shadows, then index them as the
 * originals are (CONCURRENTLY, after the fill: cheaper than maintaining them
 * through it), so that the new version of the application, which reads the
 * shadows through the after schema before the swap, looks rows up by index
 * and can INSERT ... ON CONFLICT on the key; back: those indexes dropped and
 * every shadow as its trigger would set it.
 */
static const UuidStep fill_steps[] = {uuid_fill, uuid_build_mirrors, NULL};
static const UuidStep unfill_steps[] = {uuid_drop_mirrors, uuid_discard_regenerated, uuid_reset_shadows, NULL};

/*
 * phase3: per table (on --jobs connections, largest first: tables.c) the
 * indexes the swap needs (phase2's mirrors, rebuilt if missing; the text
 * key's unique index under its legacy name) and the shadows' NOT NULL CHECKs
 * validated; then on the run's own connection SET NOT NULL and the swap;
 * then per table again its foreign keys validated.
 */
static const UuidStep swap_steps[] = {uuid_validate_if_swapped,      uuid_prepare_tables,
									  uuid_enforce_shadows_not_null, uuid_swap_columns,
									  uuid_validate_foreign_keys,    NULL};

/*
 * Back: finalize undone if it ran; then the swap backwards if it happened,
 * else what an apply stopped before it left; phase2's indexes on the shadows
 * back (a constraint that adopted one took it with it), the foreign keys
 * validated and the reverse functions dropped either way: the schema is
 * phase2's again.
 */
static const UuidStep unswap_steps[] = {
	uuid_unfinalize,      uuid_drop_shadows_not_null, uuid_build_legacy_key,       uuid_swap_back,
	uuid_restore_mirrors, uuid_validate_foreign_keys, uuid_drop_reverse_functions, NULL};

static const UuidStep finalize_steps[] = {uuid_finalize_ready, uuid_save_legacy_keys, uuid_drop_legacy_columns, NULL};

static int
run_steps(Run *run, const Op *op, const Options *opts, const UuidStep *steps)
{
	UuidJob job;
	int rc = EXIT_DONE;

	if (!uuid_job_load(&job, run, op, opts))
		return EXIT_FAILED;
	for (const UuidStep *step = steps; *step && rc == EXIT_DONE; step++)
		rc = (*step)(&job);
	uuid_job_free(&job);
	return rc == UUID_FINISHED ? EXIT_DONE : rc;
}

/* Each phase's steps, indexed as the handlers are: by the phase the engine runs (run->phase). */
static const UuidStep *const apply_steps[4] = {[1] = expand_steps, [2] = fill_steps, [3] = swap_steps};
static const UuidStep *const rollback_steps[4] = {[1] = unexpand_steps, [2] = unfill_steps, [3] = unswap_steps};

/*
 * phase1 reads the catalog into the registry first: the job is loaded from
 * there; then it warns of columns that hold the key without a foreign key.
 */
static int
apply(Run *run, const Op *op, const Options *opts)
{
	int rc = run->phase == 1 ? uuid_discover(run, op) : EXIT_DONE;

	if (rc == EXIT_DONE && run->phase == 1)
		uuid_warn_references(run, op);
	return rc == EXIT_DONE ? run_steps(run, op, opts, apply_steps[run->phase]) : rc;
}

/* A rollback finds nothing to undo when phase1 has not recorded the job. */
static int
rollback(Run *run, const Op *op, const Options *opts)
{
	if (!uuid_job_recorded(run, op))
		return EXIT_DONE;
	return run_steps(run, op, opts, rollback_steps[run->phase]);
}

/*
 * phase1 rollback drops the shadows, phase2's empties them: a shadow's value
 * is phasemig's when it is what the forward trigger and the fill give the
 * row's original column (the regenerated uuid, else the text as uuid; a
 * child's, its parent key's), and the application's otherwise.  With
 * --discard-generated-uids, a shadow whose original has no uuid at all (not
 * uuid text, and not in the map: a regenerated uuid an interrupted run of
 * this rollback already forgot) is taken as a regenerated one being
 * discarded as asked.  Before the swap only: after it the uuid columns are
 * the application's own.
 */
static void
discards(Run *run, const Op *op, const Options *opts, Discards *d)
{
	UuidJob job;
	/* forgetting: no uuid of its own compares the shadow with itself */
	bool forget = opts->discard_generated_uids;

	if (!uuid_job_recorded(run, op) || !uuid_job_load(&job, run, op, NULL))
		return;
	for (int i = 0; i < job.n && !job.swapped; i++)
	{
		UuidTarget *t = &job.t[i];
		char *fn = str_printf("%s(text)", job.try_fn);
		const char *params[3] = {t->table, t->shadow, fn};

		if (db_exists(run->conn,
					  "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) "
					  "AND attname = $2 AND NOT attisdropped AND pg_catalog.to_regprocedure($3) IS NOT NULL",
					  3, params))
		{
			/*
			 * the map's uuid, else the text as uuid; text already in the
			 * shadow's canonical form needs no regular expression
			 */
			char *m = str_printf("m%d", i);
			char *join = str_printf("LEFT JOIN %s %s ON %s.old = t.%s::text", job.map, m, m, t->q_col);
			const char *sh = t->q_shadow;
			char *text_uuid = forget ? str_printf("coalesce(%s(t.%s::text), t.%s)", job.try_fn, t->q_col, sh)
									 : str_printf("%s(t.%s::text)", job.try_fn, t->q_col);

			discards_add(d, t->table, t->table, t->shadow,
						 str_printf("CASE WHEN t.%s IS NULL THEN false WHEN %s.new IS NOT NULL THEN t.%s IS DISTINCT "
									"FROM %s.new WHEN t.%s::text = lower(t.%s::text) THEN false "
									"ELSE t.%s IS DISTINCT FROM %s END",
									sh, m, sh, m, sh, t->q_col, sh, text_uuid),
						 join);
			free(text_uuid);
			free(m);
		}
		free(fn);
	}
	uuid_job_free(&job);
}

static int
finalize(Run *run, const Op *op, const Options *opts)
{
	return run_steps(run, op, opts, finalize_steps);
}

const OpHandlers op_convert_to_uuid = {
	.apply = {[1] = apply, [2] = apply, [3] = apply},
	.rollback = {[1] = rollback, [2] = rollback, [3] = rollback},
	.discards = {[1] = discards, [2] = discards},
	.check = uuid_check,
	.finalize = finalize,
};
