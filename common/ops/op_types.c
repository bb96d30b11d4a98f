/*
 * op_types.c: every operation a plan may name, one line each.  A new
 * operation is its file (or folder) under common/ops/ defining its OpType,
 * plus its line here.
 */
#include "ops/ops.h"

const OpType *const op_types[] = {&op_type_add_column,   &op_type_create_index,    &op_type_backfill_from_mapping,
								  &op_type_set_not_null, &op_type_add_unique,      &op_type_check_unique,
								  &op_type_drop_column,  &op_type_convert_to_uuid, &op_type_versioned_views, NULL};
