/*
 * engine.c: unit tests of common/engine that need no database: the plan
 * reader, the command line, the findings of a check and the batch size.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../../phases/help.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "engine/batch.h"
#include "engine/cli.h"
#include "engine/findings.h"
#include "engine/logs_dir.h"
#include "engine/mlog.h"
#include "engine/plan.h"
#include "ops/backfill/backfill.h"
#include "ops/ops.h"
#include "ops/versions.h"
#include "unit.h"

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

void
test_plan_load_accepted(void)
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
		"  {\"op\": \"drop_column\", \"column\": \"old\"}],\n"
		" \"trusted_triggers\": [{\"table\": \"accounts\", \"trigger\": \"audit\", \"comment\": \"reviewed\"},\n"
		"  {\"schema\": \"app\", \"table\": \"notes\", \"trigger\": \"stamp\"}]}\n";
	char *messages;
	Plan *plan;
	/* each operation's own data (Op.data), as its reader filled it */
#define SPEC(type, i) ((const type *) plan->ops[i].data)

	begin("plan_load: a small plan: names, settings and their defaults, each operation and its label");
	plan = load_plan_text(good, &messages);
	CHECK(plan != NULL, "refused: %s", messages);
	if (plan)
	{
		char *object = plan_object_name(plan, "backfill");

		CHECK(strcmp(plan->name, "t-plan_1") == 0 && strcmp(plan->schema, "public") == 0
				  && strcmp(plan->table, "accounts") == 0 && strcmp(plan->key, "id") == 0,
			  "names: %s %s.%s key %s", plan->name, plan->schema, plan->table, plan->key);
		CHECK(plan->batch_size == 50 && plan->lock_timeout_ms == 250 && plan->ddl_attempts == 30
				  && plan->target_batch_ms == PLAN_TARGET_BATCH_MS,
			  "settings: batch %d, lock timeout %d, attempts %d, target %d ms", plan->batch_size,
			  plan->lock_timeout_ms, plan->ddl_attempts, plan->target_batch_ms);
		CHECK(plan->n_ops == 7, "%d operations (6 and versioned_views)", plan->n_ops);
		CHECK(plan->n_ops == 7 && plan->ops[6].kind == &op_type_versioned_views && plan->ops[6].index == 6
				  && strcmp(SPEC(VersionsSpec, 6)->schemas[0], "t_plan_1_before") == 0
				  && strcmp(SPEC(VersionsSpec, 6)->schemas[1], "t_plan_1_after") == 0,
			  "every plan gets versioned_views with the default schemas, after its own operations");
		CHECK(plan->n_ops == 7 && plan->ops[0].kind == &op_type_add_column
				  && strcmp(plan->ops[0].label, "add_column c") == 0
				  && strcmp(SPEC(AddColumnSpec, 0)->type, "varchar(12)") == 0,
			  "add_column read as '%s'", plan->n_ops ? plan->ops[0].label : "");
		CHECK(plan->n_ops == 7 && plan->ops[1].kind == &op_type_create_index
				  && strcmp(plan->ops[1].label, "create_index ix") == 0 && SPEC(IndexSpec, 1)->n_columns == 2
				  && SPEC(IndexSpec, 1)->unique && strcmp(plan->ops[1].column, "c") == 0,
			  "create_index read as '%s'", plan->n_ops > 1 ? plan->ops[1].label : "");
		CHECK(plan->n_ops == 7 && plan->ops[2].kind == &op_type_backfill_from_mapping
				  && SPEC(BackfillSpec, 2)->n_set == 2 && strcmp(SPEC(BackfillSpec, 2)->uid_column, "uid") == 0
				  && strcmp(plan->ops[2].column, "uid") == 0 && SPEC(BackfillSpec, 2)->email_column == NULL,
			  "backfill read as '%s'", plan->n_ops > 2 ? plan->ops[2].label : "");
		CHECK(plan->n_ops == 7 && SPEC(NotNullSpec, 3)->reject_empty && SPEC(IndexSpec, 4)->ignore_case
				  && plan->ops[5].kind == &op_type_drop_column && plan->ops[5].index == 5
				  && strcmp(plan->ops[5].label, "drop_column old") == 0,
			  "the last three misread");
		CHECK(plan->n_trusted_triggers == 2 && strcmp(plan->trusted_triggers[0].schema, "public") == 0
				  && strcmp(plan->trusted_triggers[0].table, "accounts") == 0
				  && strcmp(plan->trusted_triggers[0].trigger, "audit") == 0
				  && strcmp(plan->trusted_triggers[1].schema, "app") == 0
				  && strcmp(plan->trusted_triggers[1].table, "notes") == 0
				  && strcmp(plan->trusted_triggers[1].trigger, "stamp") == 0,
			  "trusted_triggers misread (%d)", plan->n_trusted_triggers);
		CHECK(strcmp(object, "t-plan_1:backfill") == 0, "plan_object_name gave '%s'", object);
		CHECK(messages[0] == '\0', "a valid plan logged: %s", messages);
		free(object);
		plan_free(plan);
	}
	free(messages);
	end();
#undef SPEC
}

/* One table of refused plans, each with the message it must log, and a missing file. */
void
test_plan_load_refused(void)
{
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
		{"versioned_views named in operations",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"versioned_views\"}]}",
		 "is not named in \"operations\": every plan has it (top-level key \"versions\")"},
		{"versions naming one schema twice",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"versions\": {\"before\": \"v\", \"after\": \"v\"}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "must name two schemas, not \"v\" twice"},
		{"versions naming public",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"versions\": {\"after\": \"public\"}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "\"public\" is a schema phasemig may not create"},
		{"an unknown key in versions",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"versions\": {\"old\": \"a\"}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "versions: unknown key \"old\""},
		{"an unknown operation",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"rename_column\", \"column\": \"c\"}]}",
		 "operations[0]: unknown operation \"rename_column\""},
		{"no operations", "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": []}",
		 "\"operations\" must be a non-empty array"},
		{"a setting out of range",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"settings\": {\"batch_size\": 0}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "\"batch_size\" must be an integer from 1 to 1000000"},
		{"a negative batch target",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"settings\": {\"target_batch_ms\": -1}, \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "\"target_batch_ms\" must be an integer from 0 to 600000"},
		{"a type with a quote",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"add_column\", \"column\": \"c\", \"type\": \"text'\"}]}",
		 "\"type\" must be a type name"},
		{"a backfill without localId",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"dn\": \"displayName\"}}]}",
		 "must name the column that receives \"localId\""},
		{"an unknown Firebase field",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\", \"x\": \"nickname\"}}]}",
		 "unknown Firebase field \"nickname\""},
		{"a reserved custom claim",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": {\"role\": \"public_metadata.role\", \"iss\": \"public_metadata.issuer\"}}]}",
		 "custom_claims.\"iss\": a reserved claim: Firebase refuses acr, amr"},
		{"phasemig's own claim",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": {\"clerk_user_id\": \"public_metadata.id\"}}]}",
		 "custom_claims.\"clerk_user_id\": a reserved claim"},
		{"a claim from outside Clerk's metadata",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": {\"email\": \"email_addresses.0\"}}]}",
		 "custom_claims.\"email\": the path must start with public_metadata, private_metadata or unsafe_metadata"},
		{"a claim's path with an empty key",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": {\"plan\": \"private_metadata..plan\"}}]}",
		 "custom_claims.\"plan\": the path has an empty key"},
		{"a claim's path that is not a string",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": {\"plan\": [\"private_metadata\", \"plan\"]}}]}",
		 "custom_claims.\"plan\" must be a path (a string)"},
		{"custom_claims not an object",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}, \"custom_claims\": [\"role\"]}]}",
		 "\"custom_claims\" must be an object of claim: path"},
		{"a string where a boolean goes",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"set_not_null\", \"column\": \"c\", \"reject_empty\": \"yes\"}]}",
		 "\"reject_empty\" must be true or false"},
		{"a backup table name over 63 bytes",
		 "{\"name\": \"p234567890123456789012345678901234567890\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c2345678901234567890\"}]}",
		 "would be longer than 63 bytes"},
		{"trusted_triggers not an array",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}], \"trusted_triggers\": {\"table\": \"t\"}}",
		 "trusted_triggers: must be an array"},
		{"a trusted trigger without its trigger",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}], \"trusted_triggers\": [{\"table\": \"t\"}]}",
		 "trusted_triggers[0]: missing key \"trigger\""},
		{"an unknown key in a trusted trigger",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}], \"trusted_triggers\": [{\"table\": \"t\", \"trigger\": \"g\", \"function\": \"f\"}]}",
		 "trusted_triggers[0]: unknown key \"function\""},
		{"a trusted trigger that is a string",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}], \"trusted_triggers\": [\"t.g\"]}",
		 "trusted_triggers[0]: must be an object"},
		{"an operation listed twice",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}, {\"op\": \"drop_column\", \"column\": \"c\"}]}",
		 "operations[1] (drop_column c) repeats operations[0] (drop_column c)"},
		{"a column read after its drop",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"c\"}, {\"op\": \"set_not_null\", \"column\": \"c\"}]}",
		 "operations[1] (set_not_null c) reads column \"c\" after operations[0] (drop_column c) drops it"},
		{"a column read before its add",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"check_unique\", \"column\": \"c\"}, {\"op\": \"add_column\", \"column\": \"c\", \"type\": \"text\"}]}",
		 "operations[0] (check_unique c) reads column \"c\" before operations[1] (add_column c) adds it"},
		{"one name created twice",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"create_index\", \"name\": \"x\", \"columns\": [\"c\"]}, {\"op\": \"add_unique\", \"column\": \"d\", \"name\": \"x\"}]}",
		 "operations[0] (create_index x) and operations[1] (add_unique x) both create \"x\""},
		{"two backfills",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"u\": \"localId\"}}, {\"op\": \"backfill_from_mapping\", \"match_column\": \"m\", \"set\": {\"v\": \"localId\"}}]}",
		 "a plan has one backfill_from_mapping"},
		{"the key dropped",
		 "{\"name\": \"p\", \"table\": \"t\", \"key\": \"id\", \"operations\": [{\"op\": \"drop_column\", \"column\": \"id\"}]}",
		 "operations[0] (drop_column id) drops column \"id\", the plan's key"},
		{"not an object", "[1]", "top level: must be a JSON object"},
		{"malformed JSON", "{\"name\": \"p\",\n \"table\": }", "line 2, column"},
		{"a duplicate key", "{\"name\": \"p\", \"name\": \"q\"}", "duplicate object key"},
	};
	char *messages;
	Plan *plan;
	Captured c;

	begin("plan_load: unknown or missing keys, bad names and values, malformed JSON, operations out of order or twice: "
		  "refused with one message naming it");
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

/* The binary cli_parse reads here: three subcommands (no handler runs), the binaries' options. */
static const Subcommand subcommands[] = {
	{.name = "apply", .usage = "apply --plan FILE", .help = "apply it"},
	{.name = "rollback", .usage = "rollback --plan FILE", .help = "undo it,\nin two lines"},
	{.name = "status", .usage = "status --plan FILE\nstatus --plan FILE --run RUN_ID", .help = "show it"},
	{NULL},
};

/* cli_parse of ARGV (NULL-terminated) for a binary that accepts the option groups EXTRA; opts filled. */
static void
parse_args(const char *const *args, unsigned extra, Options *opts)
{
	PhaseBinary binary = {.phase = 2,
						  .summary = "phaseN does it.",
						  .subcommands = subcommands,
						  .options = phase_options,
						  .groups = extra,
						  .help_tail = "tail\n"};
	char *argv[32];
	int argc = 0;

	while (argc < 31 && args[argc])
	{
		argv[argc] = (char *) args[argc];
		argc++;
	}
	argv[argc] = NULL;
	optind = 0; /* getopt starts over */
	cli_parse(argc, argv, &binary, opts);
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

void
test_cli_parse_accepted(void)
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
	Options o;

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
	/* no --logs-dir: NULL, the run resolves it once it knows the database (logs_dir.h) */
	CHECK(strcmp(o.subcommand, "status") == 0 && o.logs_dir == NULL && o.lock_wait_s == 10 && o.jobs == 1
			  && o.batch_size == 0 && o.lock_timeout_ms == 0 && o.mapping == NULL && o.dbname == NULL && !o.json,
		  "defaults: logs '%s', lock wait %d, jobs %d, batch %d", o.logs_dir ? o.logs_dir : "(null)", o.lock_wait_s,
		  o.jobs, o.batch_size);
	log_init("unit");
	end();
}

/* One table of refused command lines, each with the message it must print. */
void
test_cli_parse_refused(void)
{
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
		{"-j on status",
		 {"phase2", "status", "--plan", "p", "-j", "2"},
		 CLI_JOBS,
		 "option \"--jobs\" is accepted by apply, check and rollback only"},
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
		{"--dry-run on status",
		 {"phase1", "status", "--plan", "p", "--dry-run"},
		 0,
		 "option \"--dry-run\" is accepted by apply, rollback and finalize only"},
		{"-y on a rollback",
		 {"phase3", "rollback", "--plan", "p", "-y"},
		 CLI_CONFIRM,
		 "option \"--yes\" is accepted by apply and finalize only"},
		{"--pause where no throttle is",
		 {"phase1", "apply", "--plan", "p", "--pause"},
		 0,
		 "option \"--pause\" is accepted by throttle only"},
		{"--lag-query without --max-lag-ms",
		 {"phase2", "apply", "--plan", "p", "--lag-query", "select 1"},
		 CLI_BATCH,
		 "option \"--lag-query\" needs --max-lag-ms"},
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
	char *messages;
	int rc;

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
	end();
}

void
test_cli_parse_help(void)
{
	static const char *const help[] = {"phase3", "--help", NULL};
	/* parse_exit's binary takes the mapping options */
	static const char *const version[] = {"phase3", "--version", NULL};
	char *messages;
	int rc;

	begin("cli_parse: --help and --version print the help text or the version and exit 0");
	rc = parse_exit(help, CLI_MAPPING, &messages);
	/* built from the tables: usage lines per subcommand, each subcommand, the options its groups and subcommands take */
	CHECK(rc == 0 && strncmp(messages, "phaseN does it.\n\nUsage: phase3 apply --plan FILE\n", 45) == 0,
		  "--help: exit %d, '%s'", rc, messages);
	CHECK(strstr(messages, "  or:  phase3 status --plan FILE --run RUN_ID\n") != NULL
			  && strstr(messages, "  rollback       undo it,\n                 in two lines\n") != NULL,
		  "usage or subcommands: '%s'", messages);
	CHECK(strstr(messages, "\n  -d, --dbname=CONNINFO    database to migrate") != NULL
			  && strstr(messages, "\n      --skip-invalid-values\n                           apply: leave") != NULL,
		  "options' columns: '%s'", messages);
	/* no group CLI_JOBS given; --pause is throttle's, which this binary lacks; --dry-run is apply's too */
	CHECK(strstr(messages, "--jobs") == NULL && strstr(messages, "--pause") == NULL
			  && strstr(messages, "--dry-run") != NULL && strstr(messages, "\ntail\n") != NULL,
		  "options it does not take, or no tail: '%s'", messages);
	free(messages);
	rc = parse_exit(version, 0, &messages);
	CHECK(rc == 0 && strcmp(messages, "phase3 (phasemig) " PHASEMIG_VERSION "\n") == 0, "--version: exit %d, '%s'", rc,
		  messages);
	free(messages);
	end();
}

/* ---- findings.c (no database: findings_add, _print, _json, _free) */

void
test_findings(void)
{
	Findings f;
	Captured c;
	char *printed;
	json_t *j;

	begin("findings: each problem printed with its count and samples, and as JSON; the list grows and is freed");
	findings_init(&f);
	findings_add(&f, "null", "\"public\".\"users\".\"uid\"", 3,
				 "a, 1\x1f"
				 "b");
	findings_add(&f, "dependent_view", "view public.v", 1, NULL);
	capture_stderr(&c);
	findings_print(&f);
	printed = captured_text(&c);
	CHECK(strstr(printed, "error: check \"null\" failed for \"public\".\"users\".\"uid\": 3 found\n") != NULL,
		  "printed: %s", printed);
	CHECK(strstr(printed, "samples (up to 10): a, 1, b\n") != NULL, "samples not printed: %s", printed);
	CHECK(strstr(printed, "error: check \"dependent_view\" failed for view public.v: 1 found\n") != NULL, "printed: %s",
		  printed);
	CHECK(occurrences(printed, "samples") == 1, "a samples line for a finding without samples: %s", printed);
	free(printed);
	j = findings_json(&f);
	CHECK(json_array_size(j) == 2, "%zu JSON items", json_array_size(j));
	CHECK(json_integer_value(json_object_get(json_array_get(j, 0), "count")) == 3
			  && strcmp(json_string_value(json_object_get(json_array_get(j, 0), "check")), "null") == 0
			  && json_array_size(json_object_get(json_array_get(j, 0), "samples")) == 2
			  && strcmp(json_string_value(json_array_get(json_object_get(json_array_get(j, 0), "samples"), 0)), "a, 1")
				  == 0
			  && strcmp(json_string_value(json_array_get(json_object_get(json_array_get(j, 0), "samples"), 1)), "b")
				  == 0,
		  "first item wrong");
	CHECK(json_array_size(json_object_get(json_array_get(j, 1), "samples")) == 0
			  && strcmp(json_string_value(json_object_get(json_array_get(j, 1), "subject")), "view public.v") == 0,
		  "second item wrong");
	json_decref(j);
	/* samples that are keys are printed as quoted literals, and stay plain in JSON */
	findings_add(&f, "invalid uuid", "public.users.id", 2,
				 "o'k\x1f"
				 "x");
	f.items[2].keys = true;
	capture_stderr(&c);
	findings_print(&f);
	printed = captured_text(&c);
	CHECK(strstr(printed, "samples (up to 10): 'o''k', 'x'\n") != NULL, "keys not quoted: %s", printed);
	free(printed);
	j = findings_json(&f);
	CHECK(strcmp(json_string_value(json_array_get(json_object_get(json_array_get(j, 2), "samples"), 0)), "o'k") == 0,
		  "a key in JSON is not plain");
	json_decref(j);
	for (int i = 0; i < 19; i++)
		findings_add(&f, "x", "y", i, "");
	CHECK(f.n == 22 && f.cap >= 22 && f.items[21].count == 18, "after 22 adds: n %d, cap %d", f.n, f.cap);
	findings_free(&f);
	CHECK(f.n == 0 && f.items == NULL, "not empty after findings_free");
	j = findings_json(&f);
	CHECK(json_array_size(j) == 0, "JSON of no findings has %zu items", json_array_size(j));
	json_decref(j);
	end();
}

/* ---- batch.c's batch size: no connection needed */

void
test_batch_size_of(void)
{
	Options opts = {0};
	Plan plan = {.batch_size = 1000};

	BatchLoop b = {0};

	begin("batch_size_of: --batch-size when given, else the plan's");
	CHECK(batch_size_of(&opts, &plan) == 1000, "without --batch-size: %d", batch_size_of(&opts, &plan));
	opts.batch_size = 7;
	CHECK(batch_size_of(&opts, &plan) == 7, "with --batch-size 7: %d", batch_size_of(&opts, &plan));
	end();

	begin("batch_use_options: the size adapts to the plan's target unless --batch-size alone fixes it");
	plan.target_batch_ms = 100;
	opts.batch_size = 0;
	batch_use_options(&b, &opts, &plan);
	CHECK(b.batch_size == 1000 && b.target_batch_ms == 100, "given nothing: %d rows first, target %d ms",
		  b.batch_size, b.target_batch_ms);
	opts.batch_size = 7;
	batch_use_options(&b, &opts, &plan);
	CHECK(b.batch_size == 7 && b.target_batch_ms == 0, "--batch-size 7: %d rows, target %d ms (fixed)", b.batch_size,
		  b.target_batch_ms);
	opts.target_batch_ms = 250;
	batch_use_options(&b, &opts, &plan);
	CHECK(b.batch_size == 7 && b.target_batch_ms == 250, "--batch-size 7 --target-batch-ms 250: %d rows, target %d",
		  b.batch_size, b.target_batch_ms);
	opts.batch_size = 0, opts.target_batch_ms = 0, plan.target_batch_ms = 0;
	batch_use_options(&b, &opts, &plan);
	CHECK(b.batch_size == 1000 && b.target_batch_ms == 0, "the plan's target 0: %d rows, fixed (target %d)",
		  b.batch_size, b.target_batch_ms);
	end();
}

/* logs_dir_resolve: --logs-dir, else $PHASEMIG_LOGS, else the XDG state directory per database and plan. */
void
test_logs_dir_resolve(void)
{
	static const struct
	{
		const char *given, *env, *xdg, *home, *database, *want;
	} cases[] = {
		{"out", "/p", "/x", "/h", "app", "out"},
		{NULL, "/p", "/x", "/h", "app", "/p"},
		{NULL, "", "/x", "/h", "app", "/x/phasemig/app/clerk"},
		{NULL, NULL, "/x", "/h", "app", "/x/phasemig/app/clerk"},
		{NULL, NULL, NULL, "/h", "app", "/h/.local/state/phasemig/app/clerk"},
		/* a relative XDG_STATE_HOME is invalid (the XDG spec): ignored */
		{NULL, NULL, "rel", "/h", "app", "/h/.local/state/phasemig/app/clerk"},
		/* a database name is one path component: no '/', no leading '.' */
		{NULL, NULL, "/x", "/h", "a/b", "/x/phasemig/a_b/clerk"},
		{NULL, NULL, "/x", "/h", "..", "/x/phasemig/_./clerk"},
	};
	const char *vars[] = {"PHASEMIG_LOGS", "XDG_STATE_HOME", "HOME"};
	char *saved[3];

	begin("logs_dir_resolve: --logs-dir, $PHASEMIG_LOGS, $XDG_STATE_HOME/phasemig/DB/PLAN, ~/.local/state/...");
	for (int v = 0; v < 3; v++)
		saved[v] = getenv(vars[v]) ? xstrdup(getenv(vars[v])) : NULL;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
	{
		const char *values[3] = {cases[i].env, cases[i].xdg, cases[i].home};
		char *got;

		for (int v = 0; v < 3; v++)
			values[v] ? setenv(vars[v], values[v], 1) : unsetenv(vars[v]);
		got = logs_dir_resolve(cases[i].given, cases[i].database, "clerk");
		CHECK(strcmp(got, cases[i].want) == 0, "case %zu: expected '%s', got '%s'", i, cases[i].want, got);
		free(got);
	}
	for (int v = 0; v < 3; v++)
	{
		saved[v] ? setenv(vars[v], saved[v], 1) : unsetenv(vars[v]);
		free(saved[v]);
	}
	end();
}
