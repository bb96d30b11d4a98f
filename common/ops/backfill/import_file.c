/*
 * import_file.c: writes the `firebase auth:import` file of a phase2 run under
 * a temporary name, commits the marks of its users together with a ledger
 * row, then gives the file its final name; finishes what interrupted runs left.
 */
#include "ops/backfill/import_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"

#define IMPORT_SUFFIX "-firebase-import.json"
#define PARTIAL_SUFFIX IMPORT_SUFFIX ".partial"

/* Make a rename in DIR durable; a failure only costs durability, so it is ignored. */
static void
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd >= 0)
	{
		(void) fsync(fd);
		close(fd);
	}
}

static bool
ledger_exists(Run *run, const ImportFile *f)
{
	return db_exists(run->conn, "SELECT 1 WHERE pg_catalog.to_regclass($1) IS NOT NULL", 1,
					 (const char *[]) {f->ledger});
}

void
import_file_finish_partials(Run *run, const ImportFile *f)
{
	const size_t id_len = 36, suffix_len = strlen(PARTIAL_SUFFIX);
	DIR *dir = opendir(f->logs_dir);
	struct dirent *de;
	bool has_ledger;

	if (dir == NULL)
		return;
	has_ledger = ledger_exists(run, f);
	while ((de = readdir(dir)) != NULL)
	{
		char run_id[37];
		uuid_t parsed;
		char *partial, *final, *sql;
		bool committed;

		if (strlen(de->d_name) != id_len + suffix_len || strcmp(de->d_name + id_len, PARTIAL_SUFFIX) != 0)
			continue;
		memcpy(run_id, de->d_name, id_len);
		run_id[id_len] = '\0';
		if (uuid_parse(run_id, parsed) != 0)
			continue;
		/* 1. only this plan's runs: another plan's file is not ours to judge */
		if (!db_exists(run->conn, "SELECT 1 FROM public.migration_log WHERE run_id = $1::uuid AND plan = $2", 2,
					   (const char *[]) {run_id, run->plan->name}))
			continue;
		/* 2. the database says whether that run's marks committed */
		sql = str_printf("SELECT 1 FROM %s WHERE run_id = $1::uuid", f->ledger);
		committed = has_ledger && db_exists(run->conn, sql, 1, (const char *[]) {run_id});
		free(sql);
		partial = str_printf("%s/%s", f->logs_dir, de->d_name);
		final = str_printf("%s/%s" IMPORT_SUFFIX, f->logs_dir, run_id);
		if (committed)
		{
			if (rename(partial, final) == 0)
			{
				sync_dir(f->logs_dir);
				log_info("run %s committed its import file but stopped before naming it: %s is complete",
						 run_id, final);
			}
			else
				log_warning("could not rename \"%s\" to \"%s\": %s", partial, final, strerror(errno));
		}
		else if (remove(partial) == 0)
			log_info("removed \"%s\": its run did not commit, so its users count as not listed yet", partial);
		else
			log_warning("could not remove \"%s\": %s", partial, strerror(errno));
		free(partial);
		free(final);
	}
	closedir(dir);
}

static void
set_if(json_t *obj, const char *key, PGresult *res, int row, int col)
{
	if (!PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0])
		json_object_set_new(obj, key, json_string(PQgetvalue(res, row, col)));
}

static char *
base64(const char *in)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(in);
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3)
	{
		unsigned v = (unsigned char) in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned char) in[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char) in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* One user of a users_sql row as the JSON auth:import reads; counts digests. */
static void
write_user(FILE *fp, PGresult *res, int i, bool first, long long *hashes)
{
	json_t *u = json_object();
	json_t *attrs = json_object();
	char *attrs_text, *text;

	set_if(u, "localId", res, i, 0);
	set_if(u, "email", res, i, 1);
	set_if(u, "displayName", res, i, 3);
	if (!PQgetisnull(res, i, 4) && PQgetvalue(res, i, 4)[0])
	{
		char *b64 = base64(PQgetvalue(res, i, 4));

		json_object_set_new(u, "passwordHash", json_string(b64));
		free(b64);
		(*hashes)++;
	}
	if (!PQgetisnull(res, i, 5) && PQgetvalue(res, i, 5)[0] == '+')
		set_if(u, "phoneNumber", res, i, 5);
	json_object_set_new(attrs, "clerk_user_id", json_string(PQgetvalue(res, i, 2)));
	attrs_text = json_dumps(attrs, JSON_COMPACT);
	json_object_set_new(u, "customAttributes", json_string(attrs_text));
	text = json_dumps(u, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fprintf(fp, "%s\n%s", first ? "" : ",", text);
	free(text);
	free(attrs_text);
	json_decref(attrs);
	json_decref(u);
}

int
import_file_write(Run *run, const ImportFile *f)
{
	char *partial = str_printf("%s/%s" PARTIAL_SUFFIX, f->logs_dir, run->run_id);
	char *final = str_printf("%s/%s" IMPORT_SUFFIX, f->logs_dir, run->run_id);
	char *ledger = str_printf("INSERT INTO %s (run_id, path, users) SELECT $1::uuid, $2, count(*) "
							  "FROM pg_temp.phasemig_to_import", f->ledger);
	char *declare = str_printf("DECLARE phasemig_import NO SCROLL CURSOR FOR %s", f->users_sql);
	FILE *fp = log_create_private_file(partial);
	long long users = 0, hashes = 0;
	bool written;
	PGresult *res;
	int rc = EXIT_FAILED;

	if (fp == NULL)
	{
		log_error("could not write \"%s\": %s", partial, strerror(errno));
		goto done;
	}
	/* 1. mark the users not listed yet and record the file, in one transaction */
	fputs("{\"users\": [", fp);
	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, "CREATE TEMP TABLE phasemig_to_import (firebase_uid text PRIMARY KEY) ON COMMIT DROP");
	db_execp(run->conn, f->mark_sql, 1, (const char *[]) {run->run_id});
	db_execp(run->conn, ledger, 2, (const char *[]) {run->run_id, final});
	/* 2. write them under the temporary name */
	db_exec(run->conn, declare);
	for (;;)
	{
		int rows;

		res = db_query(run->conn, "FETCH 1000 FROM phasemig_import", 0, NULL);
		rows = PQntuples(res);
		for (int i = 0; i < rows; i++, users++)
			write_user(fp, res, i, users == 0, &hashes);
		PQclear(res);
		if (rows < 1000)
			break;
	}
	fputs("]}", fp);
	written = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	written = fclose(fp) == 0 && written;
	if (!written || users == 0)
	{
		/* nothing committed: the users stay unmarked and the next run's file lists them */
		if (!written)
			log_error("could not write \"%s\": %s", partial, strerror(errno));
		else
			log_info("no user to import: every generated uid was listed by an earlier import file");
		db_exec(run->conn, "ROLLBACK");
		remove(partial);
		rc = written ? EXIT_DONE : EXIT_FAILED;
		goto done;
	}
	/* 3. commit; only a commit the server confirmed makes the file final */
	res = PQexec(run->conn, "COMMIT");
	if (!db_ok(res) || PQstatus(run->conn) != CONNECTION_OK)
	{
		bool unknown = PQstatus(run->conn) != CONNECTION_OK;

		log_error("could not commit the users of the import file: %s", db_error_line(res, run->conn));
		PQclear(res);
		if (unknown)
		{
			log_detail("the connection was lost during COMMIT: \"%s\" stays under its temporary name", partial);
			log_hint("run phase2 apply again: it renames the file if the commit happened, else lists those users anew");
		}
		else
			remove(partial);
		goto done;
	}
	PQclear(res);
	/* 4. the final name */
	if (rename(partial, final) != 0)
	{
		log_error("could not rename \"%s\" to \"%s\": %s", partial, final, strerror(errno));
		log_hint("the next phase2 apply renames it");
		goto done;
	}
	sync_dir(f->logs_dir);
	log_info("wrote %lld users with new uids to %s", users, final);
	log_hint("import them with: firebase auth:import %s%s", final, hashes > 0 ? " --hash-algo=BCRYPT --rounds=10" : "");
	rc = EXIT_DONE;
done:
	free(partial);
	free(final);
	free(ledger);
	free(declare);
	return rc;
}
