/*
 * operation.h: what the engine knows of an operation, as data: its name in a
 * plan, the keys it allows, how it reads them into data of its own (Op.data),
 * frees and describes them, what it checks against the catalog before
 * phase1, and its handlers for each phase.  The operations themselves live in
 * common/ops/, one folder or file each, and are listed in one table there
 * (ops/op_types.c), which the binary hands the engine at startup
 * (operations_use); the engine only walks that table, so a new operation is
 * its file plus one line of the table.
 */
#ifndef PHASEMIG_OPERATION_H
#define PHASEMIG_OPERATION_H

#include <stdbool.h>

#include <jansson.h>

#include "engine/cli.h"
#include "engine/discard.h"
#include "engine/findings.h"
#include "engine/mlog.h"
#include "engine/plan.h"
#include "engine/plan_order.h"
#include "engine/plan_read.h"

/* Returns an exit code: EXIT_DONE, EXIT_FAILED, EXIT_BAD_INPUT or EXIT_REFUSED. */
typedef int (*OpStep)(Run *run, const Op *op, const Options *opts);
/* Adds findings; returns how many problems it found. */
typedef long long (*OpCheck)(Run *run, const Op *op, Findings *f);
/*
 * An aggregate over the plan's table, non-zero when OpCheck would find rows
 * (malloc'd; NULL: no gate, the check always runs).  phase3 computes every
 * operation's gate in one pass over the table and runs a check, with its
 * counts and samples, only when its gate found something.
 */
typedef char *(*OpGate)(Run *run, const Op *op);
/*
 * The columns OP's rollback of run->phase drops or empties, each with the
 * condition under which a row's value is the application's rather than
 * phasemig's (discard.h); the engine counts them before the rollback starts.
 */
typedef void (*OpDiscards)(Run *run, const Op *op, const Options *opts, Discards *d);

typedef struct OpHandlers
{
	OpStep apply[4]; /* indexed by phase */
	OpStep rollback[4];
	/* what rollback[phase] would discard of the application's writes, or NULL */
	OpDiscards discards[4];
	OpCheck check;   /* phase3 pre-flight */
	OpGate gate;     /* its one-pass gate, or NULL */
	OpStep finalize; /* phase3 finalize: drop what only a rollback needed */
	/*
	 * phase3 apply runs it after every operation without it (and rollback
	 * before them): sync triggers stay and old columns wait until the new
	 * constraints hold, so a phase3 that stops halfway leaves them in place
	 */
	bool contract_last;
} OpHandlers;

typedef struct OpType
{
	const char *name;        /* "add_column": the plan's "op" */
	const char *const *keys; /* the keys it allows besides "op" and "comment" (NULL-terminated) */
	/*
	 * Fill OP from the plan's object OBJ: op->column, and op->data with what
	 * only this operation reads (op->label too when "<op> <column>" is not
	 * its label); problems through plan_read_fail().
	 */
	void (*read)(PlanReader *r, Op *op, json_t *obj, const char *where);
	/* Free op->data, read or half read; NULL: a plain free(). */
	void (*free)(void *data);
	/*
	 * What "plan --json" shows of it beyond op, label and column: its keys on
	 * OBJ (the operation's object), and on PLAN_OBJ the plan's keys it fills
	 * ("uid_column"); NULL: nothing.
	 */
	void (*describe)(const Op *op, json_t *obj, json_t *plan_obj);
	/*
	 * What it checks of the plan once connected, on every run (plan_bind):
	 * log each problem and return false.  NULL: nothing.
	 */
	bool (*bind)(const Op *op, const Plan *plan);
	/*
	 * The tables besides the plan's it writes and alters, appended to LIST
	 * as [schema, table] (plan_extra_tables): their owner and their triggers
	 * are checked as the plan's table's.  NULL: none.
	 */
	void (*extra_tables)(const Op *op, const Plan *plan, json_t *list);
	/*
	 * The tables besides the plan's whose every row its phases rewrote,
	 * appended to LIST as regclass text (schema-qualified, quoted): phase3
	 * finalize --repack compacts them with the plan's table.  NULL: none.
	 */
	void (*rewritten_tables)(Run *run, const Op *op, json_t *list);
	/*
	 * The plan against the catalog before phase1 (plan_check.h): log each
	 * problem, return how many.  NULL: the column it names must exist or be
	 * added by an earlier add_column.
	 */
	int (*check_plan)(Run *run, const Op *op);
	/*
	 * The columns of the plan's table OP reads, fills, adds or drops and the
	 * names it creates, for the check of the plan's order and duplicates
	 * before any connection (plan_order.h).  NULL: it reads its "column".
	 */
	void (*uses)(const Op *op, PlanUses *uses);
	/* Its state is named after the plan alone: a plan lists it once. */
	bool one_per_plan;
	const OpHandlers *handlers;
	/* What it adds to status's object OBJ of PHASE, or NULL. */
	void (*status)(Run *run, const Op *op, int phase, json_t *obj);
	bool needs_mapping; /* phase2 apply fills it from --mapping */
	/*
	 * The option groups of cli.h only some operations read (CLI_MAPPING,
	 * CLI_ON_INVALID, CLI_DISCARD_GENERATED): one given for a plan none of
	 * whose operations reads it is refused, not ignored.
	 */
	unsigned options;
	/*
	 * The options it adds to the command line (cli.h), the I'th from 0, NULL
	 * past the last; NULL: none.  Every binary parses them (one whose PhaseBinary
	 * lacks an option's group refuses it), a run reads them with cli_added().
	 */
	const CliOption *(*added_option)(int i);
	/*
	 * What its phase3 apply and finalize drop or swap, in words, for the
	 * question phase3 asks on a terminal before it starts; NULL: nothing
	 */
	const char *apply_drops;
	const char *finalize_drops;
	/*
	 * Every plan has one of it, after its own operations, read from the
	 * plan's top-level key of this name (which may be absent); a plan's
	 * "operations" may not name it.  NULL: a plan names it in "operations".
	 */
	const char *plan_key;
	bool adds_column;               /* its column counts as there for the operations after it */
	bool alters_referencing_tables; /* the tables whose foreign keys point at the key: their owner too */
} OpType;

/*
 * The operations the binary knows, NULL-terminated (ops/op_types.c), given
 * once by its main before anything reads a plan or the command line.
 */
void operations_use(const OpType *const *types);
/* That table (a binary that gave none knows no operation). */
const OpType *const *operations(void);

#endif
