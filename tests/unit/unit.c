/*
 * unit.c: unit tests of the functions that need no database: the string
 * buffer, the Firebase uid generator, the CSV header check, the secrets of a
 * connection string, a Firebase export user as a staging row, the keyset
 * batch statement and SQL quoting.  Prints one line per case, "ok<TAB>NAME" or
 * "FAIL<TAB>NAME<TAB>WHY", for tests/t01_units.sh; exits 1 when any failed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/conninfo_secrets.h"
#include "core/csv_header.h"
#include "core/keyset.h"
#include "ops/backfill/export_user.h"
#include "ops/backfill/firebase_uid.h"
#include "core/log.h"
#include "core/strbuf.h"

static int failed;
static const char *current;
static char why[512];

static void
begin(const char *name)
{
	current = name;
	why[0] = '\0';
}

static void
end(void)
{
	if (why[0])
	{
		printf("FAIL\t%s\t%s\n", current, why);
		failed++;
	}
	else
		printf("ok\t%s\n", current);
}

#define CHECK(cond, ...) \
	do { \
		if (!(cond) && !why[0]) \
			snprintf(why, sizeof why, __VA_ARGS__); \
	} while (0)

/* A temporary file holding TEXT, rewound for reading. */
static FILE *
file_with(const char *text, size_t len)
{
	FILE *fp = tmpfile();

	if (fp == NULL)
	{
		perror("tmpfile");
		exit(2);
	}
	fwrite(text, 1, len, fp);
	rewind(fp);
	return fp;
}

static bool
header_ok(const char *text)
{
	FILE *fp = file_with(text, strlen(text));
	bool ok = csv_header_is(fp, CSV_HEADER_MAPPING, "mapping", "test.csv");

	fclose(fp);
	return ok;
}

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

static void
test_strbuf(void)
{
	StrBuf sb;
	char *s;

	begin("strbuf: appends and printf grow past any initial size");
	sb_init(&sb);
	for (int i = 0; i < 5000; i++)
		sb_printf(&sb, "%d,", i % 10);
	CHECK(sb.len == 10000, "length %zu, expected 10000", sb.len);
	CHECK(strlen(sb.data) == sb.len, "data and len disagree");
	sb_reset(&sb);
	sb_appendn(&sb, "abcdef", 3);
	CHECK(strcmp(sb.data, "abc") == 0, "sb_appendn gave '%s'", sb.data);
	sb_free(&sb);
	s = str_printf("%s-%05d", "x", 42);
	CHECK(strcmp(s, "x-00042") == 0, "str_printf gave '%s'", s);
	free(s);
	end();
}

static void
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

static void
test_csv_header(void)
{
	char big[6000];

	begin("csv_header_is: the header, with a BOM, CRLF or quotes, is accepted");
	CHECK(header_ok("clerk_user_id,firebase_uid\nu1,f1\n"), "plain header refused");
	CHECK(header_ok("\xEF\xBB\xBF" "clerk_user_id,firebase_uid\r\n"), "BOM and CRLF refused");
	CHECK(header_ok("\"clerk_user_id\",\"firebase_uid\"\n"), "quoted header refused");
	end();

	begin("csv_header_is: another header, an empty file or a header over 4 kB is refused");
	CHECK(!header_ok("firebase_uid,clerk_user_id\n"), "swapped columns accepted");
	CHECK(!header_ok(""), "empty file accepted");
	memset(big, 'a', sizeof big - 2);
	memcpy(big, "clerk_user_id,firebase_uid", 26);
	big[sizeof big - 2] = '\n';
	big[sizeof big - 1] = '\0';
	CHECK(!header_ok(big), "a 6 kB first line accepted");
	end();
}

static void
test_secrets(void)
{
	Secrets s = {0};
	char *scrubbed;

	begin("conninfo secrets: a URI's password is noted and masked in messages");
	CHECK(is_connection_string("postgresql://app:s3cr%40t@db.example/prod"), "URI not seen as a connection string");
	CHECK(!is_connection_string("prod"), "a bare database name taken for a connection string");
	CHECK(secrets_collect("postgresql://app:s3cr%40t@db.example/prod", &s), "URI not parsed");
	scrubbed = secrets_scrub("password authentication failed: s3cr@t given", &s);
	CHECK(strstr(scrubbed, "s3cr@t") == NULL, "password still in '%s'", scrubbed);
	free(scrubbed);
	secrets_free(&s);
	end();

	begin("conninfo secrets: key=value with a quoted password; an unparsable string is refused");
	memset(&s, 0, sizeof s);
	CHECK(secrets_collect("host=db dbname=prod password='a b'", &s), "quoted password not parsed");
	scrubbed = secrets_scrub("it was a b indeed", &s);
	CHECK(strstr(scrubbed, "a b") == NULL, "password still in '%s'", scrubbed);
	free(scrubbed);
	secrets_free(&s);
	memset(&s, 0, sizeof s);
	CHECK(!secrets_collect("host=db password=a b", &s), "an unquoted blank accepted");
	secrets_free(&s);
	end();
}

static void
test_export_user(void)
{
	json_error_t err;
	json_t *user = json_loads("{\"localId\": \"fb1\", \"email\": \" Ann@Example.COM \", \"emailVerified\": true, "
							  "\"customAttributes\": \"{\\\"clerk_user_id\\\": \\\"user_1\\\"}\", "
							  "\"displayName\": \"Ann\\tO'Brien\", \"lastSignedInAt\": \"1700000000000\"}", 0, &err);
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

static void
test_uid_length(void)
{
	StrBuf row, uid;
	json_t *user;
	long bad = 0;

	begin("export_user_row: a uid of 128 characters is accepted in any script, 129 are refused");
	sb_init(&uid);
	for (int i = 0; i < 128; i++)
		sb_append(&uid, "\xC3\xA9");		/* 128 x U+00E9: 256 bytes */
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

static void
test_keyset_batch(void)
{
	KeysetBatch k = {.table = "s.t", .key = "id", .steps = "f AS (UPDATE s.t x SET v = 1 FROM b WHERE x.id = b.key "
						 "RETURNING 1)", .changed = "f"};
	const char *tail = "), f AS (UPDATE s.t x SET v = 1 FROM b WHERE x.id = b.key RETURNING 1) SELECT (SELECT "
		"count(*) FROM b) AS scanned, (SELECT key::text FROM b ORDER BY key DESC LIMIT 1) AS last_key, (SELECT "
		"count(*) FROM f) AS changed";
	struct
	{
		bool first;
		const char *upper;
		const char *filter;
		bool lock;
		const char *want;		/* up to the tail */
	} cases[] = {
		{true, NULL, NULL, false, "WITH b AS (SELECT t.id AS key FROM s.t t ORDER BY t.id LIMIT $1"},
		{true, "'k9'", NULL, false, "WITH b AS (SELECT t.id AS key FROM s.t t WHERE t.id <= 'k9' ORDER BY t.id LIMIT $1"},
		{false, NULL, NULL, true, "WITH b AS (SELECT t.id AS key FROM s.t t WHERE t.id > $2 ORDER BY t.id LIMIT $1 "
			"FOR NO KEY UPDATE"},
		{false, "'k9'", "t.v IS NULL", false, "WITH b AS (SELECT t.id AS key FROM s.t t WHERE t.id > $2 AND t.id <= "
			"'k9' AND (t.v IS NULL) ORDER BY t.id LIMIT $1"},
	};

	begin("keyset_batch_sql: the shapes of a batch over a key range");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
	{
		char *want = str_printf("%s%s", cases[i].want, tail);
		char *sql;

		k.upper = cases[i].upper;
		k.filter = cases[i].filter;
		k.lock = cases[i].lock;
		sql = keyset_batch_sql(&k, cases[i].first);
		CHECK(strcmp(sql, want) == 0, "case %zu: '%s', expected '%s'", i, sql, want);
		free(sql);
		free(want);
	}
	{
		KeysetBatch take = {.table = "bk", .key = "key", .take = true, .steps = "u AS (SELECT 1)", .changed = "u"};
		char *sql = keyset_batch_sql(&take, false);
		const char *want = "WITH b AS (DELETE FROM bk d WHERE d.key IN (SELECT t.key FROM bk t WHERE t.key > $2 "
			"ORDER BY t.key LIMIT $1) RETURNING d.*), u AS (SELECT 1) SELECT";

		CHECK(strncmp(sql, want, strlen(want)) == 0, "take: '%s'", sql);
		free(sql);
	}
	end();
}

static void
test_sql_quoting(void)
{
	struct
	{
		const char *in, *ident, *literal;
	} cases[] = {
		{"users", "\"users\"", "'users'"},
		{"a\"b", "\"a\"\"b\"", "'a\"b'"},
		{"it's", "\"it's\"", "'it''s'"},
		{"c:\\x'", "\"c:\\x'\"", "E'c:\\\\x'''"},
		{"", "\"\"", "''"},
	};

	begin("sql_ident, sql_literal: any text is one identifier, one literal");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
	{
		char *id = sql_ident(cases[i].in);
		char *lit = sql_literal(cases[i].in);

		CHECK(strcmp(id, cases[i].ident) == 0, "ident %zu: %s, expected %s", i, id, cases[i].ident);
		CHECK(strcmp(lit, cases[i].literal) == 0, "literal %zu: %s, expected %s", i, lit, cases[i].literal);
		free(id);
		free(lit);
	}
	end();
}

int
main(void)
{
	log_init("unit");
	log_set_quiet(true);
	test_strbuf();
	test_firebase_uid();
	test_csv_header();
	test_secrets();
	test_export_user();
	test_uid_length();
	test_keyset_batch();
	test_sql_quoting();
	return failed ? 1 : 0;
}
