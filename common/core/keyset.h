/*
 * keyset.h: the one shape of every batch statement phasemig runs (phase2's
 * fills, the rollbacks' restores): take the next $1 rows of a table in key
 * order after the last key of the previous batch ($2), do the batch's work
 * on them, and return one row (scanned bigint, last_key text, changed
 * bigint, by those names), which engine/batch.c's loop checkpoints.  Pure text: no database.
 */
#ifndef PHASEMIG_KEYSET_H
#define PHASEMIG_KEYSET_H

#include <stdbool.h>

typedef struct KeysetBatch
{
	const char *table;   /* quoted, qualified; aliased t */
	const char *key;     /* t's quoted key column: b.key */
	const char *columns; /* more columns of b (", t.x AS x, ..."), or NULL */
	const char *filter;  /* a condition on t besides the key range, or NULL */
	const char *upper;   /* a SQL literal: the range's last key, or NULL */
	/*
	 * FOR NO KEY UPDATE NOWAIT the batch's rows: the batch never waits on a
	 * row lock an application transaction holds (so it is never the reason
	 * that transaction deadlocks); the statement fails with 55P03 instead.
	 */
	bool lock;
	/*
	 * Take the batch's rows out of the table (DELETE ... RETURNING, all
	 * columns): a backup drained by a restore.
	 */
	bool take;
	/* The batch's work: CTEs over b, "u AS (...), w AS (...)" */
	const char *steps;
	const char *changed; /* the CTE in steps whose rows count as changed */
} KeysetBatch;

/*
 * The statement's end: its one row, read from the CTE keyset_counts (scanned,
 * last_key, changed), which a step added after it may read too.
 */
#define KEYSET_RESULT " SELECT scanned, last_key, changed FROM keyset_counts"

/*
 * The statement of the first batch (first: $1 = batch size) or of the next
 * ones ($1 = batch size, $2 = the previous batch's last key).  Malloc'd.
 */
char *keyset_batch_sql(const KeysetBatch *k, bool first);

/*
 * Both statements of one key range's loop: SQL[0] the next batches', SQL[1]
 * the first's, K's with the range's last key UPPER (text; NULL: to the
 * table's end) as its upper bound.  Malloc'd.
 */
void keyset_range_sql(const KeysetBatch *k, const char *upper, char *sql[2]);

/*
 * SQL, a statement of keyset_batch_sql, with one more CTE STEP ("name AS
 * (...)", which may read keyset_counts) run in the same statement: malloc'd,
 * or NULL when SQL is not of that shape.
 */
char *keyset_with_step(const char *sql, const char *step);

#endif
