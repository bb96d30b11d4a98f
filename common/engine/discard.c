/*
 * discard.c: what a rollback would discard of the application's writes:
 * counting the items of each table in one aggregate query (one scan), and
 * the decision, before the rollback changes anything (discards_confirm).
 */
#include "engine/discard.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/confirm.h"
#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/operation.h"
#include "engine/phase.h"

void
discards_add(Discards *d, const char *table, const char *table_name, const char *column, char *cond, char *join)
{
	d->items = xrealloc(d->items, (size_t) (d->n + 1) * sizeof *d->items);
	d->items[d->n++] = (DiscardItem){
		.table = xstrdup(table), .column = str_printf("%s.%s", table_name, column), .cond = cond, .join = join};
}

/* Whether item J of D is of item I's table and its join is not among the items before it there. */
static bool
first_join(const Discards *d, int i, int j)
{
	if (d->items[j].join == NULL || strcmp(d->items[j].table, d->items[i].table) != 0)
		return false;
	for (int k = i; k < j; k++)
		if (d->items[k].join && strcmp(d->items[k].table, d->items[i].table) == 0
			&& strcmp(d->items[k].join, d->items[j].join) == 0)
			return false;
	return true;
}

void
discards_count(Run *run, Discards *d)
{
	bool *done = xcalloc((size_t) d->n + 1, sizeof *done);

	for (int i = 0; i < d->n; i++)
	{
		StrBuf sql;
		PGresult *res;
		int k = 0;

		if (done[i])
			continue;
		sb_init(&sql);
		sb_append(&sql, "SELECT ");
		for (int j = i; j < d->n; j++)
			if (!done[j] && strcmp(d->items[j].table, d->items[i].table) == 0)
				sb_printf(&sql, "%scount(*) FILTER (WHERE %s)", k++ ? ", " : "", d->items[j].cond);
		sb_printf(&sql, " FROM %s t", d->items[i].table);
		for (int j = i; j < d->n; j++)
			if (!done[j] && first_join(d, i, j))
				sb_printf(&sql, " %s", d->items[j].join);
		res = db_query(run->conn, sql.data, 0, NULL);
		k = 0;
		for (int j = i; j < d->n; j++)
			if (!done[j] && strcmp(d->items[j].table, d->items[i].table) == 0)
			{
				d->items[j].count = atoll(PQgetvalue(res, 0, k++));
				done[j] = true;
			}
		PQclear(res);
		sb_free(&sql);
	}
	free(done);
}

long long
discards_total(const Discards *d)
{
	long long total = 0;

	for (int i = 0; i < d->n; i++)
		total += d->items[i].count;
	return total;
}

json_t *
discards_json(const Discards *d)
{
	json_t *obj = json_object();

	for (int i = 0; i < d->n; i++)
		if (d->items[i].count > 0)
			json_object_set_new(obj, d->items[i].column, json_integer(d->items[i].count));
	return obj;
}

void
discards_free(Discards *d)
{
	for (int i = 0; i < d->n; i++)
	{
		free(d->items[i].table);
		free(d->items[i].column);
		free(d->items[i].cond);
		free(d->items[i].join);
	}
	free(d->items);
	d->items = NULL;
	d->n = 0;
}

/* The question a discarding rollback asks on a terminal (malloc'd). */
static char *
discard_question(const Run *run, const Discards *d)
{
	StrBuf q;

	sb_init(&q);
	sb_printf(&q, "\nphase%d rollback of plan \"%s\" would discard values the application wrote:\n", run->phase,
			  run->plan->name);
	for (int i = 0; i < d->n; i++)
		if (d->items[i].count > 0)
			sb_printf(&q, "  %s: %lld row%s\n", d->items[i].column, d->items[i].count,
					  d->items[i].count == 1 ? "" : "s");
	sb_append(&q, "they are not saved anywhere.\nDiscard them? Type yes (or give --discard-application-writes): ");
	return sb_steal(&q);
}

/*
 * Before a rollback changes anything: count, per column, the values it would
 * discard that the application wrote (each operation's discards handler says
 * which those are).  None: go on.  Some: log each column and count, record
 * them and the decision on the phase's migration_log row, and go on only
 * with --discard-application-writes or a yes typed on the terminal; without
 * a terminal refuse (3), a no declines (2).  A dry run prints the counts and
 * ends as a run without the option off a terminal would (3).
 */
int
discards_confirm(Run *run, const Options *opts)
{
	Discards d = {0};
	json_t *meta;
	const char *decision;
	int rc = EXIT_DONE;

	for (int i = 0; i < run->plan->n_ops; i++)
	{
		OpDiscards discards = run->plan->ops[i].kind->handlers->discards[run->phase];

		if (discards)
			discards(run, &run->plan->ops[i], opts, &d);
	}
	discards_count(run, &d);
	if (discards_total(&d) == 0)
	{
		if (d.n > 0)
			log_info("no value the application wrote is discarded (%d column%s counted)", d.n, d.n == 1 ? "" : "s");
		discards_free(&d);
		return EXIT_DONE;
	}
	for (int i = 0; i < d.n; i++)
		if (d.items[i].count > 0)
		{
			log_warning("%s: %lld row%s a value the application wrote, which this rollback discards", d.items[i].column,
						d.items[i].count, d.items[i].count == 1 ? " holds" : "s hold");
			if (dryrun_on())
				dryrun_comment("would discard %lld value%s the application wrote in %s", d.items[i].count,
							   d.items[i].count == 1 ? "" : "s", d.items[i].column);
		}
	if (opts->discard_application_writes)
		decision = "discarded: --discard-application-writes";
	else if (dryrun_on())
	{
		log_error("rollback refused: it would discard values the application wrote (counts above)");
		log_hint("give --discard-application-writes to discard them (on a terminal the real run asks)");
		decision = "refused";
		rc = EXIT_REFUSED;
	}
	else
	{
		char *question = discard_question(run, &d);
		ConfirmAnswer answer;

		log_progress_end();
		answer = confirm_ask(question);
		free(question);
		if (answer == CONFIRM_NO_TTY && !stop_requested())
		{
			log_error("rollback refused: it would discard values the application wrote (counts above); nothing was "
					  "changed");
			log_hint("keep them elsewhere first if they matter, then give --discard-application-writes "
					 "(docs/runbook.md, \"Rolling back\")");
			decision = "refused";
			rc = EXIT_REFUSED;
		}
		else if (phase_confirm_outcome(run, answer, "--discard-application-writes"))
			decision = "discarded: confirmed on the terminal";
		else
		{
			decision = run->declined ? "declined" : "interrupted";
			rc = EXIT_BAD_INPUT;
		}
	}
	meta = json_pack("{s:s, s:o}", "discard_decision", decision, "application_writes", discards_json(&d));
	free(run->phase_metadata);
	run->phase_metadata = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(meta);
	if (rc == EXIT_DONE)
		log_warning("discarding them (%s)", decision + strlen("discarded: "));
	discards_free(&d);
	return rc;
}
