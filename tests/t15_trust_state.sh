# t15_trust_state.sh -- phasemig's own state is used only when phasemig made it: a
# migration_log or migration_backup pre-created by another role (the privilege escalation
# through a trigger on the operator's first write), or one that gained a trigger or a
# default calling someone else's function, is refused with exit 3 naming the object and its
# owner, and nothing is created, written or run.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs LOGS
p() { local n=$1; shift; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS"; }
fresh_app() { gen_app "$1" 50 t15 "$TEST_TMP/data"; }
catalog() {   # what exists: schemas and relations (names, owners), columns and constraints, roles with superuser
    schema_fingerprint "$1"
    q "$1" "select string_agg(nspname || ':' || pg_get_userbyid(nspowner), ',' order by nspname) from pg_namespace"
    q "$1" "select string_agg(c.oid::regclass::text || ':' || pg_get_userbyid(relowner), ',' order by 1) from pg_class c
            join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')"
    q "$1" "select string_agg(rolname, ',' order by rolname) from pg_roles where rolsuper"
}
q postgres "drop role if exists attacker; create role attacker login" >/dev/null

test_case "an attacker's migration_log with a trigger that grants superuser: phase1 refuses (exit 3) naming it; nothing runs or is created"
fresh_app escalate
# as on PostgreSQL 14, where every role may create in public
q escalate "grant create on schema public to attacker" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -U attacker -d escalate >/dev/null 2>&1 <<'SQL' || _t_fail "the attacker's setup failed"
create table public.migration_log (id bigint generated always as identity primary key, run_id uuid, plan text, phase smallint,
    operation text, status text, rows_done bigint default 0, rows_total bigint, last_key text,
    started_at timestamptz default clock_timestamp(), finished_at timestamptz, db_user text default current_user,
    client text, tool_version text, message text, metadata jsonb default '{}');
create function public.escalate() returns trigger language plpgsql as $$
begin execute 'alter role attacker superuser'; return new; end $$;
create trigger escalate before insert or update on public.migration_log for each row execute function public.escalate();
SQL
before=$(catalog escalate)
assert_exit 3 "phase1 apply" -- p 1 apply -d escalate
assert_contains "$LAST_ERR" "relation public.migration_log (owner attacker) is owned by a role phasemig does not run as" "names the table and its owner"
assert_contains "$LAST_ERR" 'trigger escalate on public.migration_log (owner attacker) was not created by phasemig' "names the trigger"
assert_eq "f" "$(q escalate "select rolsuper from pg_roles where rolname = 'attacker'")" "the attacker is not superuser"
assert_eq "$before" "$(catalog escalate)" "nothing created: schemas, relations, roles as before"
assert_exit 3 "status refuses too, before reading it" -- p 1 status -d escalate
assert_exit 3 "and phase2" -- p 2 apply -d escalate --mapping "$TEST_TMP/data/mapping.csv"
assert_eq "f" "$(q escalate "select rolsuper from pg_roles where rolname = 'attacker'")" "still not superuser"
assert_eq "0" "$(q escalate "select count(*) from public.migration_log")" "nothing written to it"

test_case "a migration_backup schema another role made: refused (exit 3) naming it and its owner; nothing created"
fresh_app schema
q schema "grant create on database schema to attacker" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -U attacker -d schema -c "create schema migration_backup" >/dev/null || _t_fail "setup"
before=$(catalog schema)
assert_exit 3 "phase1 apply" -- p 1 apply -d schema
assert_contains "$LAST_ERR" "schema migration_backup (owner attacker) is owned by a role phasemig does not run as" "names the schema and owner"
assert_eq "$before" "$(catalog schema)" "nothing created"

test_case "phasemig's own migration_log that gained a trigger or a default calling another function: refused before any write"
fresh_app gained
assert_exit 0 "phase1 apply" -- p 1 apply -d gained
rows=$(q gained "select count(*) from migration_log")
q gained "create function public.noisy() returns trigger language plpgsql as \$\$ begin raise notice 'ran'; return new; end \$\$;
  create trigger noisy before insert on public.migration_log for each row execute function public.noisy()" >/dev/null
assert_exit 3 "phase2 apply" -- p 2 apply -d gained --mapping "$TEST_TMP/data/mapping.csv"
assert_contains "$LAST_ERR" "trigger noisy on public.migration_log (owner postgres) was not created by phasemig" "names the trigger"
assert_eq "$rows" "$(q gained "select count(*) from migration_log")" "no row written"
q gained "drop trigger noisy on public.migration_log;
  create function public.stamp() returns text language sql as 'select ''x''';
  alter table public.migration_log alter column message set default public.stamp()" >/dev/null
assert_exit 3 "phase2 apply" -- p 2 apply -d gained --mapping "$TEST_TMP/data/mapping.csv"
assert_contains "$LAST_ERR" "default value for column message of table public.migration_log (owner postgres) calls public.stamp(), which phasemig did not create" "names the default and the function"
q gained "alter table public.migration_log alter column message drop default" >/dev/null
assert_exit 0 "once removed, phase2 runs" -- p 2 apply -d gained --mapping "$TEST_TMP/data/mapping.csv"
assert_exit 0 "and rolls back" -- p 2 rollback -d gained
assert_exit 0 "phase1 rollback" -- p 1 rollback -d gained

test_case "a role that does not own the table: exit 2 naming the table and its owner, before anything is created"
fresh_app notowner
q postgres "drop role if exists app; create role app login" >/dev/null
q notowner "grant create on database notowner to app; grant usage, create on schema public to app;
  grant select, insert, update, delete on all tables in schema public to app" >/dev/null
before=$(catalog notowner)
assert_exit 2 "phase1 apply as app" -- p 1 apply -d "dbname=notowner user=app"
assert_contains "$LAST_ERR" 'role "app" may not alter public.users (owner postgres); nothing was created' "names the table and its owner"
assert_eq "$before" "$(catalog notowner)" "no migration_log, no migration_backup, nothing else"
assert_exit 2 "the uuid plan names the children too" -- phase 1 apply -d "dbname=notowner user=app" --plan "$ROOT/plans/string-to-uuid.json" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" "public.journal_entries (owner postgres)" "a child table named"
assert_eq "$before" "$(catalog notowner)" "still nothing created"

test_case "a plan naming a column the table lacks, a type clash, a key already uuid: exit 2 before anything is created"
fresh_app mistyped
before=$(catalog mistyped)
edit_file "$PLAN" "$TEST_TMP/bad-index.json" 's/"columns": \["firebase_uid"\]/"columns": ["firebase_iud"]/'
edit_file "$PLAN" "$TEST_TMP/bad-match.json" 's/"match_column": "clerk_user_id"/"match_column": "clerk_usr_id"/'
edit_file "$PLAN" "$TEST_TMP/bad-set.json" 's/"display_name": "displayName"/"dispaly_name": "displayName"/'
edit_file "$PLAN" "$TEST_TMP/bad-notnull.json" 's/"set_not_null", "column": "firebase_uid"/"set_not_null", "column": "firebase_iud"/'
edit_file "$PLAN" "$TEST_TMP/bad-unique.json" 's/"add_unique", "column": "firebase_uid"/"add_unique", "column": "firebase_iud"/'
edit_file "$PLAN" "$TEST_TMP/bad-check.json" 's/"check_unique", "column": "email"/"check_unique", "column": "emial"/'
edit_file "$PLAN" "$TEST_TMP/bad-drop.json" 's/"drop_column", "column": "clerk_user_id"/"drop_column", "column": "clerk_user"/'
edit_file "$ROOT/plans/string-to-uuid.json" "$TEST_TMP/bad-uuid.json" 's/"column": "id"/"column": "idd"/'
for f in bad-index:'"firebase_iud" is not a column' bad-match:'match_column "clerk_usr_id" is not a column' \
         bad-set:'"dispaly_name" is not a column' bad-notnull:'"firebase_iud" is not a column' \
         bad-unique:'"firebase_iud" is not a column' bad-check:'"emial" is not a column' \
         bad-drop:'"clerk_user" is not a column' bad-uuid:'"idd" is not a column'; do
    assert_exit 2 "${f%%:*}" -- phase 1 apply -d mistyped --plan "$TEST_TMP/${f%%:*}.json" --logs-dir "$LOGS"
    assert_contains "$LAST_ERR" "${f#*:}" "${f%%:*}: names the column"
    assert_contains "$LAST_ERR" "nothing was created or changed" "${f%%:*}: says nothing changed"
    assert_eq "$before" "$(catalog mistyped)" "${f%%:*}: nothing created"
done
q mistyped "alter table public.users add column phone_number integer" >/dev/null
before=$(catalog mistyped)
assert_exit 2 "type clash" -- p 1 apply -d mistyped
assert_contains "$LAST_ERR" 'column "phone_number" of "public"."users" already exists with type integer' "names the clash"
assert_eq "$before" "$(catalog mistyped)" "type clash: no other column added first"
# a type the database does not know, and a field whose values cannot be cast to its column
edit_file "$PLAN" "$TEST_TMP/bad-type.json" 's/"type": "boolean"/"type": "boolean_ish"/'
edit_file "$PLAN" "$TEST_TMP/bad-cast.json" 's/"column": "email_verified", "type": "boolean"/"column": "email_verified", "type": "date"/'
q mistyped "alter table public.users drop column phone_number" >/dev/null
before=$(catalog mistyped)
for f in bad-type:'"boolean_ish" is not a type known to the database' \
         bad-cast:'column "email_verified" is of type date: the field "emailVerified" (boolean) cannot be written to it'; do
    assert_exit 2 "${f%%:*}" -- phase 1 apply -d mistyped --plan "$TEST_TMP/${f%%:*}.json" --logs-dir "$LOGS"
    assert_contains "$LAST_ERR" "${f#*:}" "${f%%:*}: says why"
    assert_eq "$before" "$(catalog mistyped)" "${f%%:*}: nothing created"
done
new_db already
q already "create table public.users (id uuid primary key)" >/dev/null
before=$(catalog already)
assert_exit 2 "key already uuid" -- phase 1 apply -d already --plan "$ROOT/plans/string-to-uuid.json" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" "already of type uuid" "says so"
assert_eq "$before" "$(catalog already)" "no migration_log, no migration_backup"

test_case "an index name the plan would create, already taken: exit 2 naming what holds it, nothing created"
fresh_app taken
q taken "create index users_firebase_uid_idx on public.tags (name)" >/dev/null
before=$(catalog taken)
assert_exit 2 "the name held by an index on another table" -- p 1 apply -d taken
assert_contains "$LAST_ERR" 'the name "users_firebase_uid_idx" is taken: index public.users_firebase_uid_idx is on table public.tags' "says where"
assert_eq "$before" "$(catalog taken)" "nothing created"
q taken "drop index public.users_firebase_uid_idx; alter table public.users add column firebase_uid varchar(128);
  create index users_firebase_uid_idx on public.users (lower(firebase_uid))" >/dev/null
before=$(catalog taken)
assert_exit 2 "the name held by another index on the table" -- p 1 apply -d taken
assert_contains "$LAST_ERR" "exists with another definition: CREATE INDEX users_firebase_uid_idx ON public.users USING btree (lower((firebase_uid)::text))" "shows the definition found"
assert_eq "$before" "$(catalog taken)" "nothing created"
q taken "drop index public.users_firebase_uid_idx; create index users_firebase_uid_idx on public.users (firebase_uid)" >/dev/null
assert_exit 0 "the very index the plan asks for is adopted" -- p 1 apply -d taken
assert_exit 0 "phase1 rollback" -- p 1 rollback -d taken
assert_eq "users_firebase_uid_idx" "$(q taken "select to_regclass('public.users_firebase_uid_idx')")" \
    "an index phasemig did not create is not dropped by its rollback"

test_case "a role without CREATE where the state goes: exit 2 naming the privilege, nothing created"
fresh_app noprivs
q postgres "drop role if exists owner2; create role owner2 login" >/dev/null
q noprivs "alter table public.users owner to owner2; revoke create on schema public from public;
  revoke create on database noprivs from public" >/dev/null
before=$(catalog noprivs)
assert_exit 2 "phase1 apply as owner2" -- p 1 apply -d "dbname=noprivs user=owner2"
assert_contains "$LAST_ERR" 'role "owner2" lacks CREATE on schema public (for public.migration_log) and CREATE on database noprivs (for schema migration_backup); nothing was created' "names both privileges"
assert_eq "$before" "$(catalog noprivs)" "nothing created"
q noprivs "grant create on schema public to owner2; grant create on database noprivs to owner2" >/dev/null
assert_exit 0 "with the privileges granted" -- p 1 apply -d "dbname=noprivs user=owner2"
assert_exit 0 "phase1 rollback" -- p 1 rollback -d "dbname=noprivs user=owner2"
