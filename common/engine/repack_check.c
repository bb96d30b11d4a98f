/*
 * repack_check.c: what phase3 finalize --repack needs, checked before
 * anything changes (repack.h): the tables the plan rewrote, the pg_repack
 * program and extension, their versions, the role and each table's key.
 */
#include "engine/repack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client_cmd.h"
#include "core/db.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/operation.h"

/* "1.4.8" as 10408; 0 for what is not a version. */
static int
version_number(const char *v)
{
	int a = 0, b = 0, c = 0;

	return v && sscanf(v, "%d.%d.%d", &a, &b, &c) >= 2 ? a * 10000 + b * 100 + c : 0;
}

/*
 * The plan's table, then each operation's rewritten tables, each once (as
 * the catalog names it), in that order.
 */
static json_t *
table_list(Run *run)
{
	json_t *named = json_array(), *tables = json_array();
	char *text;
	const char *params[1];
	PGresult *res;

	json_array_append_new(named, json_string(run->plan->q_table));
	for (int i = 0; i < run->plan->n_ops; i++)
		if (run->plan->ops[i].kind->rewritten_tables)
			run->plan->ops[i].kind->rewritten_tables(run, &run->plan->ops[i], named);
	text = json_dumps(named, JSON_COMPACT);
	params[0] = text;
	res = db_query(run->conn,
				   "SELECT c.oid::pg_catalog.regclass::pg_catalog.text AS t FROM pg_catalog.json_array_elements_text($1) "
				   "WITH ORDINALITY x(name, n) JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(x.name) "
				   "GROUP BY c.oid ORDER BY min(x.n)",
				   1, params);
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(tables, json_string(PQgetvalue(res, i, 0)));
	PQclear(res);
	free(text);
	json_decref(named);
	return tables;
}

/* 1. The program, and its version from --version. */
static bool
check_command(RepackSetup *setup)
{
	char *line;

	if ((setup->command = client_cmd_find("pg_repack")) == NULL)
	{
		log_error("finalize --repack: the pg_repack command is not on PATH: nothing was changed");
		log_hint("install it with the server's PostgreSQL version (Debian: apt-get install postgresql-15-repack), or "
				 "put the directory that holds it on PATH; or run finalize without --repack");
		return false;
	}
	line = client_cmd_first_line(setup->command, "--version");
	if (line && strncmp(line, "pg_repack ", 10) == 0 && version_number(line + 10) > 0)
		setup->version = xstrdup(line + 10);
	free(line);
	if (setup->version == NULL)
	{
		log_error("finalize --repack: %s --version did not answer \"pg_repack X.Y.Z\": nothing was changed",
				  setup->command);
		return false;
	}
	return true;
}

/* 2. The extension: installed, else allowed and available on the server; of the program's version. */
static bool
check_extension(Run *run, const Options *opts, RepackSetup *setup)
{
	char *installed = db_value(run->conn, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_repack'",
							   0, NULL);
	char *version = installed;
	bool ok = true;

	if (installed == NULL && !opts->repack_create_extension)
	{
		log_error("finalize --repack: the pg_repack extension is not installed in database \"%s\": nothing was "
				  "changed",
				  PQdb(run->conn));
		log_hint("a superuser runs CREATE EXTENSION pg_repack in that database, or give --repack-create-extension "
				 "for phasemig to create it (connected as a superuser); or run finalize without --repack");
		return false;
	}
	if (installed == NULL)
	{
		version = db_value(run->conn,
						   "SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'pg_repack'", 0,
						   NULL);
		if (version == NULL)
		{
			log_error("finalize --repack: the server has no pg_repack extension to create: nothing was changed");
			log_hint("install pg_repack on the database server (Debian: postgresql-15-repack), then run again");
			return false;
		}
		setup->create_extension = true;
	}
	if (strcmp(version, setup->version) != 0)
	{
		log_error("finalize --repack: the pg_repack command is version %s and the extension %s %s: they must be "
				  "the same; nothing was changed",
				  setup->version, installed ? "installed in the database is" : "the server would create is", version);
		log_hint("use the pg_repack command of the extension's version (PATH), or update the extension");
		ok = false;
	}
	free(version);
	return ok;
}

/*
 * 3. The role: pg_repack 1.4's functions are a superuser's only; from
 * 1.5.2 the table's owner may run them (the client then needs
 * --no-superuser-check).  Creating the extension needs a superuser.
 */
static bool
check_role(Run *run, RepackSetup *setup)
{
	bool super = db_exists(run->conn, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = session_user AND rolsuper",
						   0, NULL);

	if (super)
		return true;
	if (setup->create_extension)
	{
		log_error("finalize --repack-create-extension: CREATE EXTENSION pg_repack needs a superuser, and \"%s\" is "
				  "not one: nothing was changed",
				  PQuser(run->conn));
		log_hint("connect as a superuser (phasemig switches to the table's owner for its own changes), or have one "
				 "create the extension");
		return false;
	}
	if (version_number(setup->version) < 10502)
	{
		log_error("finalize --repack: pg_repack %s runs as a superuser only, and \"%s\" is not one: nothing was "
				  "changed",
				  setup->version, PQuser(run->conn));
		log_hint("connect as a superuser (phasemig switches to the table's owner for its own changes; pg_repack "
				 "connects as the login); pg_repack 1.5.2 and later also let the table's owner run it");
		return false;
	}
	setup->no_superuser_check = true;
	return true;
}

/* 4. pg_repack needs a primary key, or a unique index on NOT NULL columns, on each table. */
static bool
check_keys(Run *run, RepackSetup *setup)
{
	char *text = json_dumps(setup->tables, JSON_COMPACT);
	const char *params[1] = {text};
	PGresult *res = db_query(
		run->conn,
		"SELECT x.t FROM pg_catalog.json_array_elements_text($1) x(t) WHERE NOT EXISTS ("
		"SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = x.t::pg_catalog.regclass AND i.indisunique "
		"AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND NOT EXISTS ("
		"  SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid "
		"  AND a.attnum = ANY (i.indkey::pg_catalog.int2[]) AND NOT a.attnotnull))",
		1, params);
	int n = PQntuples(res);

	for (int i = 0; i < n; i++)
		log_error("finalize --repack: %s has no primary key nor unique index on NOT NULL columns, which pg_repack "
				  "needs",
				  PQgetvalue(res, i, 0));
	if (n > 0)
		log_hint("add one, or run finalize without --repack; nothing was changed");
	PQclear(res);
	free(text);
	return n == 0;
}

int
repack_check(Run *run, const Options *opts, RepackSetup *setup)
{
	memset(setup, 0, sizeof *setup);
	setup->tables = table_list(run);
	if (!check_command(setup) || !check_extension(run, opts, setup) || !check_role(run, setup)
		|| !check_keys(run, setup))
		return EXIT_REFUSED;
	log_info("finalize --repack: pg_repack %s (%s), then compacts %zu table%s", setup->version, setup->command,
			 json_array_size(setup->tables), json_array_size(setup->tables) == 1 ? "" : "s");
	return EXIT_DONE;
}

void
repack_setup_free(RepackSetup *setup)
{
	free(setup->command);
	free(setup->version);
	json_decref(setup->tables);
	memset(setup, 0, sizeof *setup);
}
