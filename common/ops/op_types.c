/*
 * op_types.c: every operation a plan may name, one line each, in the order
 * the engine looks them up.  A new operation is its file (or folder) under
 * common/ops/ defining its OpType, plus its line here.  The binaries give
 * this table to the engine at startup (operations_use, engine/operation.h).
 */
#include "ops/ops.h"

/* Each line declares the operation's type and lists it. */
#define OPERATIONS(X)                                                                                                  \
	X(op_type_add_column)                                                                                              \
	X(op_type_create_index)                                                                                            \
	X(op_type_backfill_from_mapping)                                                                                   \
	X(op_type_set_not_null)                                                                                            \
	X(op_type_add_unique)                                                                                              \
	X(op_type_check_unique)                                                                                            \
	X(op_type_drop_column)                                                                                             \
	X(op_type_convert_to_uuid)                                                                                         \
	X(op_type_versioned_views)

#define DECLARE(type) extern const OpType type;
#define LIST(type) &type,

OPERATIONS(DECLARE)

const OpType *const op_types[] = {OPERATIONS(LIST) NULL};
