/*
 * jstream.h: reads a JSON array of objects one element at a time, so memory
 * stays flat whatever the file size: either a top-level array, or the array
 * under the single key of a top-level object ({"users": [...]}).
 */
#ifndef PHASEMIG_JSTREAM_H
#define PHASEMIG_JSTREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct JStream
{
	FILE *fp;
	const char *path;
	long element; /* 1-based number of the last element returned */
	bool done;
	bool oversized; /* the error is an element over the size limit */
	char error[512];
} JStream;

/*
 * Open PATH and position before the first element.  wrapper_key is the key
 * expected around the array ("users"), or NULL for a bare array; "*" accepts
 * either.  Returns false with js->error set.
 */
bool jstream_open(JStream *js, const char *path, const char *wrapper_key);
/*
 * Next element: returns 1 with *out (a new reference), 0 at the end of the
 * array, -1 with js->error set on malformed or truncated input.
 */
int jstream_next(JStream *js, json_t **out);
void jstream_close(JStream *js);

#endif
