/*
 * unit.h: the unit tests' harness (unit.c) and the cases of core.c, engine.c
 * and backfill.c.  A case is begin(NAME), CHECKs, end(): end prints
 * "ok<TAB>NAME", or "FAIL<TAB>NAME<TAB>WHY" with the first failed CHECK's
 * message; tests/t01_units.sh counts the cases by their begin( calls.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* the harness's state: cases failed so far, the current case, why it failed ("" if not) */
extern int unit_failed;
extern const char *unit_current;
extern char unit_why[512];

void begin(const char *name);
void end(void);

/* The current case fails with the message (printf's arguments) unless COND; the first failure is kept. */
#define CHECK(cond, ...)                                                                                               \
	do                                                                                                                 \
	{                                                                                                                  \
		if (!(cond) && !unit_why[0])                                                                                   \
			snprintf(unit_why, sizeof unit_why, __VA_ARGS__);                                                          \
	} while (0)

/* A temporary file holding TEXT, rewound for reading. */
FILE *file_with(const char *text, size_t len);

/* A file NAME in a private temporary directory holding TEXT; returns its path (removed and freed at the end). */
const char *temp_file(const char *name, const char *text);

/* What a function writes to stderr (the log's messages), as a string. */
typedef struct Captured
{
	int saved_fd;
	FILE *tmp;
} Captured;

void capture_stderr(Captured *c);
/* The text written since capture_stderr (malloc'd); stderr is restored. */
char *captured_text(Captured *c);

/* How many times NEEDLE stands in HAY. */
int occurrences(const char *hay, const char *needle);

/* core.c */
void test_strbuf(void);
void test_csv_header(void);
void test_secrets(void);
void test_keyset_batch(void);
void test_sql_quoting(void);
void test_jstream_accepted(void);
void test_jstream_refused(void);
void test_copyin_escape(void);

/* engine.c */
void test_plan_load_accepted(void);
void test_plan_load_refused(void);
void test_cli_parse_accepted(void);
void test_logs_dir_resolve(void);
void test_cli_parse_refused(void);
void test_cli_parse_help(void);
void test_findings(void);
void test_batch_size_of(void);

/* backfill.c */
void test_firebase_uid(void);
void test_export_user(void);
void test_uid_length(void);
void test_base64(void);
void test_custom_claims(void);

#endif /* UNIT_H */
