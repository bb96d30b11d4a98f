/*
 * copyin.c: the client side of COPY FROM STDIN (libpq's PQputCopyData,
 * PQputCopyEnd, then PQgetResult for the outcome).
 */
#include "core/copyin.h"

#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/stop.h"

#define FLUSH_AT 65536

bool
copyin_begin(CopyIn *ci, PGconn *conn, const char *copy_sql)
{
	PGresult *res = PQexec(conn, copy_sql);

	*ci = (CopyIn){.conn = conn};
	sb_init(&ci->buf);
	if (PQresultStatus(res) != PGRES_COPY_IN)
	{
		db_report(res, conn, copy_sql);
		PQclear(res);
		sb_free(&ci->buf);
		return false;
	}
	PQclear(res);
	return true;
}

void
copyin_escape(StrBuf *sb, const char *value)
{
	if (value == NULL)
	{
		sb_appendn(sb, "\\N", 2);
		return;
	}
	for (const char *p = value; *p; p++)
	{
		switch (*p)
		{
			case '\\':
				sb_appendn(sb, "\\\\", 2);
				break;
			case '\t':
				sb_appendn(sb, "\\t", 2);
				break;
			case '\n':
				sb_appendn(sb, "\\n", 2);
				break;
			case '\r':
				sb_appendn(sb, "\\r", 2);
				break;
			default:
				sb_appendn(sb, p, 1);
		}
	}
}

void
copyin_field(CopyIn *ci, const char *value)
{
	if (ci->field++ > 0)
		sb_appendn(&ci->buf, "\t", 1);
	copyin_escape(&ci->buf, value);
}

static bool
flush(CopyIn *ci)
{
	if (ci->buf.len == 0)
		return true;
	if (PQputCopyData(ci->conn, ci->buf.data, (int) ci->buf.len) != 1)
	{
		log_error("could not send COPY data: %s", PQerrorMessage(ci->conn));
		return false;
	}
	sb_reset(&ci->buf);
	return true;
}

bool
copyin_row(CopyIn *ci, const char *row, size_t len)
{
	sb_appendn(&ci->buf, row, len);
	ci->field = 0;
	ci->rows++;
	return ci->buf.len < FLUSH_AT || flush(ci);
}

bool
copyin_end_row(CopyIn *ci)
{
	return copyin_row(ci, "\n", 1);
}

bool
copyin_file(CopyIn *ci, FILE *fp)
{
	char chunk[FLUSH_AT];
	size_t n;

	while (!stop_requested() && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		if (PQputCopyData(ci->conn, chunk, (int) n) != 1)
		{
			log_error("could not send COPY data: %s", PQerrorMessage(ci->conn));
			return false;
		}
	return !ferror(fp) && !stop_requested();
}

/* Note RES's SQLSTATE and the row it names ("COPY t, line 3[, column c]: ..."); log it unless quiet. */
static void
copy_failed(CopyIn *ci, const PGresult *res)
{
	const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *at = context ? strstr(context, ", line ") : NULL;

	snprintf(ci->sqlstate, sizeof ci->sqlstate, "%s", db_sqlstate(res));
	db_error_line(res, ci->conn, ci->error, sizeof ci->error);
	ci->error_line = at ? strtoll(at + 7, NULL, 10) : 0;
	if (ci->quiet)
		return;
	/* a lost connection or our own stop is not about the file: told as any failed statement */
	if (ci->file == NULL || PQstatus(ci->conn) != CONNECTION_OK || db_stopped(res))
		db_report(res, ci->conn, NULL);
	else if (ci->error_line > 0)
		log_error("%s \"%s\", line %lld: %s", ci->kind, ci->file, ci->error_line + ci->line_offset, ci->error);
	else
		log_error("%s \"%s\": %s", ci->kind, ci->file, ci->error);
}

bool
copyin_finish(CopyIn *ci, const char *abort_reason)
{
	PGresult *res;
	bool ok = true;

	if (abort_reason == NULL && !flush(ci))
		abort_reason = "could not send data";
	if (PQputCopyEnd(ci->conn, abort_reason) != 1)
		ok = false;
	while ((res = PQgetResult(ci->conn)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			if (abort_reason == NULL)
				copy_failed(ci, res);
			ok = false;
		}
		PQclear(res);
	}
	sb_free(&ci->buf);
	return ok && abort_reason == NULL;
}
