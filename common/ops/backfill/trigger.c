/*
 * trigger.c: phase1's sync trigger, two-way.  For a row the application
 * inserts, or whose source id (the Clerk id) or email it changes, with no
 * uid yet, the trigger fills each column the application left NULL from the
 * plan's source table (the mapping), saving original and written value in
 * the backup table first.  Any failure leaves the row as the application
 * wrote it, with a WARNING.  The match rules are the batches' (fill_batches.c's
 * lookups): the source id, else, when the mapping has no such id at all, the
 * email of a user without one; a match to several users fills nothing.
 *
 * The other way, for a version of the application that knows the target
 * only: a row inserted with a uid and no source id, or whose uid an UPDATE
 * changes and not its source id, gets the source id the mapping gives that
 * uid (one, not held by another row); a uid the mapping does not know leaves
 * the source id as it is (NULL on an INSERT).  Both written: the row keeps
 * what was written, even where the mapping says otherwise (a user may exist
 * in the target only, or have moved).  An UPDATE that changes the uid and
 * neither the source id nor the email fills nothing else: that is also how
 * phasemig's own restores write, and they never get a value back from the
 * trigger.  The mapping's columns are the provider's (provider.h).
 */
#include <stdlib.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "engine/registry.h"
#include "ops/backfill/backfill.h"

/*
 * The uid written without the source id: the source id from the mapping's
 * reverse (by the application's sessions only, never phasemig's); an UPDATE
 * of the uid alone ends there.
 */
static void
append_reverse(StrBuf *sb, const Run *run, const BackfillSql *n)
{
	const Plan *p = run->plan;
	const char *m = n->q_match;
	const char *u = n->q_uid;
	const char *src = n->prov->source_id, *dst = n->prov->target_id;

	sb_printf(sb,
			  "  IF (CASE WHEN TG_OP = 'INSERT' THEN NEW.%s IS NOT NULL AND NEW.%s IS NULL "
			  "ELSE NEW.%s IS DISTINCT FROM OLD.%s AND NEW.%s IS NOT DISTINCT FROM OLD.%s END) THEN\n",
			  u, m, u, u, m, m);
	sb_printf(sb,
			  "    IF NEW.%s IS NOT NULL AND coalesce(pg_catalog.current_setting('phasemig.session', "
			  "true), '') <> 'on' THEN\n",
			  u);
	sb_printf(sb, "      SELECT count(DISTINCT x.%s), min(x.%s) INTO n, cid FROM %s x\n", src, src, n->source);
	sb_printf(sb, "       WHERE x.%s = NEW.%s::text AND x.%s IS NOT NULL;\n", dst, u, src);
	sb_printf(sb, "      IF n = 1 AND cid IS DISTINCT FROM NEW.%s::text AND NOT EXISTS ", m);
	sb_printf(sb, "(SELECT 1 FROM %s x WHERE x.%s = cid) THEN\n", p->q_table, m);
	sb_printf(sb, "        NEW.%s := cid;\n", m);
	sb_append(sb, "      END IF;\n");
	sb_append(sb, "    END IF;\n");
	if (n->q_email)
		sb_printf(sb, "    IF TG_OP = 'UPDATE' AND NEW.%s IS NOT DISTINCT FROM OLD.%s THEN RETURN NEW; END IF;\n",
				  n->q_email, n->q_email);
	else
		sb_append(sb, "    IF TG_OP = 'UPDATE' THEN RETURN NEW; END IF;\n");
	sb_append(sb, "  END IF;\n");
}

/* The function's start: leave alone rows with a uid, find the one user (uid) the row matches. */
static void
append_match(StrBuf *sb, const Run *run, const BackfillSql *n)
{
	const Plan *p = run->plan;
	const char *src = n->prov->source_id, *dst = n->prov->target_id;

	sb_printf(sb, "CREATE OR REPLACE FUNCTION %s() " OPS_TRIGGER_FUNCTION " $fn$\n", n->sync_fn);
	sb_append(sb, "DECLARE s record; r record; uid text; n bigint; touched boolean := false; cid text;\n");
	sb_append(sb, "BEGIN\n");
	append_reverse(sb, run, n);
	sb_printf(sb, "  IF NEW.%s IS NOT NULL THEN RETURN NEW; END IF;\n", n->q_uid);

	/*
	 * an INSERT of a key that exists will not write this row (ON CONFLICT,
	 * or a unique violation): nothing to fill or save, and saving would wait
	 * on a batch that holds the existing row
	 */
	sb_printf(sb,
			  "  IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM %s x WHERE x.%s = NEW.%s) THEN RETURN NEW; END IF;\n",
			  p->q_table, p->q_key, p->q_key);
	sb_printf(sb, "  SELECT count(DISTINCT x.%s), min(x.%s) INTO n, uid FROM %s x\n", dst, dst, n->source);
	sb_printf(sb, "   WHERE x.%s = NEW.%s::text;\n", src, n->q_match);
	if (n->q_email)
	{
		sb_append(sb, "  IF n = 0 THEN\n");
		sb_printf(sb, "    SELECT count(DISTINCT x.%s), min(x.%s) INTO n, uid FROM %s x\n", dst, dst, n->source);
		sb_printf(sb, "     WHERE x.%s IS NULL AND x.email_norm = " BF_EMAIL_NORM("NEW.") ";\n", src, n->q_email);
		sb_append(sb, "  END IF;\n");
	}
	sb_append(sb, "  IF n <> 1 THEN RETURN NEW; END IF;\n");
}

/* Fill r's empty columns from the user's fields (s); save NEW and r's values when any was filled. */
static void
append_fill(StrBuf *sb, const Run *run, const Op *op, const BackfillSql *n)
{
	sb_printf(sb, "  SELECT * INTO s FROM %s x WHERE x.%s = uid ORDER BY x.origin LIMIT 1;\n", n->source,
			  n->prov->target_id);
	sb_append(sb, "  r := NEW;\n");
	sb_append(sb, "  BEGIN\n");
	for (int i = 0; i < n->n_set; i++)
	{
		const char *q = n->q_set[i];
		const char *f = n->prov->field_column(bf_spec(op)->set[i].field);

		sb_printf(sb, "    IF r.%s IS NULL AND s.%s IS NOT NULL THEN r.%s := s.%s; touched := true; END IF;\n", q, f, q,
				  f);
	}
	sb_append(sb, "    IF touched THEN\n");
	sb_printf(sb, "      INSERT INTO %s AS bk (key, %s, saved_by)", n->backup, n->backup_columns);
	sb_printf(sb, " VALUES (NEW.%s::text", run->plan->q_key);
	for (int i = 0; i < n->n_set; i++)
		sb_printf(sb, ", NEW.%s, r.%s", n->q_set[i], n->q_set[i]);
	sb_append(sb, ", 'trigger')\n");
	sb_printf(sb, "      ON CONFLICT (key) DO UPDATE SET %s;\n", n->backup_upsert);
	sb_append(sb, "    END IF;\n");
	sb_append(sb, "    NEW := r;\n");
	sb_append(sb, "  EXCEPTION WHEN OTHERS THEN\n");
	sb_append(sb, "    RAISE WARNING 'phasemig: new columns left empty for this row: %', SQLERRM;\n");
	sb_append(sb, "  END;\n");
	sb_append(sb, "  RETURN NEW;\n");
	sb_append(sb, "END $fn$");
}

int
bf_install_sync_trigger(Run *run, const Op *op, const BackfillSql *n)
{
	const Plan *p = run->plan;
	StrBuf fn, create;
	char *drop = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->trigger, p->q_table);
	char *reg = registry_add_sql(p, 1, "sync_trigger", n->trigger_name);
	int rc;

	sb_init(&fn);
	append_match(&fn, run, n);
	append_fill(&fn, run, op, n);
	sb_init(&create);
	sb_printf(&create, "CREATE TRIGGER %s BEFORE INSERT OR UPDATE OF %s, %s", n->trigger, n->q_match, n->q_uid);
	if (n->q_email)
		sb_printf(&create, ", %s", n->q_email);
	sb_printf(&create, " ON %s FOR EACH ROW " OPS_TRIGGER_WHEN " EXECUTE FUNCTION %s()", p->q_table, n->sync_fn);
	log_info("installing trigger %s on %s", n->trigger, p->q_table);
	rc = ops_ddl(run, create.data, (const char *[]){fn.data, drop, create.data, reg}, 4);
	sb_free(&fn);
	sb_free(&create);
	free(drop);
	free(reg);
	return rc;
}

int
bf_drop_sync_trigger(Run *run, const BackfillSql *n)
{
	char *drop = str_printf("DROP TRIGGER IF EXISTS %s ON %s", n->trigger, run->plan->q_table);
	char *dropfn = str_printf("DROP FUNCTION IF EXISTS %s()", n->sync_fn);
	int rc;

	log_info("removing trigger %s", n->trigger);
	rc = ops_ddl_forget(run, drop, (const char *[]){drop, dropfn}, 2, "sync_trigger", n->trigger_name);
	free(drop);
	free(dropfn);
	return rc;
}
