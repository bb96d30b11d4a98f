/*
 * phase.c: applies or rolls back the operations of one phase, logging each to
 * migration_log, and runs the pre-flight checks of phase3.
 */
#include "engine/phase.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/confirm.h"
#include "core/db.h"
#include "core/db_target.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/discard.h"
#include "engine/findings.h"
#include "engine/operation.h"
#include "engine/run.h"

/*
 * The one way every command run out of order is refused: "<command>:
 * phaseN <state> for plan P on database D; run "<phaseM what>" first" (or
 * "nothing to roll back" when WHAT is NULL), the order as a hint.  Returns
 * false for the caller to exit 2.
 */
static bool
out_of_order(Run *run, int phase, const char *state, int then_phase, const char *then_what)
{
	char action[64] = "nothing to roll back";

	if (then_what)
		snprintf(action, sizeof action, "run \"phase%d %s\" first", then_phase, then_what);
	log_error("phase%d %s: phase%d %s for plan \"%s\" on database \"%s\"; %s", run->phase, run->subcommand, phase,
			  state, run->plan->name, PQdb(run->conn), action);
	log_hint("the order is phase1 apply, phase2 apply, phase3 check, phase3 apply, phase3 finalize; rollbacks go "
			 "phase3, phase2, phase1; \"phase%d status\" shows where the plan is; nothing was changed",
			 run->phase);
	return false;
}

bool
phase_in_order(Run *run)
{
	const Plan *plan = run->plan;
	PGconn *conn = run->conn;
	int p = run->phase;
	bool rollback = strcmp(run->subcommand, "rollback") == 0;
	bool finalize = strcmp(run->subcommand, "finalize") == 0;
	int needs = finalize ? 3 : rollback ? 0 : p - 1;

	/* 1. phase2 throttle: its control row lives in phasemig's state, which phase1 apply creates */
	if (strcmp(run->subcommand, "throttle") == 0)
		return mlog_state_exists(conn) || out_of_order(run, 1, "has not completed", 1, "apply");
	/* 2. what must have completed first: the phase before (finalize: phase3 apply) */
	if (needs > 0 && !mlog_phase_applied(conn, plan, needs))
		return out_of_order(run, needs, "has not completed", needs, "apply");
	/* 3. a rollback needs an apply of its phase since the last rollback: something to undo */
	if (rollback && !mlog_phase_started(conn, plan, p))
		return out_of_order(run, p, "is not applied (never applied, or rolled back since)", 0, NULL);
	/* 4. the checks come before phase3 apply: after it, what they read has changed */
	if (strcmp(run->subcommand, "check") == 0 && mlog_phase_applied(conn, plan, 3))
		return out_of_order(run, 3, "is already applied (the checks come before it)", 3, "rollback");
	/* 5. the next phase must not be in place, not even in part */
	if (p < 3 && mlog_phase_started(conn, plan, p + 1))
		return out_of_order(run, p + 1, "is applied", p + 1, "rollback");
	return true;
}

/* Merge the DDL lock statistics of the step into its metadata. */
static void
add_ddl_stats(Run *run)
{
	DbDdlStats st = db_ddl_stats();
	json_t *meta = run->op_metadata ? json_loads(run->op_metadata, 0, NULL) : json_object();

	if (meta == NULL)
		meta = json_object();
	json_object_set_new(meta, "ddl_longest_ms", json_real(st.longest_ms));
	json_object_set_new(meta, "ddl_longest_attempt_ms", json_real(st.longest_attempt_ms));
	json_object_set_new(meta, "ddl_retries", json_integer(st.retries));
	free(run->op_metadata);
	run->op_metadata = json_dumps(meta, JSON_COMPACT);
	json_decref(meta);
}

/* A signal asked the run to stop: say so before the next step. */
static bool
stopping(void)
{
	if (!stop_requested())
		return false;
	log_error("stopped by %s before the next step", stop_signal_name());
	return true;
}

static int
run_step(Run *run, const Op *op, OpStep step, const Options *opts, bool rollback)
{
	char *label = rollback ? str_printf("rollback %s", op->label) : xstrdup(op->label);
	int rc;

	log_set_step(label);
	run->op_entry = mlog_begin(run, label, -1, 0, NULL);
	run->op_rows = 0;
	db_ddl_stats_reset();
	rc = step(run, op, opts);
	add_ddl_stats(run);
	if (rc != EXIT_DONE && rc != EXIT_REFUSED && run->op_message == NULL && run_failure_reason())
		run->op_message = xstrdup(run_failure_reason());
	mlog_finish(run, run->op_entry,
				rc == EXIT_DONE          ? "done"
					: rc == EXIT_REFUSED ? "refused"
										 : "failed",
				run->op_rows, run->op_message, run->op_metadata);
	free(run->op_message);
	free(run->op_metadata);
	run->op_message = run->op_metadata = NULL;
	run->op_entry = 0;
	log_set_step(NULL);
	free(label);
	return rc;
}

bool
phase_confirm_outcome(Run *run, ConfirmAnswer answer, const char *flag)
{
	if (answer == CONFIRM_YES && !stop_requested())
		return true;
	if (stop_requested())
	{
		/* a signal at the question is an interruption (exit 1), not an answer */
		log_error("stopped by %s at the question: nothing was changed", stop_signal_name());
		return false;
	}
	if (answer == CONFIRM_NO_TTY)
	{
		log_error("%s %s needs a confirmation and there is no terminal to ask on: nothing was changed", log_progname(),
				  run->subcommand);
		log_hint("give %s to go on without a question (scripts, cron, CI)", flag);
		return false;
	}
	/* a state an older phasemig made learns the status 'declined' (sql/state.sql upgrades in place) */
	if (!dryrun_on() && mlog_state_exists(run->conn) && mlog_create_state(run->conn) != EXIT_DONE)
		log_warning("migration_log could not be upgraded: this run is recorded as failed, not declined");
	else
		run->declined = true;
	log_error("not confirmed (only the word yes goes on): nothing was changed; recorded as declined");
	return false;
}

typedef enum
{
	WALK_APPLY,
	WALK_ROLLBACK,
	WALK_FINALIZE
} Walk;

/* OP's step for this walk of run->phase, or NULL when it has none. */
static OpStep
step_of(const Run *run, const Op *op, Walk walk)
{
	const OpHandlers *h = op->kind->handlers;

	return walk == WALK_APPLY ? h->apply[run->phase] : walk == WALK_ROLLBACK ? h->rollback[run->phase] : h->finalize;
}

/*
 * The operations with a step in this walk, in the order they run, into ORDER
 * (their plan indexes); returns how many.  Apply goes in plan order, except
 * that in phase3 the contract_last operations come after all others
 * (operation.h); a rollback goes exactly backwards.
 */
static int
step_order(const Run *run, Walk walk, int *order)
{
	int n = 0;

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < run->plan->n_ops; i++)
		{
			const Op *op = &run->plan->ops[i];
			bool last = run->phase == 3 && walk != WALK_FINALIZE && op->kind->handlers->contract_last;

			if (step_of(run, op, walk) != NULL && last == (pass == 1))
				order[n++] = i;
		}
	if (walk == WALK_ROLLBACK)
		for (int a = 0, b = n - 1; a < b; a++, b--)
		{
			int t = order[a];

			order[a] = order[b];
			order[b] = t;
		}
	return n;
}

/* Run the walk's steps in order, each announced "step K of N"; stops at the first failure. */
static int
walk_steps(Run *run, const Options *opts, Walk walk)
{
	static const char *const prefix[] = {"step", "undo step", "finalize step"};
	int *order = xcalloc((size_t) run->plan->n_ops + 1, sizeof *order);
	int n = step_order(run, walk, order);
	int rc = EXIT_DONE;

	for (int k = 0; k < n && rc == EXIT_DONE; k++)
	{
		const Op *op = &run->plan->ops[order[k]];

		if (stopping())
			rc = EXIT_FAILED;
		else
		{
			log_info("%s %d of %d: %s", prefix[walk], k + 1, n, op->label);
			if (dryrun_on())
				dryrun_comment("%s %d of %d: %s", prefix[walk], k + 1, n, op->label);
			rc = run_step(run, op, step_of(run, op, walk), opts, walk == WALK_ROLLBACK);
		}
	}
	free(order);
	return rc;
}

/*
 * Before phase3 apply or finalize changes anything: say what it will do, in
 * order, what it drops or swaps, and ask on the controlling terminal.  --yes
 * and a dry run ask nothing; without a terminal and without --yes it refuses
 * (a script must say --yes).  False when it must not go on (logged; a "no"
 * marks the run declined).
 */
static bool
confirmed(Run *run, const Options *opts, Walk walk)
{
	int *order;
	int n;
	StrBuf q;
	ConfirmAnswer answer;
	char *target;

	if (opts->yes || dryrun_on())
		return true;
	order = xcalloc((size_t) run->plan->n_ops + 1, sizeof *order);
	n = step_order(run, walk, order);
	sb_init(&q);
	target = db_target_describe(run->conn);
	sb_printf(&q, "\nphase3 %s of plan \"%s\" on %s in %s will, in this order:\n", run->subcommand, run->plan->name,
			  run->plan->q_table, target);
	free(target);
	for (int k = 0; k < n; k++)
	{
		const OpType *kind = run->plan->ops[order[k]].kind;
		const char *drops = walk == WALK_FINALIZE ? kind->finalize_drops : kind->apply_drops;

		sb_printf(&q, "  %d. %s%s%s\n", k + 1, run->plan->ops[order[k]].label, drops ? ": " : "", drops ? drops : "");
	}
	free(order);
	sb_printf(&q,
			  "each change under a lock_timeout of %d ms; \"phase3 rollback\" undoes it.\n"
			  "Go on? Type yes (or give --yes): ",
			  db_get_retry()->lock_timeout_ms);
	log_progress_end();
	answer = confirm_ask(q.data);
	sb_free(&q);
	return phase_confirm_outcome(run, answer, "--yes");
}

bool
phase_confirm_apply(Run *run, const Options *opts)
{
	return confirmed(run, opts, WALK_APPLY);
}

bool
phase_confirm_finalize(Run *run, const Options *opts)
{
	return confirmed(run, opts, WALK_FINALIZE);
}

int
phase_apply_ops(Run *run, const Options *opts)
{
	return walk_steps(run, opts, WALK_APPLY);
}

int
phase_finalize_ops(Run *run, const Options *opts)
{
	return walk_steps(run, opts, WALK_FINALIZE);
}

int
phase_rollback_ops(Run *run, const Options *opts)
{
	return walk_steps(run, opts, WALK_ROLLBACK);
}

int
phase_rollback(Run *run, const Options *opts)
{
	int rc;

	/* 1. Record the run in migration_log (run_main checked the order: phase_in_order). */
	run_begin_phase(run);
	/* 2. Refuse to discard values the application wrote, unless told to. */
	if ((rc = discards_confirm(run, opts)) != EXIT_DONE)
		return rc;
	/* 3. Each operation's rollback, in reverse plan order. */
	return phase_rollback_ops(run, opts);
}

/*
 * 1. Every operation's gate (operation.h) in one pass over the plan's table: per
 * operation its count, or -1 for one without a gate (its check always runs).
 */
static long long *
gate_pass(Run *run)
{
	long long *gates = xcalloc((size_t) run->plan->n_ops + 1, sizeof *gates);
	StrBuf sb;
	int n = 0;

	sb_init(&sb);
	sb_append(&sb, "SELECT ");
	for (int i = 0; i < run->plan->n_ops; i++)
	{
		const Op *op = &run->plan->ops[i];
		OpGate gate = op->kind->handlers->gate;
		char *expr = gate ? gate(run, op) : NULL;

		gates[i] = -1;
		if (expr == NULL)
			continue;
		sb_printf(&sb, "%s%s", n++ ? ", " : "", expr);
		free(expr);
	}
	if (n > 0)
	{
		PGresult *res;

		sb_printf(&sb, " FROM %s", run->plan->q_table);
		res = db_query(run->conn, sb.data, 0, NULL);
		n = 0;
		for (int i = 0; i < run->plan->n_ops; i++)
		{
			OpGate gate = run->plan->ops[i].kind->handlers->gate;

			if (gate)
				gates[i] = atoll(PQgetvalue(res, 0, n++));
		}
		PQclear(res);
	}
	sb_free(&sb);
	return gates;
}

int
phase_check_ops(Run *run, const Options *opts, bool own_entry)
{
	Findings f;
	long long problems = 0, *gates;
	long long entry = own_entry ? mlog_begin(run, "check", -1, 0, NULL) : 0;
	json_t *meta;
	char *text;

	findings_init(&f);
	gates = gate_pass(run);
	/* 2. each operation's check: those whose gate found rows, and those without a gate */
	for (int i = 0; i < run->plan->n_ops; i++)
	{
		const Op *op = &run->plan->ops[i];
		OpCheck check = op->kind->handlers->check;

		if (check && gates[i] != 0)
			problems += check(run, op, &f);
	}
	free(gates);
	meta = json_pack("{s:o}", "findings", findings_json(&f));
	text = json_dumps(meta, JSON_COMPACT);
	if (opts->json)
	{
		json_t *out = json_pack("{s:s, s:b, s:O}", "plan", run->plan->name, "passed", problems == 0, "findings",
								json_object_get(meta, "findings"));
		char *s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(s);
		free(s);
		json_decref(out);
	}
	if (problems > 0)
	{
		findings_print(&f);
		log_error("pre-flight checks refused: %d problem%s found; nothing was changed", f.n, f.n == 1 ? "" : "s");
	}
	else
		log_info("pre-flight checks passed");
	if (own_entry)
		mlog_finish(run, entry, problems > 0 ? "refused" : "done", 0, NULL, text);
	else
	{
		/* inside apply: the findings go on the phase-level row of the apply */
		free(run->phase_metadata);
		run->phase_metadata = xstrdup(text);
	}
	free(text);
	json_decref(meta);
	findings_free(&f);
	return problems > 0 ? EXIT_REFUSED : EXIT_DONE;
}
