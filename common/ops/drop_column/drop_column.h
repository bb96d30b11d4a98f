/*
 * drop_column.h: what the two files of drop_column share: the names it
 * builds once per run (the quoted column, its backup table, the trigger
 * keeping that current until the drop), and the phase3 rollback.
 */
#ifndef PHASEMIG_DROP_COLUMN_H
#define PHASEMIG_DROP_COLUMN_H

#include "ops/ops.h"

/* The dropped column's name and those of the objects drop_column makes for it, built once per run. */
typedef struct DropColumnObjects
{
	char *qcol;         /* the column, quoted */
	char *backup;       /* migration_backup."<plan>:drop:<col>" */
	char *keep_fn;      /* migration_backup."<plan>:keep:<col>" */
	char *keep_trigger; /* trigger name, quoted */
} DropColumnObjects;

void drop_objects_init(DropColumnObjects *n, Run *run, const Op *op);
void drop_objects_free(DropColumnObjects *n);

/* phase3 rollback (undrop.c): add the column back and restore all that went with it. */
int drop_column_rollback(Run *run, const Op *op, const Options *opts);

#endif
