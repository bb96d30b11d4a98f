/*
 * fill.h: phase2's fills of whole tables in keyset batches.  Each table is
 * one unit, or with --jobs N several key ranges; every unit has its own
 * migration_log row and checkpoint, so an interrupted run resumes each range
 * exactly where it stopped, whatever --jobs the next run is given.  The
 * units run on N connections at once (jobs.h: one connection and thread per
 * job, each batch still committed with its checkpoint).
 */
#ifndef PHASEMIG_FILL_H
#define PHASEMIG_FILL_H

#include <stdbool.h>

#include "core/keyset.h"
#include "engine/batch.h"
#include "engine/cli.h"
#include "engine/mlog.h"

typedef struct FillTable
{
	const char *label; /* migration_log operation; ranges are "LABEL [i/n]" */
	/*
	 * The batch statement over the whole table (its upper left NULL): each
	 * unit's is this with the range's end as upper.
	 */
	KeysetBatch batch;
	/*
	 * A migration_log row already begun for this table (backfill: the op's
	 * own row, whose operation is LABEL): used when the table is one unit.
	 */
	long long entry;
	/*
	 * Its batches write only what the sync triggers would leave as written
	 * (batch.h's quiet_triggers).
	 */
	bool quiet_triggers;
	/*
	 * Its updates can be HOT (nothing the batch writes is indexed): the
	 * plan's batch size is then capped at a share of each unit's rows
	 * (fill.c's FILL_HOT_SHARE), which keeps the table from growing.
	 */
	bool hot_updates;
	/* out: over this run's units */
	int batch_cap; /* the smallest unit's cap, 0: none */
	bool resumed;  /* some unit went on from an interrupted run's checkpoint */
	long long rows_total;
	long long rows_done;
	long long changed;
	long batches;
	double seconds;      /* wall time from its first range's start to its last's end */
	double began, ended; /* (fill.c's bookkeeping) */
	double longest_batch_ms;
} FillTable;

/*
 * Fill the tables: plan their units (resume an interrupted run's ranges, or
 * split anew when opts->jobs > 1), record each in migration_log, run them on
 * opts->jobs connections and close their rows.  Returns an exit code; after
 * a failure the other jobs stop at their next batch boundary.
 */
int fill_tables(Run *run, FillTable *tables, int n, const Options *opts);

#endif
