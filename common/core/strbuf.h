/*
 * strbuf.h: a growable string for building SQL text and messages.
 * Allocation failure aborts: there is nothing useful a client can do then.
 */
#ifndef PHASEMIG_STRBUF_H
#define PHASEMIG_STRBUF_H

#include <stddef.h>

typedef struct StrBuf
{
	char *data;
	size_t len;
	size_t cap;
} StrBuf;

void sb_init(StrBuf *sb);
void sb_reset(StrBuf *sb);
void sb_free(StrBuf *sb);
void sb_append(StrBuf *sb, const char *s);
void sb_appendn(StrBuf *sb, const char *s, size_t n);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * SQL text, as fe_utils' fmtId and appendStringLiteral write it: NAME always
 * double-quoted (inner quotes doubled), so any name is one identifier; S as a
 * string literal that means S whatever standard_conforming_strings says
 * (E'...' with backslashes doubled when S holds one).  For text from the
 * database or a plan, which is valid in the connection's encoding.
 */
void sb_append_ident(StrBuf *sb, const char *name);
void sb_append_literal(StrBuf *sb, const char *s);
/* The same into a fresh malloc'd string. */
char *sql_ident(const char *name);
char *sql_literal(const char *s);
/*
 * Returns the string, which the caller now owns; sb is left empty, holding no
 * memory (no sb_free needed; appending to it again allocates anew).
 */
char *sb_steal(StrBuf *sb);

/* printf into a fresh malloc'd string the caller frees. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);
/* S on one line (malloc'd): leading blanks dropped, each run of blanks and newlines one space. */
char *str_one_line(const char *s);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);

#endif
