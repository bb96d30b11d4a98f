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
	/*
	 * Set after copyin_begin to name the file the rows come from: a failed
	 * COPY is then reported as KIND "FILE", line N: the server's message,
	 * where N is the row the server refused plus LINE_OFFSET (a header).
	 */
	const char *kind;
	const char *file;
	long line_offset;
	bool quiet;           /* set: a failed COPY is not logged; the caller reports it */
	char sqlstate[6];     /* a failed COPY's SQLSTATE, "" if none */
	char error[512];      /* and the server's message */
	long long error_line; /* and the row it failed at (1 = the first), 0 if unknown */
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
