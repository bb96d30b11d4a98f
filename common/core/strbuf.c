/*
 * strbuf.c: growable strings and the allocation helpers that never return NULL.
 */
#include "core/strbuf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
out_of_memory(void)
{
	fputs("out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		out_of_memory();
	return q;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		out_of_memory();
	return p;
}

void
sb_init(StrBuf *sb)
{
	sb->cap = 256;
	sb->len = 0;
	sb->data = xmalloc(sb->cap);
	sb->data[0] = '\0';
}

void
sb_reset(StrBuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
}

void
sb_free(StrBuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

static void
reserve(StrBuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	if (sb->cap == 0)
		sb->cap = 256; /* after sb_steal or sb_free */
	while (sb->len + extra + 1 > sb->cap)
		sb->cap *= 2;
	sb->data = xrealloc(sb->data, sb->cap);
}

void
sb_appendn(StrBuf *sb, const char *s, size_t n)
{
	reserve(sb, n);
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
sb_append(StrBuf *sb, const char *s)
{
	sb_appendn(sb, s, strlen(s));
}

static void
sb_vprintf(StrBuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int need;

	va_copy(ap2, ap);
	need = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (need < 0)
		return;
	reserve(sb, (size_t) need);
	vsnprintf(sb->data + sb->len, (size_t) need + 1, fmt, ap);
	sb->len += (size_t) need;
}

void
sb_printf(StrBuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

char *
sb_steal(StrBuf *sb)
{
	char *s = sb->data;

	sb->data = NULL;
	sb->len = sb->cap = 0;
	return s;
}

/* Append S with every CH doubled. */
static void
append_doubling(StrBuf *sb, const char *s, char ch)
{
	for (const char *c = s; *c; c++)
	{
		sb_appendn(sb, c, 1);
		if (*c == ch)
			sb_appendn(sb, c, 1);
	}
}

void
sb_append_ident(StrBuf *sb, const char *name)
{
	sb_append(sb, "\"");
	append_doubling(sb, name, '"');
	sb_append(sb, "\"");
}

void
sb_append_literal(StrBuf *sb, const char *s)
{
	if (strchr(s, '\\'))
	{
		/* E'' reads backslashes as escapes however the server is set */
		StrBuf doubled;

		sb_init(&doubled);
		append_doubling(&doubled, s, '\\');
		sb_append(sb, "E'");
		append_doubling(sb, doubled.data, '\'');
		sb_free(&doubled);
	}
	else
	{
		sb_append(sb, "'");
		append_doubling(sb, s, '\'');
	}
	sb_append(sb, "'");
}

/* S through APPEND into a fresh malloc'd string. */
static char *
appended(void (*append)(StrBuf *, const char *), const char *s)
{
	StrBuf sb;

	sb_init(&sb);
	append(&sb, s);
	return sb.data;
}

char *
sql_ident(const char *name)
{
	return appended(sb_append_ident, name);
}

char *
sql_literal(const char *s)
{
	return appended(sb_append_literal, s);
}

char *
str_printf(const char *fmt, ...)
{
	StrBuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	return sb.data;
}

char *
str_one_line(const char *s)
{
	char *line = xmalloc(strlen(s) + 1), *w = line;
	bool blank = false;

	for (; *s; s++)
		if (isspace((unsigned char) *s))
			blank = w != line;
		else
		{
			if (blank)
				*w++ = ' ';
			blank = false;
			*w++ = *s;
		}
	*w = '\0';
	return line;
}
