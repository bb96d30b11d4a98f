/*
 * backfill.c: unit tests of common/ops/backfill: the Firebase uid generator,
 * a Firebase export user as a staging row (and its uid's length limit),
 * base64, and the plan's custom claims (read from the plan, and from a
 * Clerk user's metadata into its row's customAttributes).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "engine/plan.h"
#include "ops/backfill/backfill.h"
#include "ops/backfill/providers/clerk_firebase/base64.h"
#include "ops/backfill/providers/clerk_firebase/claims.h"
#include "ops/backfill/providers/clerk_firebase/clerk_user.h"
#include "ops/backfill/providers/clerk_firebase/export_user.h"
#include "ops/backfill/providers/clerk_firebase/firebase_uid.h"
#include "unit.h"

/* Field N (0-based) of a tab-separated COPY row, malloc'd. */
static char *
field(const char *row, int n)
{
	const char *p = row;
	size_t len;

	for (int i = 0; i < n && p; i++)
	{
		p = strchr(p, '\t');
		if (p)
			p++;
	}
	if (p == NULL)
		return xstrdup("<missing>");
	len = strcspn(p, "\t\n");
	{
		char *out = xmalloc(len + 1);

		memcpy(out, p, len);
		out[len] = '\0';
		return out;
	}
}

void
test_firebase_uid(void)
{
	char a[FIREBASE_UID_LENGTH + 1], b[FIREBASE_UID_LENGTH + 1];

	begin("firebase_uid_generate: 28 letters and digits, never the same twice");
	firebase_uid_generate(a);
	firebase_uid_generate(b);
	CHECK(strlen(a) == FIREBASE_UID_LENGTH, "length %zu", strlen(a));
	for (size_t i = 0; i < strlen(a); i++)
		CHECK(isalnum((unsigned char) a[i]), "character %zu of '%s' is not a letter or digit", i, a);
	CHECK(strcmp(a, b) != 0, "two calls gave '%s' both", a);
	end();
}

void
test_export_user(void)
{
	json_error_t err;
	json_t *user = json_loads("{\"localId\": \"fb1\", \"email\": \" Ann@Example.COM \", \"emailVerified\": true, "
							  "\"customAttributes\": \"{\\\"clerk_user_id\\\": \\\"user_1\\\"}\", "
							  "\"displayName\": \"Ann\\tO'Brien\", \"lastSignedInAt\": \"1700000000000\"}",
							  0, &err);
	/* fields of the row (MAPPING_COLUMN_LIST's order) */
	static const struct
	{
		int field;
		const char *name;
		const char *value;
	} want[] = {
		{0, "firebase_uid", "fb1"},
		{1, "clerk_user_id (from customAttributes)", "user_1"},
		{2, "email (kept as exported)", " Ann@Example.COM "},
		{3, "email_norm (NULL: normalised in SQL)", "\\N"},
		{4, "email_verified", "t"},
		{5, "display_name (a tab escaped for COPY)", "Ann\\tO'Brien"},
	};
	StrBuf row;
	long bad = 0;

	begin("export_user_row: uid, Clerk id from customAttributes, email as exported, escaped tab");
	CHECK(user != NULL, "test JSON: %s", err.text);
	sb_init(&row);
	CHECK(user && export_user_row(&row, user, 7, "x.json", &bad), "user refused");
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
	{
		char *f = field(row.data, want[i].field);

		CHECK(strcmp(f, want[i].value) == 0, "%s is '%s', expected '%s'", want[i].name, f, want[i].value);
		free(f);
	}
	CHECK(row.len > 0 && row.data[row.len - 1] == '\n', "row does not end in a newline");
	CHECK(bad == 0, "customAttributes counted as unreadable");
	sb_free(&row);
	json_decref(user);
	end();

	begin("export_user_row: a user without localId is refused, the row unchanged");
	user = json_loads("{\"email\": \"x@example.com\"}", 0, &err);
	sb_init(&row);
	CHECK(user && !export_user_row(&row, user, 1, "x.json", &bad), "accepted");
	CHECK(row.len == 0, "row written: '%s'", row.data);
	sb_free(&row);
	json_decref(user);
	end();
}

void
test_uid_length(void)
{
	StrBuf row, uid;
	json_t *user;
	long bad = 0;

	begin("export_user_row: a uid of 128 characters is accepted in any script, 129 are refused");
	sb_init(&uid);
	for (int i = 0; i < 128; i++)
		sb_append(&uid, "\xC3\xA9"); /* 128 x U+00E9: 256 bytes */
	user = json_pack("{s:s}", "localId", uid.data);
	sb_init(&row);
	CHECK(export_user_row(&row, user, 1, "x.json", &bad), "128 two-byte characters refused");
	json_decref(user);
	sb_reset(&row);
	sb_reset(&uid);
	for (int i = 0; i < 129; i++)
		sb_append(&uid, "u");
	user = json_pack("{s:s}", "localId", uid.data);
	CHECK(!export_user_row(&row, user, 2, "x.json", &bad), "129 characters accepted");
	json_decref(user);
	sb_free(&row);
	sb_free(&uid);
	end();
}

void
test_base64(void)
{
	/* RFC 4648's test vectors, and a byte of every high bit */
	struct
	{
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
		{"\xff\xfe\xfd", "//79"},
	};

	begin("base64_encode: RFC 4648's vectors, padding, high bytes");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
	{
		char *out = base64_encode((const unsigned char *) cases[i].in, strlen(cases[i].in));

		CHECK(strcmp(out, cases[i].out) == 0, "\"%s\": %s, expected %s", cases[i].in, out, cases[i].out);
		free(out);
	}
	end();
}

/* The plan's custom_claims: read in order; each user's customAttributes as the file will hold it. */
void
test_custom_claims(void)
{
	static const char plan_text[] =
		"{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", "
		"\"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": {\"role\": \"public_metadata.role\", "
		"\"plan\": \"private_metadata.billing.plan\", \"prefs\": \"unsafe_metadata\"}}]}";
	static const char user_text[] = "{\"id\": \"user_1\", \"public_metadata\": {\"role\": \"admin\", \"x\": 1}, "
									"\"private_metadata\": {\"billing\": {\"plan\": \"pro\", \"card\": \"4242\"}}, "
									"\"unsafe_metadata\": {\"theme\": \"dark\", \"caf\\u00e9\": [1, null]}}";
	Plan *plan;
	const BackfillSpec *spec;
	json_t *user = json_loads(user_text, 0, NULL), *other;
	const char *bad;
	char *attrs, *col;
	StrBuf row;
	long others = 0;

	begin("custom_claims: read from the plan in order; customAttributes compact, sorted, the Clerk id with them; "
		  "absent or null paths left out; a metadata that is no object refused");
	plan = plan_load(temp_file("claims.json", plan_text));
	CHECK(plan != NULL, "the plan is refused");
	if (plan == NULL)
	{
		end();
		json_decref(user);
		return;
	}
	spec = bf_spec(&plan->ops[0]);
	CHECK(spec->n_claims == 3, "%d claims", spec->n_claims);
	CHECK(spec->n_claims == 3 && strcmp(spec->claims[0].claim, "role") == 0
			  && strcmp(spec->claims[1].path, "private_metadata.billing.plan") == 0
			  && strcmp(spec->claims[2].claim, "prefs") == 0,
		  "the claims are not the plan's, in its order");
	/* every claim found: one line, keys sorted, nested values kept, UTF-8 as it is */
	attrs = claims_attributes(user, "user_1", spec->claims, spec->n_claims, &bad);
	CHECK(bad == NULL && attrs
			  && strcmp(attrs,
						"{\"clerk_user_id\":\"user_1\",\"plan\":\"pro\",\"prefs\":{\"caf\xc3\xa9\":[1,null],"
						"\"theme\":\"dark\"},\"role\":\"admin\"}")
				  == 0,
		  "customAttributes: %s", attrs ? attrs : "NULL");
	free(attrs);
	/* a path the user lacks, or null, is left out; none found: NULL (the Clerk id alone is written) */
	other =
		json_loads("{\"id\": \"user_2\", \"public_metadata\": {\"role\": null}, \"private_metadata\": {\"billing\": "
				   "\"none\"}}",
				   0, NULL);
	attrs = claims_attributes(other, "user_2", spec->claims, spec->n_claims, &bad);
	CHECK(bad == NULL && attrs == NULL, "no claim found: %s", attrs ? attrs : "NULL");
	free(attrs);
	json_decref(other);
	other = json_loads("{\"id\": \"user_3\", \"public_metadata\": {\"role\": \"r\"}}", 0, NULL);
	attrs = claims_attributes(other, "user_3", spec->claims, spec->n_claims, &bad);
	CHECK(bad == NULL && attrs && strcmp(attrs, "{\"clerk_user_id\":\"user_3\",\"role\":\"r\"}") == 0,
		  "one claim found: %s", attrs ? attrs : "NULL");
	free(attrs);
	json_decref(other);
	/* control: a metadata that is not an object is named */
	other = json_loads("{\"id\": \"user_4\", \"private_metadata\": \"pro\"}", 0, NULL);
	attrs = claims_attributes(other, "user_4", spec->claims, spec->n_claims, &bad);
	CHECK(attrs == NULL && bad && strcmp(bad, "private_metadata") == 0, "bad metadata: %s", bad ? bad : "NULL");
	json_decref(other);
	/* the row of pg_temp.phasemig_clerk: customAttributes before the element, escaped for COPY */
	sb_init(&row);
	CHECK(clerk_user_row(&row, user, 7, "u.json", spec->claims, spec->n_claims, &others), "the row is refused");
	col = field(row.data, 13);
	CHECK(strncmp(col, "{\"clerk_user_id\":\"user_1\",\"plan\":\"pro\"", 38) == 0, "the row's customAttributes: %s",
		  col);
	free(col);
	col = field(row.data, 14);
	CHECK(strcmp(col, "7") == 0, "the row's element: %s", col);
	free(col);
	/* without claims the column is NULL (\N) */
	sb_reset(&row);
	CHECK(clerk_user_row(&row, user, 7, "u.json", NULL, 0, &others), "the row without claims is refused");
	col = field(row.data, 13);
	CHECK(strcmp(col, "\\N") == 0, "no claims: %s", col);
	free(col);
	sb_free(&row);
	json_decref(user);
	plan_free(plan);
	end();
}
