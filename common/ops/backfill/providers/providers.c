/*
 * providers.c: every identity provider a backfill_from_mapping may name
 * ("provider"), one line each; the first is the default.  A new provider is
 * its folder here, defining its IdProvider (ops/backfill/provider.h), plus
 * its line below.
 */
#include <string.h>

#include "ops/backfill/provider.h"

/* Each line declares the provider's row and lists it (kept one a line: clang-format would join them). */
/* clang-format off */
#define PROVIDERS(X) \
	X(bf_provider_clerk_firebase)
/* clang-format on */

#define DECLARE(provider) extern const IdProvider provider;
#define LIST(provider) &provider,

PROVIDERS(DECLARE)

const IdProvider *const bf_providers[] = {PROVIDERS(LIST) NULL};

const IdProvider *
bf_provider(const char *name)
{
	for (int i = 0; bf_providers[i]; i++)
		if (strcmp(bf_providers[i]->name, name) == 0)
			return bf_providers[i];
	return NULL;
}

const CliOption *
bf_provider_option(int i)
{
	for (int p = 0; bf_providers[p]; p++)
		for (int k = 0; bf_providers[p]->options && bf_providers[p]->options[k].name; k++)
			if (i-- == 0)
				return &bf_providers[p]->options[k];
	return NULL;
}
