/*
 * operation.c: the table of operations the binary gave the engine at
 * startup (operation.h): the engine reads plans against it and never links
 * to the operations themselves, which live a layer above (common/ops/).
 */
#include "engine/operation.h"

#include <stddef.h>

static const OpType *const none[] = {NULL};
static const OpType *const *known = none;

void
operations_use(const OpType *const *types)
{
	known = types ? types : none;
}

const OpType *const *
operations(void)
{
	return known;
}
