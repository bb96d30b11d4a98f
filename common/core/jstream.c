/*
 * jstream.c: a hand-written scanner for the array's punctuation and jansson
 * (json_load_callback with JSON_DISABLE_EOF_CHECK, which stops right after the
 * closing brace) for each element, each at most MAX_ELEMENT_BYTES.
 */
#include "core/jstream.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

/* What one element may take; a user of an identity provider's export takes a few kB. */
#define MAX_ELEMENT_BYTES (4L * 1024 * 1024)

typedef struct ElementReader
{
	FILE *fp;
	long bytes;
	bool too_large;
} ElementReader;

/*
 * jansson's read callback, one byte a call so that nothing past the element's
 * closing brace is consumed; fails once the element passes MAX_ELEMENT_BYTES.
 */
static size_t
read_element_byte(void *buffer, size_t buflen, void *data)
{
	ElementReader *r = data;
	int c;

	(void) buflen;
	if (r->bytes >= MAX_ELEMENT_BYTES)
	{
		r->too_large = true;
		return (size_t) -1;
	}
	if ((c = getc(r->fp)) == EOF)
		return 0;
	*(char *) buffer = (char) c;
	r->bytes++;
	return 1;
}

static int
skip_space(FILE *fp)
{
	int c;

	do
		c = getc(fp);
	while (c != EOF && isspace(c));
	return c;
}

static bool
expect(JStream *js, int want, const char *what)
{
	int c = skip_space(js->fp);

	if (c == want)
		return true;
	snprintf(js->error, sizeof js->error, "byte %ld: expected %s, found %s", ftell(js->fp), what,
			 c == EOF ? "end of file" : "something else");
	return false;
}

bool
jstream_open(JStream *js, const char *path, const char *wrapper_key)
{
	int c;

	memset(js, 0, sizeof *js);
	js->path = path;
	js->fp = fopen(path, "r");
	if (js->fp == NULL)
	{
		snprintf(js->error, sizeof js->error, "%s", strerror(errno));
		return false;
	}
	/* a UTF-8 byte order mark, as some editors write */
	if (getc(js->fp) != 0xEF || getc(js->fp) != 0xBB || getc(js->fp) != 0xBF)
		rewind(js->fp);
	c = skip_space(js->fp);
	if (c == '{' && wrapper_key != NULL)
	{
		char key[64];
		size_t n = 0;

		if (!expect(js, '"', "a key"))
			return false;
		while ((c = getc(js->fp)) != EOF && c != '"' && n < sizeof key - 1)
			key[n++] = (char) c;
		key[n] = '\0';
		if (c != '"' || (strcmp(wrapper_key, "*") != 0 && strcmp(key, wrapper_key) != 0))
		{
			snprintf(js->error, sizeof js->error, "expected the key \"%s\" first, found \"%s\"", wrapper_key, key);
			return false;
		}
		if (!expect(js, ':', "':'") || !expect(js, '[', "'['"))
			return false;
		return true;
	}
	if (c == '[' && (wrapper_key == NULL || strcmp(wrapper_key, "*") == 0))
		return true;
	snprintf(js->error, sizeof js->error, "expected %s at the start of the file",
			 wrapper_key && strcmp(wrapper_key, "*") != 0 ? "an object with an array" : "'['");
	return false;
}

int
jstream_next(JStream *js, json_t **out)
{
	json_error_t jerr;
	ElementReader reader = {.fp = js->fp};
	long start;
	int c;

	*out = NULL;
	if (js->done)
		return 0;
	c = skip_space(js->fp);
	if (js->element > 0)
	{
		if (c == ']')
			goto end_of_array;
		if (c != ',')
		{
			snprintf(js->error, sizeof js->error, "after element %ld: expected ',' or ']', found %s", js->element,
					 c == EOF ? "end of file (the file is truncated)" : "something else");
			return -1;
		}
		c = skip_space(js->fp);
	}
	else if (c == ']')
		goto end_of_array;
	if (c != '{')
	{
		snprintf(js->error, sizeof js->error, "element %ld: expected an object, found %s", js->element + 1,
				 c == EOF ? "end of file (the file is truncated)" : "something else");
		return -1;
	}
	ungetc(c, js->fp);
	start = ftell(js->fp);
	*out = json_load_callback(read_element_byte, &reader, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL && reader.too_large)
	{
		js->oversized = true;
		snprintf(js->error, sizeof js->error, "element %ld (byte %ld) is larger than %ld MB", js->element + 1, start,
				 MAX_ELEMENT_BYTES / (1024 * 1024));
		return -1;
	}
	if (*out == NULL)
	{
		snprintf(js->error, sizeof js->error, "element %ld (byte %ld): %s", js->element + 1,
				 start + (long) jerr.position, jerr.text);
		return -1;
	}
	js->element++;
	return 1;

end_of_array:
	js->done = true;
	/* whatever closes the wrapper object may follow; nothing else may */
	while ((c = skip_space(js->fp)) == '}')
		;
	if (c != EOF)
	{
		snprintf(js->error, sizeof js->error, "unexpected data after the end of the array");
		return -1;
	}
	return 0;
}

void
jstream_close(JStream *js)
{
	if (js->fp)
		fclose(js->fp);
	js->fp = NULL;
}
