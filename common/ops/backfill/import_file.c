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

/*
 * NAME's run id when it is a partial import file of the format F
 * (RUN-ID<suffix>...<extension>.partial), in RUN_ID (37 bytes).
 */
static bool
partial_of(const ImportFile *f, const char *name, char *run_id)
{
	const size_t id_len = 36, len = strlen(name), suffix_len = strlen(f->format->suffix);
	char *tail = str_printf("%s" PARTIAL, f->format->extension);
	size_t tail_len = strlen(tail);
	uuid_t parsed;
	bool ok = len >= id_len + suffix_len + tail_len && strncmp(name + id_len, f->format->suffix, suffix_len) == 0
		&& strcmp(name + len - tail_len, tail) == 0;

	free(tail);
	if (!ok)
		return false;
	memcpy(run_id, name, id_len);
	run_id[id_len] = '\0';
	return uuid_parse(run_id, parsed) == 0;
}

void
import_file_finish_partials(Run *run, const ImportFile *f)
{
	DIR *dir = opendir(f->logs_dir);
	struct dirent *de;
	bool has_ledger;

	if (dir == NULL)
		return;
	has_ledger = ledger_exists(run, f);
	while ((de = readdir(dir)) != NULL)
	{
		char run_id[37];
		char *partial, *final, *sql;
		bool committed;

		if (!partial_of(f, de->d_name, run_id))
			continue;
		/* 1. only this plan's runs: another plan's file is not ours to judge */
		if (!db_exists(run->conn, "SELECT 1 FROM public.migration_log WHERE run_id = $1::uuid AND plan = $2", 2,
					   (const char *[]){run_id, run->plan->name}))
			continue;
		/* 2. the database says whether that run's marks committed (every file of a run commits at once) */
		sql = str_printf("SELECT 1 FROM %s WHERE run_id = $1::uuid", f->ledger);
		committed = has_ledger && db_exists(run->conn, sql, 1, (const char *[]){run_id});
		free(sql);
		partial = str_printf("%s/%s", f->logs_dir, de->d_name);
		final = str_printf("%s/%.*s", f->logs_dir, (int) (strlen(de->d_name) - strlen(PARTIAL)), de->d_name);
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

/* The ledger's row of this run's files: $1 the run's id, $2 their final names (a glob: one per group). */
static char *
ledger_sql(const ImportFile *f)
{
	return str_printf("INSERT INTO %s (run_id, path, users) SELECT $1::uuid, $2, count(*) "
					  "FROM pg_temp.phasemig_to_import",
					  f->ledger);
}

/* The files of one run, one per group of users. */
#define MAX_GROUPS 64
typedef struct OneFile
{
	char *group, *partial, *final;
	FILE *fp;
	long long users;
} OneFile;

typedef struct RunFiles
{
	OneFile file[MAX_GROUPS];
	int n;
	bool failed; /* a file could not be created or written: logged */
} RunFiles;

/* A group's name as the provider gave it, or "other" when it would not be safe in a file name. */
static const char *
group_name(const PGresult *res, int row)
{
	int col = PQfnumber(res, "import_group");
	const char *g = col >= 0 && !PQgetisnull(res, row, col) ? PQgetvalue(res, row, col) : "";

	if (g[0] == '\0' || strlen(g) > 40 || strspn(g, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(g))
		return "other";
	return g;
}

/* The file of GROUP, opened at its first user (the rows come ordered by group); NULL when it cannot be. */
static OneFile *
file_of(const ImportFile *f, const char *run_id, RunFiles *rf, const char *group)
{
	OneFile *one;

	for (int i = 0; i < rf->n; i++)
		if (strcmp(rf->file[i].group, group) == 0)
			return &rf->file[i];
	if (rf->n == MAX_GROUPS)
	{
		log_error("more than %d import files in one run", MAX_GROUPS);
		rf->failed = true;
		return NULL;
	}
	one = &rf->file[rf->n];
	one->group = xstrdup(group);
	one->final = str_printf("%s/%s%s-%s%s", f->logs_dir, run_id, f->format->suffix, group, f->format->extension);
	one->partial = str_printf("%s" PARTIAL, one->final);
	one->users = 0;
	if ((one->fp = log_create_private_file(one->partial)) == NULL)
	{
		log_error("could not write \"%s\": %s", one->partial, strerror(errno));
		rf->failed = true;
		free(one->group);
		free(one->final);
		free(one->partial);
		return NULL;
	}
	fputs(f->format->head, one->fp);
	rf->n++;
	return one;
}

/* Close every file, durably; false (logged) when one could not be written. */
static bool
close_files(const ImportFile *f, RunFiles *rf)
{
	bool ok = !rf->failed;

	for (int i = 0; i < rf->n; i++)
	{
		OneFile *one = &rf->file[i];
		bool written;

		fputs(f->format->tail, one->fp);
		written = fflush(one->fp) == 0 && fsync(fileno(one->fp)) == 0;
		written = fclose(one->fp) == 0 && written;
		if (!written)
			log_error("could not write \"%s\": %s", one->partial, strerror(errno));
		ok = ok && written;
	}
	return ok;
}

static void
free_files(RunFiles *rf, bool remove_partials)
{
	for (int i = 0; i < rf->n; i++)
	{
		if (remove_partials)
			remove(rf->file[i].partial);
		free(rf->file[i].group);
		free(rf->file[i].partial);
		free(rf->file[i].final);
	}
	rf->n = 0;
}

/*
 * In a transaction it leaves open: mark the users not listed yet, record the
 * run's files in the ledger and write the users, each to its group's file,
 * in the provider's format.  Returns how many
 * were written (rf->failed when a file could not be).
 */
static long long
mark_and_write(Run *run, const ImportFile *f, RunFiles *rf)
{
	char *ledger = ledger_sql(f);
	char *names = str_printf("%s/%s%s-*%s", f->logs_dir, run->run_id, f->format->suffix, f->format->extension);
	char *declare = str_printf("DECLARE phasemig_import NO SCROLL CURSOR FOR %s", f->users_sql);
	char *to_import =
		str_printf("CREATE TEMP TABLE phasemig_to_import (%s text PRIMARY KEY) ON COMMIT DROP", f->uid_column);
	long long users = 0;
	int rows;

	db_exec(run->conn, "BEGIN");
	db_exec(run->conn, to_import);
	db_execp(run->conn, f->mark_sql, 1, (const char *[]){run->run_id});
	db_execp(run->conn, ledger, 2, (const char *[]){run->run_id, names});
	db_exec(run->conn, declare);
	do
	{
		PGresult *res = db_query(run->conn, "FETCH 1000 FROM phasemig_import", 0, NULL);

		rows = PQntuples(res);
		for (int i = 0; i < rows && !rf->failed; i++, users++)
		{
			OneFile *one = file_of(f, run->run_id, rf, group_name(res, i));

			if (one)
				f->format->user(one->fp, res, i, one->users++ == 0);
		}
		PQclear(res);
	} while (rows == 1000 && !rf->failed);
	free(to_import);
	free(declare);
	free(ledger);
	free(names);
	return users;
}

/*
 * Commit the marks; only a commit the server confirmed makes the files final.
 * On failure the partial files go, unless the connection was lost during
 * COMMIT: then they stay for the next run to resolve.
 */
static bool
commit_marks(Run *run, RunFiles *rf)
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
	log_error("could not commit the users of the import files: %s", db_error_line(res, run->conn, why, sizeof why));
	PQclear(res);
	if (unknown)
	{
		log_detail("the connection was lost during COMMIT: the files stay under their temporary names (*" PARTIAL ")");
		log_hint("run phase2 apply again: it renames the files if the commit happened, else lists those users anew");
	}
	free_files(rf, !unknown);
	return false;
}

/* A dry run writes no file: it says which, and prints the statements that would mark its users. */
static int
dry_run_write(Run *run, const ImportFile *f)
{
	char *final = str_printf("%s/RUN-ID%s-*%s", f->logs_dir, f->format->suffix, f->format->extension);
	char *ledger = ledger_sql(f);

	dryrun_comment("the import files %s (one per hash algorithm) would list the generated users no earlier file "
				   "listed: in one transaction, they are marked (and put in this session's temporary table "
				   "pg_temp.phasemig_to_import) and the files recorded, then written and named once that commits "
				   "($1: the run's id, $2: the files)",
				   final);
	db_execp(run->conn, f->mark_sql, 1, (const char *[]){run->run_id});
	db_execp(run->conn, ledger, 2, (const char *[]){run->run_id, final});
	free(ledger);
	free(final);
	return EXIT_DONE;
}

int
import_file_write(Run *run, ImportFile *f)
{
	RunFiles rf = {.n = 0};
	long long users;

	f->files = NULL;
	if (dryrun_on())
		return dry_run_write(run, f);
	/* 1. mark the users not listed yet, record the files, write them under temporary names, a file per group */
	users = mark_and_write(run, f, &rf);
	if (!close_files(f, &rf) || users == 0)
	{
		/* nothing committed: the users stay unmarked and the next run's files list them */
		bool failed = rf.failed || users > 0;

		if (!failed)
			log_info("no user to import: every generated uid was listed by an earlier import file");
		db_exec(run->conn, "ROLLBACK");
		free_files(&rf, true);
		return failed ? EXIT_FAILED : EXIT_DONE;
	}
	/* 2. commit */
	if (!commit_marks(run, &rf))
		return EXIT_FAILED;
	/* 3. the final names, each with the command that imports it */
	f->files = json_array();
	for (int i = 0; i < rf.n; i++)
	{
		OneFile *one = &rf.file[i];
		char *command, *hint;
		json_t *entry;

		if (rename(one->partial, one->final) != 0)
		{
			log_error("could not rename \"%s\" to \"%s\": %s", one->partial, one->final, strerror(errno));
			log_hint("the next phase2 apply renames it");
			free_files(&rf, false);
			return EXIT_FAILED;
		}
		command = f->format->import_command(one->final, one->group);
		entry = json_pack("{s:s, s:s, s:I, s:s}", "file", one->final, "group", one->group, "users",
						  (json_int_t) one->users, "command", command);
		hint = str_printf("import them with: %s", command);
		log_info("wrote %lld users with new uids to %s", one->users, one->final);
		/* with --log-format=json the line carries the file, its users and command as figures */
		log_hint_figures(hint, json_deep_copy(entry));
		json_array_append_new(f->files, entry);
		free(hint);
		free(command);
	}
	sync_dir(f->logs_dir);
	free_files(&rf, false);
	return EXIT_DONE;
}
