/*
 * fuzz_csv_header.c: libFuzzer target for csv_header.c, the header check of a
 * CSV mapping and of a Clerk export, on the input as a stream (fmemopen).
 * Run by `make fuzz`.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/csv_header.h"
#include "fuzz_util.h"
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"

/*
 * Check the input against EXPECTED.  An accepted header must leave the stream
 * right after the first line, where the server's COPY starts reading rows.
 */
static void
check(const uint8_t *data, size_t size, const char *expected)
{
	FILE *fp = fmemopen((void *) data, size, "r");
	const uint8_t *nl;
	size_t line_end;
	bool ok;

	if (fp == NULL)
		return; /* size 0 */
	ok = csv_header_is(fp, expected, "a fuzzed CSV", "fuzz.csv");
	nl = memchr(data, '\n', size);
	line_end = nl ? (size_t) (nl - data) + 1 : size;
	if (ok && ftell(fp) != (long) line_end)
		fuzz_fail("an accepted header left the stream elsewhere than after its first line");
	fclose(fp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, CSV_HEADER_MAPPING);
	check(data, size, CSV_HEADER_CLERK);
	return 0;
}
