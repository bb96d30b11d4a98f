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
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ops/backfill/base64.h"

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
					 (const char *[]){f->ledger});
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
					   (const char *[]){run_id, run->plan->name}))
			continue;
		/* 2. the database says whether that run's marks committed */
		sql = str_printf("SELECT 1 FROM %s WHERE run_id = $1::uuid", f->ledger);
		committed = has_ledger && db_exists(run->conn, sql, 1, (const char *[]){run_id});
		free(sql);
		partial = str_printf("%s/%s", f->logs_dir, de->d_name);
		final = str_printf("%s/%s" IMPORT_SUFFIX, f->logs_dir, run_id);
		if (committed)
		{
			if (rename(partial, final) == 0)
			{
				sync_dir(f->logs_dir);
				log_info("run %s committed its import file but stopped before naming it: %s is complete", run_id,
						 final);
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

/* The columns of users_sql (import_file.h), found by name. */
typedef struct UserColumns
{
	int uid;
	int email;
	int clerk_user_id;
	int display_name;
	int password_digest;
	int phone_number;
} UserColumns;

static UserColumns
user_columns(const PGresult *res)
{
	return (UserColumns){
		.uid = PQfnumber(res, "firebase_uid"),
		.email = PQfnumber(res, "email"),
		.clerk_user_id = PQfnumber(res, "clerk_user_id"),
		.display_name = PQfnumber(res, "display_name"),
		.password_digest = PQfnumber(res, "password_digest"),
		.phone_number = PQfnumber(res, "phone_number"),
	};
}

/* ROW's value of COL, or NULL when it is NULL or empty (or the query has no such column). */
static const char *
value_of(const PGresult *res, int row, int col)
{
	if (col < 0 || PQgetisnull(res, row, col) || PQgetvalue(res, row, col)[0] == '\0')
		return NULL;
	return PQgetvalue(res, row, col);
}

static void
set_if(json_t *obj, const char *key, const char *value)
{
	if (value)
		json_object_set_new(obj, key, json_string(value));
}

/* One user of a users_sql row as the JSON auth:import reads; counts digests. */
static void
write_user(FILE *fp, const PGresult *res, const UserColumns *c, int i, bool first, long long *hashes)
{
	json_t *u = json_object();
	json_t *attrs = json_object();
	const char *digest = value_of(res, i, c->password_digest);
	const char *phone = value_of(res, i, c->phone_number);
	char *attrs_text, *text;

	set_if(u, "localId", value_of(res, i, c->uid));
	set_if(u, "email", value_of(res, i, c->email));
	set_if(u, "displayName", value_of(res, i, c->display_name));
	if (digest)
	{
		char *b64 = base64_encode((const unsigned char *) digest, strlen(digest));

		json_object_set_new(u, "passwordHash", json_string(b64));
		free(b64);
		(*hashes)++;
	}
	/* Firebase takes phone numbers in E.164 form only */
	if (phone && phone[0] == '+')
		set_if(u, "phoneNumber", phone);
	json_object_set_new(attrs, "clerk_user_id", json_string(PQgetvalue(res, i, c->clerk_user_id)));
	attrs_text = json_dumps(attrs, JSON_COMPACT);
	json_object_set_new(u, "customAttributes", json_string(attrs_text));
	text = json_dumps(u, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fprintf(fp, "%s\n%s", first ? "" : ",", text);
	free(text);
	free(attrs_text);
	json_decref(attrs);
	json_decref(u);
}

/* The ledger's row of this run's file: $1 the run's id, $2 the file's final path. */
static char *
ledger_sql(const ImportFile *f)
{
	return str_printf("INSERT INTO %s (run_id, path, users) SELECT $1::uuid, $2, count(*) "
					  "FROM pg_temp.phasemig_to_import",
					  f->ledger);
}

/*
 * In a transaction it leaves open: mark the users not listed yet, record
 * the file FINAL in the ledger, and write the users to FP.  Returns how many
 * were written; *hashes counts their password digests.
 */
static long long
mark_and_write(Run *run, const ImportFile *f, const char *final, FILE *fp, long long *hashes)
{
	char *ledger = ledger_sql(f);
	char *declare = str_printf("DECLARE phasemig_import NO SCROLL CURSOR FOR %s", f->users_sql);
	long long users = 0;
	int rows;

	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, "CREATE TEMP TABLE phasemig_to_import (firebase_uid text PRIMARY KEY) ON COMMIT DROP");
	db_execp(run->conn, f->mark_sql, 1, (const char *[]){run->run_id});
	db_execp(run->conn, ledger, 2, (const char *[]){run->run_id, final});
	db_exec(run->conn, declare);
	fputs("{\"users\": [", fp);
	do
	{
		PGresult *res = db_query(run->conn, "FETCH 1000 FROM phasemig_import", 0, NULL);
		UserColumns cols = user_columns(res);

		rows = PQntuples(res);
		for (int i = 0; i < rows; i++, users++)
			write_user(fp, res, &cols, i, users == 0, hashes);
		PQclear(res);
	} while (rows == 1000);
	fputs("]}", fp);
	free(ledger);
	free(declare);
	return users;
}

/*
 * Commit the marks; only a commit the server confirmed makes the file final.
 * On failure the partial file goes, unless the connection was lost during
 * COMMIT: then it stays for the next run to resolve.
 */
static bool
commit_marks(Run *run, const char *partial)
{
	PGresult *res = PQexec(run->conn, "COMMIT");
	bool unknown;
	char why[DB_MESSAGE_MAX];

	if (db_ok(res) && PQstatus(run->conn) == CONNECTION_OK)
	{
		PQclear(res);
		return true;
	}
	unknown = PQstatus(run->conn) != CONNECTION_OK;
	log_error("could not commit the users of the import file: %s", db_error_line(res, run->conn, why, sizeof why));
	PQclear(res);
	if (unknown)
	{
		log_detail("the connection was lost during COMMIT: \"%s\" stays under its temporary name", partial);
		log_hint("run phase2 apply again: it renames the file if the commit happened, else lists those users anew");
	}
	else
		remove(partial);
	return false;
}

/* A dry run writes no file: it says which, and prints the statements that would mark its users. */
static int
dry_run_write(Run *run, const ImportFile *f)
{
	char *final = str_printf("%s/RUN-ID" IMPORT_SUFFIX, f->logs_dir);
	char *ledger = ledger_sql(f);

	dryrun_comment("the import file %s would list the generated users no earlier file listed: in one transaction, "
				   "they are marked (and put in this session's temporary table pg_temp.phasemig_to_import) and the "
				   "file recorded, then written and named once that commits ($1: the run's id, $2: the file)",
				   final);
	db_execp(run->conn, f->mark_sql, 1, (const char *[]){run->run_id});
	db_execp(run->conn, ledger, 2, (const char *[]){run->run_id, final});
	free(ledger);
	free(final);
	return EXIT_DONE;
}

int
import_file_write(Run *run, const ImportFile *f)
{
	char *partial, *final;
	FILE *fp;
	long long users = 0, hashes = 0;
	bool written;
	int rc = EXIT_FAILED;

	if (dryrun_on())
		return dry_run_write(run, f);
	partial = str_printf("%s/%s" PARTIAL_SUFFIX, f->logs_dir, run->run_id);
	final = str_printf("%s/%s" IMPORT_SUFFIX, f->logs_dir, run->run_id);
	fp = log_create_private_file(partial);
	if (fp == NULL)
	{
		log_error("could not write \"%s\": %s", partial, strerror(errno));
		goto done;
	}
	/* 1. mark the users not listed yet, record the file and write them under the temporary name */
	users = mark_and_write(run, f, final, fp, &hashes);
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
	/* 2. commit */
	if (!commit_marks(run, partial))
		goto done;
	/* 3. the final name */
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
	return rc;
}
