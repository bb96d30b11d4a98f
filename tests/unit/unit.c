/*
 * unit.c: the harness of the unit tests of the functions that need no
 * database (unit.h), and main, which runs the cases of core.c, engine.c and
 * backfill.c.  Prints one line per case, "ok<TAB>NAME" or
 * "FAIL<TAB>NAME<TAB>WHY", for tests/t01_units.sh; exits 1 when any failed.
 * Files the cases read are written to a private temporary directory, removed
 * at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "engine/operation.h"
#include "ops/ops.h"
#include "unit.h"

int unit_failed;
const char *unit_current;
char unit_why[512];

void
begin(const char *name)
{
	unit_current = name;
	unit_why[0] = '\0';
}

void
end(void)
{
	if (unit_why[0])
	{
		printf("FAIL\t%s\t%s\n", unit_current, unit_why);
		unit_failed++;
	}
	else
		printf("ok\t%s\n", unit_current);
}

FILE *
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

/* ---- files in a private temporary directory, removed at the end */

static char temp_dir[64];
static char *temp_paths[64];
static int n_temp_paths;

const char *
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

void
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

char *
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

int
occurrences(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

int
main(void)
{
	log_init("unit");
	log_set_quiet(true);
	/* the operations the plan reader knows, as a binary gives them (operation.h) */
	operations_use(op_types);
	test_strbuf();
	test_firebase_uid();
	test_csv_header();
	test_secrets();
	test_export_user();
	test_uid_length();
	test_keyset_batch();
	test_sql_quoting();
	test_base64();
	test_custom_claims();
	test_jstream_accepted();
	test_jstream_refused();
	test_plan_load_accepted();
	test_plan_load_refused();
	test_cli_parse_accepted();
	test_logs_dir_resolve();
	test_cli_parse_refused();
	test_cli_parse_help();
	test_findings();
	test_copyin_escape();
	test_batch_size_of();
	remove_temp_files();
	return unit_failed ? 1 : 0;
}
