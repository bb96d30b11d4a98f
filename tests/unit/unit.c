/*
 * unit.c: unit tests of the functions that need no database: the string
 * buffer, the Firebase uid generator, the CSV header check, the secrets of a
 * connection string, a Firebase export user as a staging row, the keyset
 * batch statement, SQL quoting, base64, the JSON stream scanner, the plan
 * reader, the command line, the findings of a check, COPY's escaping and the
 * batch size.  Prints one line per case, "ok<TAB>NAME" or
 * "FAIL<TAB>NAME<TAB>WHY", for tests/t01_units.sh; exits 1 when any failed.
 * Files the cases read are written to a private temporary directory, removed
 * at the end.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/conninfo_secrets.h"
#include "core/copyin.h"
#include "core/csv_header.h"
#include "core/jstream.h"
#include "core/keyset.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/batch.h"
#include "engine/cli.h"
#include "engine/findings.h"
#include "engine/mlog.h"
#include "engine/plan.h"
#include "ops/backfill/base64.h"
#include "ops/backfill/export_user.h"
#include "ops/backfill/firebase_uid.h"
#include "ops/ops.h"

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

#define CHECK(cond, ...)                                                                                               \
	do                                                                                                                 \
	{                                                                                                                  \
		if (!(cond) && !why[0])                                                                                        \
			snprintf(why, sizeof why, __VA_ARGS__);                                                                    \
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

static void
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

static void
test_keyset_batch(void)
{
	KeysetBatch k = {.table = "s.t",
					 .key = "id",
					 .steps = "f AS (UPDATE s.t x SET v = 1 FROM b WHERE x.id = b.key "
							  "RETURNING 1)",
					 .changed = "f"};
	const char *tail =
		"), f AS (UPDATE s.t x SET v = 1 FROM b WHERE x.id = b.key RETURNING 1) SELECT (SELECT "
		"count(*) FROM b) AS scanned, (SELECT key::text FROM b ORDER BY key DESC LIMIT 1) AS last_key, (SELECT "
		"count(*) FROM f) AS changed";
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
		 "FOR NO KEY UPDATE"},
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
						   "ORDER BY t.key LIMIT $1) RETURNING d.*), u AS (SELECT 1) SELECT";

		CHECK(strncmp(sql, want, strlen(want)) == 0, "take: '%s'", sql);
		free(sql);
	}
	end();
}

static void
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

/* ---- files in a private temporary directory, removed at the end */

static char temp_dir[64];
static char *temp_paths[64];
static int n_temp_paths;

/* A file NAME in the temporary directory holding TEXT; returns its path (freed at the end). */
static const char *
temp_file(const char *name, const char *text)
{
	char *path;
	FILE *fp;

	if (temp_dir[0] == '\0')
	{
		snprintf(temp_dir, sizeof temp_dir, "/tmp/phasemig-unit.XXXXXX");
		if (mkdtemp(temp_dir) == NULL)
		{
			perror("mkdtemp");
			exit(2);
		}
	}
	path = str_printf("%s/%s", temp_dir, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) == EOF || fclose(fp) != 0)
	{
		perror(path);
		exit(2);
	}
	if (n_temp_paths == (int) (sizeof temp_paths / sizeof temp_paths[0]))
	{
		fprintf(stderr, "unit: more than %d temporary files\n", n_temp_paths);
		exit(2);
	}
	for (int i = 0; i < n_temp_paths; i++)
		if (strcmp(temp_paths[i], path) == 0)
		{
			free(path);
			return temp_paths[i];
		}
	temp_paths[n_temp_paths++] = path;
	return path;
}

static void
remove_temp_files(void)
{
	for (int i = 0; i < n_temp_paths; i++)
	{
		unlink(temp_paths[i]);
		free(temp_paths[i]);
	}
	n_temp_paths = 0;
	if (temp_dir[0])
		rmdir(temp_dir);
}

/* ---- what a function writes to stderr (the log's messages), as a string */

typedef struct Captured
{
	int saved_fd;
	FILE *tmp;
} Captured;

static void
capture_stderr(Captured *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	c->saved_fd = dup(STDERR_FILENO);
	if (c->tmp == NULL || c->saved_fd < 0 || dup2(fileno(c->tmp), STDERR_FILENO) < 0)
	{
		perror("capture_stderr");
		exit(2);
	}
	log_set_quiet(false);
}

/* The text written since capture_stderr (malloc'd); stderr is restored. */
static char *
captured_text(Captured *c)
{
	StrBuf sb;
	char buf[512];
	size_t n;

	log_set_quiet(true);
	fflush(stderr);
	dup2(c->saved_fd, STDERR_FILENO);
	close(c->saved_fd);
	rewind(c->tmp);
	sb_init(&sb);
	while ((n = fread(buf, 1, sizeof buf, c->tmp)) > 0)
		sb_appendn(&sb, buf, n);
	fclose(c->tmp);
	return sb_steal(&sb);
}

/* How many times NEEDLE stands in HAY. */
static int
occurrences(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
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

static void
test_jstream(void)
{
	Scanned s;
	json_t *deep;
	const char *missing = "/nonexistent/phasemig-unit/none.json";
	JStream js;

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

/* ---- plan.c (plan_load, plan_object_name: no database) */

/* plan_load on TEXT; *messages gets what it logged (malloc'd). */
static Plan *
load_plan_text(const char *text, char **messages)
{
	Captured c;
	Plan *plan;

	capture_stderr(&c);
	plan = plan_load(temp_file("plan.json", text));
	*messages = captured_text(&c);
	return plan;
}

static void
test_plan_load(void)
{
	static const char good[] =
		"{\"name\": \"t-plan_1\", \"description\": \"unit\", \"table\": \"accounts\", \"key\": \"id\",\n"
		" \"settings\": {\"batch_size\": 50, \"lock_timeout_ms\": 250},\n"
		" \"operations\": [\n"
		"  {\"op\": \"add_column\", \"column\": \"c\", \"type\": \"varchar(12)\", \"comment\": \"x\"},\n"
		"  {\"op\": \"create_index\", \"name\": \"ix\", \"columns\": [\"c\", \"d\"], \"unique\": true},\n"
		"  {\"op\": \"backfill_from_mapping\", \"match_column\": \"clerk\", \"set\": {\"uid\": \"localId\", \"dn\": \"displayName\"}},\n"
		"  {\"op\": \"set_not_null\", \"column\": \"uid\", \"reject_empty\": true},\n"
		"  {\"op\": \"check_unique\", \"column\": \"email\", \"ignore_case\": true},\n"
		"  {\"op\": \"drop_column\", \"column\": \"old\"}]}\n";
	static const struct
	{
		const char *what;
		const char *text;
		const char *want; /* in the one message logged */
	} bad[] = {
		{"unknown top-level key",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"kye\": 1, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "top level: unknown key \"kye\""},
		{"unknown key in an operation",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\", \"colum\": \"d\"}]}",
		 "operations[0]: unknown key \"colum\""},
		{"unknown setting",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"settings\": {\"batchsize\": 5}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "settings: unknown key \"batchsize\""},
		{"missing table",
		 "{\"name\": \"p\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "missing key \"table\""},
		{"a name outside [a-z0-9_-]",
		 "{\"name\": \"Bad Name\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "name: must be 1 to 40 characters"},
		{"an identifier over 63 bytes",
		 "{\"name\": \"p\", \"table\": \"t234567890123456789012345678901234567890123456789012345678901234\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "\"table\" is longer than 63 bytes"},
		{"an unknown operation",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"rename_column\", \"column\": \"c\"}]}",
		 "operations[0]: unknown operation \"rename_column\""},
		{"no operations", "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": []}",
		 "\"operations\" must be a non-empty array"},
		{"a setting out of range",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"settings\": {\"batch_size\": 0}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "\"batch_size\" must be an integer from 1 to 1000000"},
		{"a type with a quote",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"add_column\", \"column\": \"c\", \"type\": \"text'\"}]}",
		 "\"type\" must be a type name"},
		{"a backfill without localId",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"dn\": \"displayName\"}}]}",
		 "must name the column that receives \"localId\""},
		{"an unknown Firebase field",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\", \"x\": \"nickname\"}}]}",
		 "unknown Firebase field \"nickname\""},
		{"a string where a boolean goes",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"set_not_null\", \"column\": \"c\", \"reject_empty\": \"yes\"}]}",
		 "\"reject_empty\" must be true or false"},
		{"a backup table name over 63 bytes",
		 "{\"name\": \"p234567890123456789012345678901234567890\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c2345678901234567890\"}]}",
		 "would be longer than 63 bytes"},
		{"not an object", "[1]", "top level: must be a JSON object"},
		{"malformed JSON", "{\"name\": \"p\",\n \"table\": }", "line 2, column"},
		{"a duplicate key", "{\"name\": \"p\", \"name\": \"q\"}", "duplicate object key"},
	};
	char *messages;
	Plan *plan;
	Captured c;

	begin("plan_load: a small plan: names, settings and their defaults, each operation and its label");
	plan = load_plan_text(good, &messages);
	CHECK(plan != NULL, "refused: %s", messages);
	if (plan)
	{
		char *object = plan_object_name(plan, "backfill");

		CHECK(strcmp(plan->name, "t-plan_1") == 0 && strcmp(plan->schema, "public") == 0
				  && strcmp(plan->table, "accounts") == 0 && strcmp(plan->key, "id") == 0,
			  "names: %s %s.%s key %s", plan->name, plan->schema, plan->table, plan->key);
		CHECK(plan->batch_size == 50 && plan->lock_timeout_ms == 250 && plan->ddl_attempts == 30,
			  "settings: batch %d, lock timeout %d, attempts %d", plan->batch_size, plan->lock_timeout_ms,
			  plan->ddl_attempts);
		CHECK(plan->n_ops == 6, "%d operations", plan->n_ops);
		CHECK(plan->n_ops == 6 && plan->ops[0].kind == &op_type_add_column
				  && strcmp(plan->ops[0].label, "add_column c") == 0 && strcmp(plan->ops[0].type, "varchar(12)") == 0,
			  "add_column read as '%s'", plan->n_ops ? plan->ops[0].label : "");
		CHECK(plan->n_ops == 6 && plan->ops[1].kind == &op_type_create_index
				  && strcmp(plan->ops[1].label, "create_index ix") == 0 && plan->ops[1].n_columns == 2
				  && plan->ops[1].unique && strcmp(plan->ops[1].column, "c") == 0,
			  "create_index read as '%s'", plan->n_ops > 1 ? plan->ops[1].label : "");
		CHECK(plan->n_ops == 6 && plan->ops[2].kind == &op_type_backfill_from_mapping && plan->ops[2].n_set == 2
				  && strcmp(plan->ops[2].uid_column, "uid") == 0 && strcmp(plan->ops[2].column, "uid") == 0
				  && plan->ops[2].email_column == NULL,
			  "backfill read as '%s'", plan->n_ops > 2 ? plan->ops[2].label : "");
		CHECK(plan->n_ops == 6 && plan->ops[3].reject_empty && plan->ops[4].ignore_case
				  && plan->ops[5].kind == &op_type_drop_column && plan->ops[5].index == 5
				  && strcmp(plan->ops[5].label, "drop_column old") == 0,
			  "the last three misread");
		CHECK(strcmp(object, "t-plan_1:backfill") == 0, "plan_object_name gave '%s'", object);
		CHECK(messages[0] == '\0', "a valid plan logged: %s", messages);
		free(object);
		plan_free(plan);
	}
	free(messages);
	end();

	begin(
		"plan_load: unknown or missing keys, bad names and values, malformed JSON: refused with one message naming it");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
	{
		plan = load_plan_text(bad[i].text, &messages);
		CHECK(plan == NULL, "%s: accepted", bad[i].what);
		CHECK(strstr(messages, bad[i].want) != NULL, "%s: '%s' not in: %s", bad[i].what, bad[i].want, messages);
		CHECK(occurrences(messages, "error: ") == 1, "%s: not one error line: %s", bad[i].what, messages);
		CHECK(strstr(messages, "plan.json") != NULL, "%s: the file is not named: %s", bad[i].what, messages);
		plan_free(plan);
		free(messages);
	}
	capture_stderr(&c);
	plan = plan_load("/nonexistent/phasemig-unit/plan.json");
	messages = captured_text(&c);
	CHECK(plan == NULL && strstr(messages, "could not read plan \"/nonexistent/phasemig-unit/plan.json\"") != NULL,
		  "a missing file: %s", messages);
	free(messages);
	end();
}

/* ---- cli.c */

static const char *const subcommands[] = {"apply", "rollback", "status", NULL};

/* cli_parse of ARGV (NULL-terminated) for a binary that accepts EXTRA; opts filled. */
static void
parse_args(const char *const *args, unsigned extra, Options *opts)
{
	CliSpec spec = {.subcommands = subcommands, .help = "help\n", .extra = extra};
	char *argv[32];
	int argc = 0;

	while (argc < 31 && args[argc])
	{
		argv[argc] = (char *) args[argc];
		argc++;
	}
	argv[argc] = NULL;
	optind = 0; /* getopt starts over */
	cli_parse(argc, argv, &spec, opts);
}

/*
 * cli_parse of ARGV in a child process, which exits: its exit status, and its
 * stderr in *messages (malloc'd).
 */
static int
parse_exit(const char *const *args, unsigned extra, char **messages)
{
	FILE *tmp = tmpfile();
	StrBuf sb;
	char buf[512];
	size_t n;
	pid_t pid;
	int status = 0;

	if (tmp == NULL)
	{
		perror("tmpfile");
		exit(2);
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
	{
		perror("fork");
		exit(2);
	}
	if (pid == 0)
	{
		Options opts;

		dup2(fileno(tmp), STDOUT_FILENO);
		dup2(fileno(tmp), STDERR_FILENO);
		parse_args(args, extra, &opts);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	rewind(tmp);
	sb_init(&sb);
	while ((n = fread(buf, 1, sizeof buf, tmp)) > 0)
		sb_appendn(&sb, buf, n);
	fclose(tmp);
	*messages = sb_steal(&sb);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void
test_cli_parse(void)
{
	static const char *const full[] = {"phase2",
									   "--plan",
									   "p.json",
									   "apply",
									   "-d",
									   "dbname=x",
									   "--mapping",
									   "m.csv",
									   "--batch-size",
									   "50",
									   "--jobs",
									   "3",
									   "--lock-wait=0",
									   "--lock-timeout",
									   "300",
									   "--generate-missing",
									   "--json",
									   "--on-invalid=regenerate",
									   "--sleep-ms",
									   "0",
									   "--logs-dir",
									   "out",
									   NULL};
	static const char *const least[] = {"phase1", "status", "--plan", "p.json", NULL};
	static const struct
	{
		const char *what;
		const char *args[8];
		unsigned extra;
		const char *want;
	} refused[] = {
		{"a batch size of 0",
		 {"phase2", "apply", "--plan", "p", "--batch-size", "0"},
		 CLI_BATCH,
		 "--batch-size must be an integer from 1 to 1000000, not \"0\""},
		{"a lock timeout that is not a number",
		 {"phase2", "apply", "--plan", "p", "--lock-timeout", "5s"},
		 0,
		 "--lock-timeout must be an integer from 10 to 600000, not \"5s\""},
		{"an option this binary does not take",
		 {"phase1", "apply", "--plan", "p", "--jobs", "2"},
		 CLI_BATCH,
		 "option \"--jobs\" is not accepted here"},
		{"-j on a rollback",
		 {"phase2", "rollback", "--plan", "p", "-j", "2"},
		 CLI_JOBS,
		 "option \"--jobs\" is accepted by apply only"},
		{"more jobs than the ceiling",
		 {"phase2", "apply", "--plan", "p", "--jobs", "100000"},
		 CLI_JOBS,
		 "--jobs must be an integer from 1 to"},
		{"--on-invalid with another word",
		 {"phase2", "apply", "--plan", "p", "--on-invalid=maybe"},
		 CLI_ON_INVALID,
		 "--on-invalid must be \"stop\" or \"regenerate\", not \"maybe\""},
		{"--discard-generated-uids on apply",
		 {"phase1", "apply", "--plan", "p", "--discard-generated-uids"},
		 CLI_DISCARD_GENERATED,
		 "option \"--discard-generated-uids\" is accepted by rollback only"},
		{"--skip-invalid-values on rollback",
		 {"phase2", "rollback", "--plan", "p", "--skip-invalid-values"},
		 CLI_MAPPING,
		 "option \"--skip-invalid-values\" is accepted by apply only"},
		{"an unknown subcommand", {"phase1", "destroy", "--plan", "p"}, 0, "unknown subcommand \"destroy\""},
		{"no subcommand", {"phase1", "--plan", "p"}, 0, "no subcommand given"},
		{"no plan", {"phase1", "apply"}, 0, "no plan given: use --plan FILE"},
		{"an unknown option", {"phase1", "apply", "--plan", "p", "--bogus"}, 0, "unrecognized option \"--bogus\""},
		{"an option without its value", {"phase1", "apply", "--plan"}, 0, "invalid or incomplete option \"--plan\""},
		{"an extra argument",
		 {"phase1", "apply", "--plan", "p", "extra"},
		 0,
		 "too many command-line arguments (first is \"extra\")"},
	};
	Options o;
	char *messages;
	int rc;

	begin("cli_parse: each option's value into Options, wherever it stands; defaults when absent");
	parse_args(full, CLI_MAPPING | CLI_BATCH | CLI_JOBS | CLI_ON_INVALID, &o);
	CHECK(strcmp(o.subcommand, "apply") == 0 && strcmp(o.plan_path, "p.json") == 0 && strcmp(o.dbname, "dbname=x") == 0,
		  "subcommand '%s', plan '%s', dbname '%s'", o.subcommand, o.plan_path, o.dbname);
	CHECK(strcmp(o.mapping, "m.csv") == 0 && o.generate_missing && !o.skip_invalid_values && o.json
			  && o.regenerate_invalid,
		  "mapping '%s', generate_missing %d, json %d, regenerate %d", o.mapping, o.generate_missing, o.json,
		  o.regenerate_invalid);
	CHECK(o.batch_size == 50 && o.jobs == 3 && o.lock_wait_s == 0 && o.lock_timeout_ms == 300 && o.sleep_ms == 0,
		  "batch %d, jobs %d, lock wait %d, lock timeout %d, sleep %d", o.batch_size, o.jobs, o.lock_wait_s,
		  o.lock_timeout_ms, o.sleep_ms);
	CHECK(strcmp(o.logs_dir, "out") == 0, "logs dir '%s'", o.logs_dir);
	parse_args(least, 0, &o);
	CHECK(strcmp(o.subcommand, "status") == 0 && strcmp(o.logs_dir, "logs") == 0 && o.lock_wait_s == 10 && o.jobs == 1
			  && o.batch_size == 0 && o.lock_timeout_ms == 0 && o.mapping == NULL && o.dbname == NULL && !o.json,
		  "defaults: logs '%s', lock wait %d, jobs %d, batch %d", o.logs_dir, o.lock_wait_s, o.jobs, o.batch_size);
	log_init("unit");
	end();

	begin(
		"cli_parse: bad values, misplaced options, a missing plan or subcommand: exit 2 naming the problem, pointing to --help");
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
	{
		rc = parse_exit(refused[i].args, refused[i].extra, &messages);
		CHECK(rc == 2, "%s: exit %d, expected 2 (%s)", refused[i].what, rc, messages);
		CHECK(strstr(messages, refused[i].want) != NULL, "%s: '%s' not in: %s", refused[i].what, refused[i].want,
			  messages);
		CHECK(strstr(messages, "for more information") != NULL, "%s: no pointer to --help: %s", refused[i].what,
			  messages);
		CHECK(strncmp(messages, refused[i].args[0], strlen(refused[i].args[0])) == 0,
			  "%s: not named after the program: %s", refused[i].what, messages);
		free(messages);
	}
	{
		static const char *const help[] = {"phase3", "--help", NULL};
		static const char *const version[] = {"phase3", "--version", NULL};

		rc = parse_exit(help, 0, &messages);
		CHECK(rc == 0 && strcmp(messages, "help\n") == 0, "--help: exit %d, '%s'", rc, messages);
		free(messages);
		rc = parse_exit(version, 0, &messages);
		CHECK(rc == 0 && strcmp(messages, "phase3 (phasemig) " PHASEMIG_VERSION "\n") == 0, "--version: exit %d, '%s'",
			  rc, messages);
		free(messages);
	}
	end();
}

/* ---- findings.c (no database: findings_add, _print, _json, _free) */

static void
test_findings(void)
{
	Findings f;
	Captured c;
	char *printed;
	json_t *j;

	begin("findings: each problem printed with its count and samples, and as JSON; the list grows and is freed");
	findings_init(&f);
	findings_add(&f, "null", "\"public\".\"users\".\"uid\"", 3, "'a', 'b'");
	findings_add(&f, "dependent_view", "view public.v", 1, NULL);
	capture_stderr(&c);
	findings_print(&f);
	printed = captured_text(&c);
	CHECK(strstr(printed, "error: check \"null\" failed for \"public\".\"users\".\"uid\": 3 found\n") != NULL,
		  "printed: %s", printed);
	CHECK(strstr(printed, "samples (up to 10): 'a', 'b'\n") != NULL, "samples not printed: %s", printed);
	CHECK(strstr(printed, "error: check \"dependent_view\" failed for view public.v: 1 found\n") != NULL, "printed: %s",
		  printed);
	CHECK(occurrences(printed, "samples") == 1, "a samples line for a finding without samples: %s", printed);
	free(printed);
	j = findings_json(&f);
	CHECK(json_array_size(j) == 2, "%zu JSON items", json_array_size(j));
	CHECK(json_integer_value(json_object_get(json_array_get(j, 0), "count")) == 3
			  && strcmp(json_string_value(json_object_get(json_array_get(j, 0), "check")), "null") == 0
			  && strcmp(json_string_value(json_object_get(json_array_get(j, 0), "samples")), "'a', 'b'") == 0,
		  "first item wrong");
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(j, 1), "samples")), "") == 0
			  && strcmp(json_string_value(json_object_get(json_array_get(j, 1), "subject")), "view public.v") == 0,
		  "second item wrong");
	json_decref(j);
	for (int i = 0; i < 20; i++)
		findings_add(&f, "x", "y", i, "");
	CHECK(f.n == 22 && f.cap >= 22 && f.items[21].count == 19, "after 22 adds: n %d, cap %d", f.n, f.cap);
	findings_free(&f);
	CHECK(f.n == 0 && f.items == NULL, "not empty after findings_free");
	j = findings_json(&f);
	CHECK(json_array_size(j) == 0, "JSON of no findings has %zu items", json_array_size(j));
	json_decref(j);
	end();
}

/* ---- copyin.c's escaping, batch.c's batch size: no connection needed */

static void
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

static void
test_batch_size_of(void)
{
	Options opts = {0};
	Plan plan = {.batch_size = 1000};

	begin("batch_size_of: --batch-size when given, else the plan's");
	CHECK(batch_size_of(&opts, &plan) == 1000, "without --batch-size: %d", batch_size_of(&opts, &plan));
	opts.batch_size = 7;
	CHECK(batch_size_of(&opts, &plan) == 7, "with --batch-size 7: %d", batch_size_of(&opts, &plan));
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
	test_base64();
	test_jstream();
	test_plan_load();
	test_cli_parse();
	test_findings();
	test_copyin_escape();
	test_batch_size_of();
	remove_temp_files();
	return failed ? 1 : 0;
}
