/*
 * export_user.h: one element of a mapping file (a Firebase Auth export user,
 * or a {clerk_user_id, firebase_uid} pair) as one COPY text row of
 * pg_temp.phasemig_staging, built without a connection.
 */
#ifndef PHASEMIG_EXPORT_USER_H
#define PHASEMIG_EXPORT_USER_H

#include <jansson.h>
#include <stdbool.h>

#include "core/strbuf.h"

/* Fields of a row: MAPPING_COLUMN_LIST (clerk_firebase.h) and then "invalid". */
#define EXPORT_ROW_FIELDS 14

/*
 * Append to ROW the staging row of Firebase user USER, the ELEMENT'th of the
 * file PATH (for messages): escaped for COPY's text format, tab-separated,
 * ending in a newline.  A field of the wrong JSON type or out of range is
 * staged as NULL and named in the row's "invalid" object, for phase2 to
 * refuse (see value_check.c).  An unreadable customAttributes is counted in
 * *bad_attributes (the first 10 warned about) and the user matched by email.
 * Returns false, logged and ROW unchanged, when the user has no usable
 * localId.
 */
bool export_user_row(StrBuf *row, json_t *user, long element, const char *path, long *bad_attributes);

/*
 * Append to ROW the staging row of the pair PAIR of a JSON mapping, as
 * export_user_row does.  Returns false, logged and ROW unchanged, on an
 * unknown key or a missing or unusable id.
 */
bool export_pair_row(StrBuf *row, json_t *pair, long element, const char *path);

#endif
