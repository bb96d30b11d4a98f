/*
 * base64.c: standard base64 encoding (RFC 4648, with padding) of bytes,
 * for the password hashes of the import file.
 */
#include "ops/backfill/providers/clerk_firebase/base64.h"

#include "core/strbuf.h"

char *
base64_encode(const unsigned char *in, size_t len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3)
	{
		/* three bytes (missing ones as zero bits) make four characters; '=' pads a short group */
		unsigned v = (unsigned) in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned) in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}
