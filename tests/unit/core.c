/*
 * core.c: unit tests of common/core: the string buffer, the CSV header check,
 * the secrets of a connection string, the keyset batch statement, SQL
 * quoting, the JSON stream scanner and COPY's escaping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/conninfo_secrets.h"
#include "core/copyin.h"
#include "core/csv_header.h"
#include "core/jstream.h"
#include "core/keyset.h"
#include "core/strbuf.h"
#include "ops/backfill/providers/clerk_firebase/clerk_firebase.h"
#include "unit.h"

static bool
header_ok(const char *text)
{
	FILE *fp = file_with(text, strlen(text));
	bool ok = csv_header_is(fp, CSV_HEADER_MAPPING, "mapping", "test.csv");

	fclose(fp);
	return ok;
}

void
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

void
test_csv_header(void)
{
	char big[6000];

	begin("csv_header_is: the header, with a BOM, CRLF or quotes, is accepted");
	CHECK(header_ok("clerk_user_id,firebase_uid\nu1,f1\n"), "plain header refused");
	CHECK(header_ok("\xEF\xBB\xBF"
					"clerk_user_id,firebase_uid\r\n"),
		  "BOM and CRLF refused");
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

void
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

	begin("conninfo secrets: a command-line argument quoted in a usage error has its password masked");
	{
		static const struct
		{
			const char *arg, *shown;
		} cases[] = {
			{"--dbnme=postgresql://u:Pw123@h/db", "--dbnme=postgresql://u:********@h/db"},
			{"postgresql://u:Pw123@h/db", "postgresql://u:********@h/db"},
			{"host=h password=Pw123", "host=h password=********"},
			{"--dbnme=bogus=1 password=Pw123", "--dbnme=(a connection string, not shown: it may hold a password)"},
			{"host=h password=ab", "(a connection string, not shown: it may hold a password)"},
			{"--batch-size=abc", "--batch-size=abc"},
			{"prod", "prod"},
		};

		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		{
			char *shown = secrets_mask_arg(cases[i].arg);

			CHECK(strcmp(shown, cases[i].shown) == 0, "'%s' shown as '%s'", cases[i].arg, shown);
			free(shown);
		}
	}
	end();
}

void
test_keyset_batch(void)
{
	KeysetBatch k = {.table = "s.t",
					 .key = "id",
					 .steps = "f AS (UPDATE s.t x SET v = 1 FROM b WHERE x.id = b.key "
							  "RETURNING 1)",
					 .changed = "f"};
	const char *tail =
		"), f AS (UPDATE s.t x SET v = 1 FROM b WHERE x.id = b.key RETURNING 1), keyset_counts AS (SELECT (SELECT "
		"count(*) FROM b) AS scanned, (SELECT key::text FROM b ORDER BY key DESC LIMIT 1) AS last_key, (SELECT "
		"count(*) FROM f) AS changed) SELECT scanned, last_key, changed FROM keyset_counts";
	struct
	{
		bool first;
		const char *upper;
		const char *filter;
		bool lock;
		const char *want; /* up to the tail */
	} cases[] = {
		{true, NULL, NULL, false, "WITH b AS (SELECT t.id AS key FROM s.t t ORDER BY t.id LIMIT $1"},
		{true, "'k9'", NULL, false,
		 "WITH b AS (SELECT t.id AS key FROM s.t t WHERE t.id <= 'k9' ORDER BY t.id LIMIT $1"},
		{false, NULL, NULL, true,
		 "WITH b AS (SELECT t.id AS key FROM s.t t WHERE t.id > $2 ORDER BY t.id LIMIT $1 "
		 "FOR NO KEY UPDATE NOWAIT"},
		{false, "'k9'", "t.v IS NULL", false,
		 "WITH b AS (SELECT t.id AS key FROM s.t t WHERE t.id > $2 AND t.id <= "
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
						   "ORDER BY t.key LIMIT $1) RETURNING d.*), u AS (SELECT 1), keyset_counts AS (SELECT";

		CHECK(strncmp(sql, want, strlen(want)) == 0, "take: '%s'", sql);
		free(sql);
	}
	{
		/* a step (the checkpoint) goes after keyset_counts, before the result; another statement takes none */
		char *sql = keyset_batch_sql(&k, true);
		char *with = keyset_with_step(sql, "c AS (SELECT scanned FROM keyset_counts)");
		char *want = str_printf("%.*s, c AS (SELECT scanned FROM keyset_counts)%s",
								(int) (strlen(sql) - strlen(KEYSET_RESULT)), sql, KEYSET_RESULT);

		CHECK(with != NULL && strcmp(with, want) == 0, "step: '%s'", with ? with : "(null)");
		CHECK(keyset_with_step("SELECT 1", "c AS (SELECT 1)") == NULL, "a statement of another shape takes no step");
		free(sql), free(with), free(want);
	}
	end();
}

void
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

/* ---- jstream.c */

/* The elements of the JSON array in TEXT (wrapper key WRAPPER), or the error where it stopped. */
typedef struct Scanned
{
	bool opened;
	int rc;           /* the last jstream_next's */
	long n;           /* elements returned */
	json_t *elements; /* an array of them */
	char error[256];
} Scanned;

static Scanned
scan(const char *text, const char *wrapper)
{
	Scanned s = {.elements = json_array()};
	JStream js;
	json_t *e;

	s.opened = jstream_open(&js, temp_file("scan.json", text), wrapper);
	if (!s.opened)
	{
		snprintf(s.error, sizeof s.error, "%.255s", js.error);
		jstream_close(&js);
		return s;
	}
	while ((s.rc = jstream_next(&js, &e)) == 1)
	{
		json_array_append_new(s.elements, e);
		s.n++;
		if (s.n > 100)
			break;
	}
	if (s.rc < 0)
		snprintf(s.error, sizeof s.error, "%.255s", js.error);
	jstream_close(&js);
	return s;
}

static const char *
elem_string(const Scanned *s, size_t i, const char *key)
{
	const char *v = json_string_value(json_object_get(json_array_get(s->elements, i), key));

	return v ? v : "<none>";
}

void
test_jstream_accepted(void)
{
	Scanned s;
	json_t *deep;

	begin("jstream: a top-level array and the array under a key, element by element");
	s = scan(" [ {\"a\": \"1\"},\n{\"a\": \"2\"} ,{\"a\":\"3\"}]\n", "*");
	CHECK(s.opened && s.rc == 0 && s.n == 3, "bare array with \"*\": opened %d, rc %d, %ld elements", s.opened, s.rc,
		  s.n);
	CHECK(strcmp(elem_string(&s, 2, "a"), "3") == 0, "third element's a is '%s'", elem_string(&s, 2, "a"));
	json_decref(s.elements);
	s = scan("[{\"a\": \"1\"}]", NULL);
	CHECK(s.opened && s.rc == 0 && s.n == 1, "bare array with no key: opened %d, rc %d, %ld elements", s.opened, s.rc,
		  s.n);
	json_decref(s.elements);
	s = scan("{\"users\": [{\"localId\": \"u1\"}, {\"localId\": \"u2\"}]}\n", "users");
	CHECK(s.opened && s.rc == 0 && s.n == 2, "under \"users\": opened %d, rc %d, %ld elements (%s)", s.opened, s.rc,
		  s.n, s.error);
	CHECK(strcmp(elem_string(&s, 1, "localId"), "u2") == 0, "second localId '%s'", elem_string(&s, 1, "localId"));
	json_decref(s.elements);
	s = scan("{\"users\": [{\"localId\": \"u1\"}]}", "*");
	CHECK(s.opened && s.rc == 0 && s.n == 1, "any key with \"*\": opened %d, rc %d, %ld elements", s.opened, s.rc, s.n);
	json_decref(s.elements);
	end();

	begin("jstream: nested objects, and strings holding escapes, brackets and braces, are one element each");
	s = scan(
		"{\"users\": [{\"localId\": \"x]}{,\\\"\\\\\", \"n\": {\"deep\": [1, {\"k\": \"]\"}]}, \"t\": \"\\u00e9\\n[\"},"
		" {\"localId\": \"y\"}]}",
		"users");
	CHECK(s.opened && s.rc == 0 && s.n == 2, "opened %d, rc %d, %ld elements (%s)", s.opened, s.rc, s.n, s.error);
	CHECK(strcmp(elem_string(&s, 0, "localId"), "x]}{,\"\\") == 0, "first localId '%s'", elem_string(&s, 0, "localId"));
	CHECK(strcmp(elem_string(&s, 0, "t"), "\xC3\xA9\n[") == 0, "escapes decoded: '%s'", elem_string(&s, 0, "t"));
	deep = json_array_get(json_object_get(json_object_get(json_array_get(s.elements, 0), "n"), "deep"), 1);
	CHECK(deep && strcmp(json_string_value(json_object_get(deep, "k")), "]") == 0, "the nested object lost its \"]\"");
	CHECK(strcmp(elem_string(&s, 1, "localId"), "y") == 0, "second localId '%s'", elem_string(&s, 1, "localId"));
	json_decref(s.elements);
	end();

	begin("jstream: an empty array has no element and no error");
	s = scan("[]", "*");
	CHECK(s.opened && s.rc == 0 && s.n == 0, "[]: opened %d, rc %d, %ld elements (%s)", s.opened, s.rc, s.n, s.error);
	json_decref(s.elements);
	s = scan("{\"users\": [ ]}\n", "users");
	CHECK(s.opened && s.rc == 0 && s.n == 0, "{\"users\": []}: opened %d, rc %d, %ld elements (%s)", s.opened, s.rc,
		  s.n, s.error);
	json_decref(s.elements);
	end();
}

void
test_jstream_refused(void)
{
	Scanned s;
	const char *missing = "/nonexistent/phasemig-unit/none.json";
	JStream js;

	begin("jstream: truncated input fails at the element it stopped in, with the reason");
	s = scan("{\"users\": [{\"a\": \"1\"}, {\"a\": ", "users");
	CHECK(s.opened && s.rc == -1 && s.n == 1, "cut inside element 2: rc %d, %ld elements", s.rc, s.n);
	CHECK(strstr(s.error, "element 2") != NULL, "error '%s' does not name element 2", s.error);
	json_decref(s.elements);
	s = scan("[{\"a\": \"1\"}", "*");
	CHECK(s.opened && s.rc == -1 && s.n == 1, "cut after element 1: rc %d, %ld elements", s.rc, s.n);
	CHECK(strstr(s.error, "truncated") != NULL, "error '%s' does not say truncated", s.error);
	json_decref(s.elements);
	s = scan("[", "*");
	CHECK(s.opened && s.rc == -1 && strstr(s.error, "truncated") != NULL, "only '[': rc %d, '%s'", s.rc, s.error);
	json_decref(s.elements);
	s = scan("{\"us", "users");
	CHECK(!s.opened, "a cut key opened");
	json_decref(s.elements);
	end();

	begin("jstream: not an array of objects (another shape, another key, a number, data after it) is refused");
	s = scan("{\"a\": 1}", NULL);
	CHECK(!s.opened && strstr(s.error, "expected '['") != NULL, "an object with no key wanted: '%s'", s.error);
	json_decref(s.elements);
	s = scan("{\"people\": []}", "users");
	CHECK(!s.opened && strstr(s.error, "expected the key \"users\" first, found \"people\"") != NULL,
		  "another key: '%s'", s.error);
	json_decref(s.elements);
	s = scan("[{\"a\": 1}]", "users");
	CHECK(!s.opened && strstr(s.error, "an object with an array") != NULL, "a bare array where a key is wanted: '%s'",
		  s.error);
	json_decref(s.elements);
	s = scan("\"users\"", "*");
	CHECK(!s.opened, "a string opened");
	json_decref(s.elements);
	s = scan("[1, 2]", "*");
	CHECK(s.opened && s.rc == -1 && strstr(s.error, "element 1: expected an object") != NULL, "numbers: rc %d, '%s'",
		  s.rc, s.error);
	json_decref(s.elements);
	s = scan("[{\"a\": 1}] [", "*");
	CHECK(s.rc == -1 && strstr(s.error, "unexpected data after the end of the array") != NULL,
		  "data after ']': rc %d, '%s'", s.rc, s.error);
	json_decref(s.elements);
	s = scan("[{\"a\": 1, \"a\": 2}]", "*");
	CHECK(s.rc == -1 && strstr(s.error, "element 1") != NULL, "a duplicate key: rc %d, '%s'", s.rc, s.error);
	json_decref(s.elements);
	CHECK(!jstream_open(&js, missing, "*") && strstr(js.error, "No such file") != NULL, "a missing file: '%.200s'",
		  js.error);
	jstream_close(&js);
	end();
}

/* ---- copyin.c's escaping */

void
test_copyin_escape(void)
{
	static const struct
	{
		const char *in;
		const char *want;
	} cases[] = {
		{"plain", "plain"},
		{"", ""},
		{"a\\b\tc\nd\re", "a\\\\b\\tc\\nd\\re"},
		{"O'Brien \"q\" \xC3\xA9", "O'Brien \"q\" \xC3\xA9"},
		{NULL, "\\N"},
	};
	StrBuf sb;

	begin("copyin_escape: backslash, tab, newline and CR escaped for COPY text, NULL as \\N");
	sb_init(&sb);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
	{
		sb_reset(&sb);
		copyin_escape(&sb, cases[i].in);
		CHECK(strcmp(sb.data, cases[i].want) == 0, "case %zu: '%s', expected '%s'", i, sb.data, cases[i].want);
	}
	sb_free(&sb);
	end();
}
