/*
 * copyin.h: COPY ... FROM STDIN in text format, fed row by row from C with
 * the values escaped, buffered into large PQputCopyData calls.
 */
#ifndef PHASEMIG_COPYIN_H
#define PHASEMIG_COPYIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/strbuf.h"

typedef struct CopyIn
{
	PGconn *conn;
	StrBuf buf;
	long long rows;
	int field;
} CopyIn;

/* Start COPY with the given statement; logs and returns false on failure. */
bool copyin_begin(CopyIn *ci, PGconn *conn, const char *copy_sql);
void copyin_field(CopyIn *ci, const char *value); /* NULL writes \N */
bool copyin_end_row(CopyIn *ci);
/*
 * Append VALUE to SB escaped for COPY's text format (NULL as \N).  Needs no
 * connection: rows can be built, and tested, apart from a COPY.
 */
void copyin_escape(StrBuf *sb, const char *value);
/*
 * Send one whole row built elsewhere (escaped fields, tab-separated, ending
 * in a newline); false (logged) when sending failed.
 */
bool copyin_row(CopyIn *ci, const char *row, size_t len);
/* Finish (abort_reason NULL) or abort the COPY; returns true when it committed rows. */
bool copyin_finish(CopyIn *ci, const char *abort_reason);
/* Send a whole file's bytes (for server-side CSV parsing). */
bool copyin_file(CopyIn *ci, FILE *fp);

#endif
