/*
 * repack.c: phase3 finalize --repack's compaction (repack.h): each table the
 * plan rewrote, in a migration_log row of its own, cleaned of what an
 * interrupted pg_repack left, compacted by pg_repack, checked and measured;
 * and what status shows of it.
 */
#include "engine/repack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client_cmd.h"
#include "core/clock.h"
#include "core/db.h"
#include "core/dryrun.h"
#include "core/log.h"
#include "core/stop.h"
#include "core/strbuf.h"
#include "engine/run.h"

/* pg_repack's advisory lock on a table (its REPACK_LOCK_PREFIX and the table's oid), held while it works on it. */
#define REPACK_LOCK "16185446, CAST(-2147483648 + $1::pg_catalog.int8 AS pg_catalog.int4)"

/* A table's size, all of it and its heap alone, and the file its heap is in (pg_repack gives it a new one). */
typedef struct Sizes
{
	long long total, heap;
	char filenode[24];
	char oid[24];
} Sizes;

static Sizes
sizes_of(Run *run, const char *table)
{
	const char *params[1] = {table};
	PGresult *res = db_query(run->conn,
							 "SELECT $1::pg_catalog.regclass::pg_catalog.oid AS oid, "
							 "pg_catalog.pg_total_relation_size($1::pg_catalog.regclass) AS total, "
							 "pg_catalog.pg_relation_size($1::pg_catalog.regclass) AS heap, "
							 "pg_catalog.pg_relation_filenode($1::pg_catalog.regclass) AS filenode",
							 1, params);
	Sizes s = {.total = db_field_ll(res, 0, "total"), .heap = db_field_ll(res, 0, "heap")};

	snprintf(s.filenode, sizeof s.filenode, "%s", db_field(res, 0, "filenode"));
	snprintf(s.oid, sizeof s.oid, "%s", db_field(res, 0, "oid"));
	PQclear(res);
	return s;
}

/* BYTES as "12.3 MB" (static storage, two at a time). */
static const char *
human(long long bytes)
{
	static char buf[2][32];
	static int k;
	char *b = buf[k++ % 2];

	if (bytes >= 1024LL * 1024 * 1024)
		snprintf(b, sizeof buf[0], "%.2f GB", (double) bytes / (1024.0 * 1024 * 1024));
	else if (bytes >= 1024 * 1024)
		snprintf(b, sizeof buf[0], "%.1f MB", (double) bytes / (1024.0 * 1024));
	else
		snprintf(b, sizeof buf[0], "%lld kB", bytes / 1024);
	return b;
}

/*
 * 1. What an interrupted pg_repack left on the table (its trigger, which
 * logs every write of the application, its log table, its copy and its key
 * type) dropped by the extension's own repack_drop, once no pg_repack holds
 * the table (its advisory lock: a killed client's backend may still be
 * ending its statement; waited for up to --lock-wait).
 */
static bool
clean_leftovers(Run *run, const Options *opts, const char *table, const Sizes *s)
{
	const char *params[1] = {s->oid};
	char *drop;
	bool ok;
	double waited_from = clock_now_ms();

	if (!db_exists(run->conn,
				   "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1::pg_catalog.oid "
				   "AND tgname = 'repack_trigger') OR pg_catalog.to_regclass('repack.log_' || $1) IS NOT NULL "
				   "OR pg_catalog.to_regclass('repack.table_' || $1) IS NOT NULL "
				   "OR pg_catalog.to_regtype('repack.pk_' || $1) IS NOT NULL",
				   1, params))
		return true;
	log_warning("%s: an interrupted pg_repack left its trigger or tables on it: dropping them first", table);
	while (!db_exists(run->conn, "SELECT 1 WHERE pg_catalog.pg_try_advisory_lock(" REPACK_LOCK ")", 1, params))
	{
		if (stop_requested() || clock_now_ms() - waited_from > opts->lock_wait_s * 1000.0)
		{
			log_error("%s: a pg_repack session is still at work on it (its advisory lock is held): nothing was "
					  "dropped",
					  table);
			log_hint("wait for it to end (pg_stat_activity, application_name pg_repack), then run the same command "
					 "again");
			return false;
		}
		db_sleep_ms(500);
	}
	drop = str_printf("SELECT repack.repack_drop(%s, 4)", s->oid);
	/* repack_drop is a superuser's; the run works as the table's owner otherwise */
	ok = db_ddl_try(run->conn, "pg_repack's leftovers", (const char *const[]){"SET LOCAL ROLE NONE", drop}, 2);
	free(db_value(run->conn, "SELECT pg_catalog.pg_advisory_unlock(" REPACK_LOCK ")", 1, params));
	free(drop);
	return ok;
}

/* 2. pg_repack on TABLE; a dry run prints the command instead. */
static bool
run_pg_repack(Run *run, const RepackSetup *setup, const char *table)
{
	char wait[32], *tablearg = str_printf("--table=%s", table);
	char *argv[8] = {setup->command, "--no-order", "--no-kill-backend", wait, tablearg, NULL, NULL, NULL};
	int rc;

	snprintf(wait, sizeof wait, "--wait-timeout=%d", REPACK_WAIT_TIMEOUT_S);
	if (setup->no_superuser_check)
		argv[5] = "--no-superuser-check";
	if (dryrun_on())
	{
		char *env = client_cmd_env_text(run->conn);

		dryrun_comment("online, ACCESS EXCLUSIVE for moments at its start and end (each wait at most 1 s, the table "
					   "given up after %d s); the password from the connection, not shown",
					   REPACK_WAIT_TIMEOUT_S);
		printf("%s %s %s %s %s %s%s%s\n", env, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5] ? " " : "",
			   argv[5] ? argv[5] : "");
		free(env);
		free(tablearg);
		return true;
	}
	log_info("%s: pg_repack %s %s %s %s%s%s", table, argv[1], argv[2], argv[3], argv[4], argv[5] ? " " : "",
			 argv[5] ? argv[5] : "");
	rc = client_cmd_run(run->conn, argv, "pg_repack: ");
	free(tablearg);
	if (rc != 0 && !stop_requested())
	{
		log_error("%s: pg_repack failed (exit %d): its messages are above", table, rc);
		log_hint("run the same command again: it drops what pg_repack left first");
	}
	return rc == 0 && !stop_requested();
}

/* One table: its row in migration_log, steps 1 and 2, its sizes before and after. */
static int
repack_one(Run *run, const Options *opts, const RepackSetup *setup, const char *table, json_t *totals)
{
	char *label = str_printf("repack %s", table);
	Sizes before, after;
	double start;
	json_t *meta = NULL;
	int rc = EXIT_FAILED;

	log_set_step(label);
	run->op_entry = mlog_begin(run, label, -1, 0, NULL);
	before = sizes_of(run, table);
	if (clean_leftovers(run, opts, table, &before))
	{
		start = clock_now_ms();
		if (run_pg_repack(run, setup, table))
		{
			after = sizes_of(run, table);
			if (!dryrun_on() && strcmp(after.filenode, before.filenode) == 0)
			{
				log_error("%s: pg_repack left it as it was: its ACCESS EXCLUSIVE lock was not granted within %d s "
						  "(other sessions held the table), and it cancels no session",
						  table, REPACK_WAIT_TIMEOUT_S);
				log_hint("run the same command again when the table is less busy");
			}
			else
			{
				rc = EXIT_DONE;
				if (!dryrun_on())
					log_info("%s: %s -> %s in all, heap %s -> %s (%.1f s)", table, human(before.total),
							 human(after.total), human(before.heap), human(after.heap),
							 (clock_now_ms() - start) / 1000.0);
			}
		}
	}
	if (rc == EXIT_DONE)
	{
		meta = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "table", table, "total_before", before.total, "heap_before",
						 before.heap, "total_after", after.total, "heap_after", after.heap, "filenode_after",
						 after.filenode);
		json_object_set_new(totals, "total_before",
							json_integer(json_integer_value(json_object_get(totals, "total_before")) + before.total));
		json_object_set_new(totals, "total_after",
							json_integer(json_integer_value(json_object_get(totals, "total_after")) + after.total));
	}
	{
		char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;

		mlog_finish(run, run->op_entry, rc == EXIT_DONE ? "done" : "failed", 0,
					rc == EXIT_DONE ? NULL : run_failure_reason(), text);
		free(text);
	}
	json_decref(meta);
	run->op_entry = 0;
	log_set_step(NULL);
	free(label);
	return rc;
}

int
repack_tables(Run *run, const Options *opts, const RepackSetup *setup)
{
	size_t i;
	json_t *t, *totals = json_object();
	int rc = EXIT_DONE;

	/* 1. the extension, when the operator allowed it (repack_check saw a superuser); CREATE EXTENSION is one */
	if (setup->create_extension
		&& !db_ddl_try(run->conn, "CREATE EXTENSION pg_repack",
					   (const char *const[]){"SET LOCAL ROLE NONE", "CREATE EXTENSION IF NOT EXISTS pg_repack SCHEMA public"}, 2))
		rc = EXIT_FAILED;
	/* 2. each table, stopping at the first that fails */
	json_array_foreach(setup->tables, i, t)
	{
		if (rc != EXIT_DONE)
			break;
		if (stop_requested())
		{
			log_error("stopped by %s before the next table", stop_signal_name());
			rc = EXIT_FAILED;
			break;
		}
		log_info("repack %zu of %zu: %s", i + 1, json_array_size(setup->tables), json_string_value(t));
		if (dryrun_on())
			dryrun_comment("repack %zu of %zu: %s", i + 1, json_array_size(setup->tables), json_string_value(t));
		rc = repack_one(run, opts, setup, json_string_value(t), totals);
	}
	/* 3. the tables together, in the log and on the run's own row */
	if (rc == EXIT_DONE && !dryrun_on())
	{
		long long b = json_integer_value(json_object_get(totals, "total_before"));
		long long a = json_integer_value(json_object_get(totals, "total_after"));
		json_t *meta = json_pack("{s:O}", "repack", totals);

		log_info("repack: the %zu tables take %s, %s before (%.2fx)", json_array_size(setup->tables), human(a),
				 human(b), b > 0 ? (double) a / (double) b : 1.0);
		free(run->phase_metadata);
		run->phase_metadata = json_dumps(meta, JSON_COMPACT);
		json_decref(meta);
	}
	json_decref(totals);
	return rc;
}

void
repack_status(Run *run, json_t *obj)
{
	const char *params[1] = {run->plan->name};
	PGresult *res = db_query(run->conn,
							 "SELECT DISTINCT ON (operation) metadata::text, " DB_ISO_UTC("finished_at") " AS at "
							 "FROM public.migration_log WHERE plan = $1 AND phase = 3 AND operation LIKE 'repack %' "
							 "AND status = 'done' ORDER BY operation, id DESC",
							 1, params);
	json_t *list = json_array();

	for (int i = 0; i < PQntuples(res); i++)
	{
		json_t *meta = json_loads(PQgetvalue(res, i, 0), 0, NULL);

		if (json_is_object(meta))
		{
			json_object_del(meta, "filenode_after");
			json_object_set_new(meta, "at", json_string(PQgetvalue(res, i, 1)));
			json_array_append(list, meta);
		}
		json_decref(meta);
	}
	PQclear(res);
	if (json_array_size(list) > 0)
		json_object_set_new(obj, "repack", list);
	else
		json_decref(list);
}

void
repack_print(json_t *ph)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(ph, "repack"), i, r)
	{
		long long tb = json_integer_value(json_object_get(r, "total_before"));
		long long ta = json_integer_value(json_object_get(r, "total_after"));

		printf("  repacked: %s %s -> %s in all, heap %s -> ", json_string_value(json_object_get(r, "table")),
			   human(tb), human(ta), human(json_integer_value(json_object_get(r, "heap_before"))));
		printf("%s, at %s\n", human(json_integer_value(json_object_get(r, "heap_after"))),
			   json_string_value(json_object_get(r, "at")));
	}
}
