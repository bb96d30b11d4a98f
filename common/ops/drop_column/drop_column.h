/*
 * drop_column.h: what the two files of drop_column share: the names it
 * builds once per run (the quoted column, its backup table, the trigger
 * keeping that current until the drop), and the phase3 rollback.
 */
#ifndef PHASEMIG_DROP_COLUMN_H
#define PHASEMIG_DROP_COLUMN_H

#include "ops/ops.h"

typedef struct DropNames
{
	char *qcol;         /* the column, quoted */
	char *backup;       /* migration_backup."<plan>:drop:<col>" */
	char *keep_fn;      /* migration_backup."<plan>:keep:<col>" */
	char *keep_trigger; /* trigger name, quoted */
} DropNames;

void drop_names_init(DropNames *n, Run *run, const Op *op);
void drop_names_free(DropNames *n);

/* phase3 rollback (restore.c): add the column back and restore all that went with it. */
int drop_column_rollback(Run *run, const Op *op, const Options *opts);

#endif
