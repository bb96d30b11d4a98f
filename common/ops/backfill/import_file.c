/*
 * import_file.c: writes the import file of a phase2 run, in the provider's
 * format (ImportFormat), under a temporary name, commits the marks of its
 * users together with a ledger row, then gives the file its final name;
 * finishes what interrupted runs left.
 */
#include "ops/backfill/import_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/strbuf.h"

/* A file's name until its users are committed: the final name and this. */
#define PARTIAL ".partial"

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
	char *partial_suffix = str_printf("%s" PARTIAL, f->format->suffix);
	const size_t id_len = 36, suffix_len = strlen(partial_suffix);
	DIR *dir = opendir(f->logs_dir);
	struct dirent *de;
	bool has_ledger;

	if (dir == NULL)
	{
		free(partial_suffix);
		return;
	}
	has_ledger = ledger_exists(run, f);
	while ((de = readdir(dir)) != NULL)
	{
		char run_id[37];
		uuid_t parsed;
		char *partial, *final, *sql;
		bool committed;

		if (strlen(de->d_name) != id_len + suffix_len || strcmp(de->d_name + id_len, partial_suffix) != 0)
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
		final = str_printf("%s/%s%s", f->logs_dir, run_id, f->format->suffix);
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
	free(partial_suffix);
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
 * the file FINAL in the ledger, and write the users to FP in the provider's
 * format.  Returns how many were written; *count is what the format counts
 * (password digests) for its import hint.
 */
static long long
mark_and_write(Run *run, const ImportFile *f, const char *final, FILE *fp, long long *count)
{
	char *ledger = ledger_sql(f);
	char *declare = str_printf("DECLARE phasemig_import NO SCROLL CURSOR FOR %s", f->users_sql);
	char *to_import =
		str_printf("CREATE TEMP TABLE phasemig_to_import (%s text PRIMARY KEY) ON COMMIT DROP", f->uid_column);
	long long users = 0;
	int rows;

	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, to_import);
	db_execp(run->conn, f->mark_sql, 1, (const char *[]){run->run_id});
	db_execp(run->conn, ledger, 2, (const char *[]){run->run_id, final});
	db_exec(run->conn, declare);
	fputs(f->format->head, fp);
	do
	{
		PGresult *res = db_query(run->conn, "FETCH 1000 FROM phasemig_import", 0, NULL);

		rows = PQntuples(res);
		for (int i = 0; i < rows; i++, users++)
			f->format->user(fp, res, i, users == 0, count);
		PQclear(res);
	} while (rows == 1000);
	fputs(f->format->tail, fp);
	free(to_import);
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
	char *final = str_printf("%s/RUN-ID%s", f->logs_dir, f->format->suffix);
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
	long long users = 0, count = 0;
	bool written;
	int rc = EXIT_FAILED;

	if (dryrun_on())
		return dry_run_write(run, f);
	final = str_printf("%s/%s%s", f->logs_dir, run->run_id, f->format->suffix);
	partial = str_printf("%s" PARTIAL, final);
	fp = log_create_private_file(partial);
	if (fp == NULL)
	{
		log_error("could not write \"%s\": %s", partial, strerror(errno));
		goto done;
	}
	/* 1. mark the users not listed yet, record the file and write them under the temporary name */
	users = mark_and_write(run, f, final, fp, &count);
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
	f->format->import_hint(final, count);
	rc = EXIT_DONE;
done:
	free(partial);
	free(final);
	return rc;
}
