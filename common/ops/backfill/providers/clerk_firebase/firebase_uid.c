/*
 * firebase_uid.c: rejection sampling over random bytes from
 * uuid_generate_random(), so every character is equally likely.
 */
#include "ops/backfill/providers/clerk_firebase/firebase_uid.h"

#include <uuid/uuid.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

void
firebase_uid_generate(char *out)
{
	int n = 0;

	while (n < FIREBASE_UID_LENGTH)
	{
		uuid_t bytes;

		uuid_generate_random(bytes);
		/* bytes 6 and 8 carry the version and variant bits: skip them */
		for (int i = 0; i < 16 && n < FIREBASE_UID_LENGTH; i++)
			if (i != 6 && i != 8 && bytes[i] < 248) /* 248 = 4 * 62 */
				out[n++] = alphabet[bytes[i] % 62];
	}
	out[n] = '\0';
}
