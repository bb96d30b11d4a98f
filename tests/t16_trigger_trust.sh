# t16_trigger_trust.sh -- code planted as a trigger on a migrated table never runs with more
# rights than the table's owner: run as the superuser postgres, phasemig works as the owner
# (SET ROLE) on every connection; a trigger whose function another role owns is refused
# (exit 3, nothing changed) naming it, unless the plan trusts it, and then it fires as the
# owner. A role with TRIGGER plants `ALTER ROLE t16_app SUPERUSER`: t16_app never becomes
# superuser, with each plan, on users and on a child table with an owner of its own.
source "$(dirname "$0")/lib.sh"

CLERK=$ROOT/plans/clerk-to-firebase.json
UUID=$ROOT/plans/string-to-uuid.json
must_dirs LOGS DATA
c() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$CLERK" --logs-dir "$LOGS" -d "$db"; }
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$UUID" --logs-dir "$LOGS" -d "$db"; }

q postgres "drop role if exists t16_member; drop role if exists t16_owner; drop role if exists t16_child;
  drop role if exists t16_planter; drop role if exists t16_app; create role t16_owner login; create role t16_child login;
  drop role if exists t16_stranger; create role t16_stranger login;
  create role t16_planter login; create role t16_app login; create role t16_member login;
  grant t16_child to t16_owner; grant t16_owner to t16_member" >/dev/null

# owned_app DB: generated users, every table owned by t16_owner (not a superuser), who may
# create phasemig's state; the schema planter belongs to t16_planter, who has nothing else
owned_app() {
    gen_app "$1" 300 t16 "$DATA/$1"
    must q "$1" "alter table public.users owner to t16_owner; alter table public.journal_entries owner to t16_owner;
      alter table public.tags owner to t16_owner; alter table public.reminders owner to t16_owner;
      grant create on database \"$1\" to t16_owner; grant create on schema public to t16_owner;
      create schema planter authorization t16_planter"
}
# plant DB TABLE: as t16_planter, with only TRIGGER on TABLE: a BEFORE UPDATE trigger whose
# function records who it ran as (into a table every role may insert into) and tries to make
# t16_app a superuser, which only a superuser can do
plant() {
    must q "$1" "grant trigger on public.$2 to t16_planter"
    psql -X -q -v ON_ERROR_STOP=1 -U t16_planter -d "$1" >/dev/null 2>"$TEST_TMP/plant.err" <<SQL || setup_failed "plant" "$(cat "$TEST_TMP/plant.err")"
create table if not exists planter.seen (who text, session text, app text);
grant usage on schema planter to public;
grant insert on planter.seen to public;
create or replace function planter.f() returns trigger language plpgsql as \$\$
begin
  insert into planter.seen values (current_user, session_user, current_setting('application_name'));
  begin execute 'alter role t16_app superuser'; exception when insufficient_privilege then null; end;
  return new;
end \$\$;
create trigger planted before update on public.$2 for each row execute function planter.f();
SQL
}
# trusting IN OUT TABLE: plan IN with a trusted_triggers entry for trigger "planted" on TABLE
trusting() { edit_file "$1" "$2" "s/\"operations\": \[/\"trusted_triggers\": [{\"table\": \"$3\", \"trigger\": \"planted\", \"comment\": \"reviewed\"}],\n  \"operations\": [/"; }
superuser() { q "$1" "select rolsuper from pg_roles where rolname = 't16_app'"; }
# who the planted code ran as: "current_user|session_user" pairs, distinct
seen_as() { q "$1" "select string_agg(distinct who || '|' || session, ',') from planter.seen"; }
seen() { q "$1" "select count(*) from planter.seen"; }
catalog() { schema_fingerprint "$1"; q "$1" "select string_agg(nspname, ',' order by nspname) from pg_namespace"; }

test_case "run as the superuser postgres on tables owned by t16_owner: one line says so; phasemig's state and trigger functions belong to the owner"
owned_app clerk
assert_exit 0 "phase1 apply" -- c 1 clerk apply
assert_contains "$LAST_ERR" 'connected as superuser "postgres": every statement runs as "t16_owner", the owner of "public"."users" (SET ROLE)' "says who it runs as"
assert_eq "1" "$(grep -c 'every statement runs as' <<<"$LAST_ERR")" "one line"
assert_eq "t16_owner|t16_owner" "$(q clerk "select pg_get_userbyid(nspowner), (select pg_get_userbyid(relowner) from pg_class
  where oid = 'public.migration_log'::regclass) from pg_namespace where nspname = 'migration_backup'")" "state owned by t16_owner"
assert_eq "t16_owner" "$(q clerk "select string_agg(distinct pg_get_userbyid(proowner), ',') from pg_proc
  where pronamespace = 'migration_backup'::regnamespace and prosecdef")" "the SECURITY DEFINER sync function runs as t16_owner, not postgres"
assert_eq "t16_owner" "$(q clerk "select string_agg(distinct db_user, ',') from migration_log")" "migration_log: written as t16_owner"
assert_eq "postgres" "$(q clerk "select string_agg(distinct metadata->>'connected_as', ',') from migration_log")" "migration_log: who connected"
assert_exit 0 "phase1 status as t16_member, a member of t16_owner" -- c 1 "dbname=clerk user=t16_member" status
assert_contains "$LAST_ERR" 'connected as "t16_member": every statement runs as "t16_owner"' "a member is switched too"

test_case "clerk-to-firebase: a trigger planted on users (function of another role): phase2 apply, its dry run and phase1 rollback refuse (exit 3) naming it; nothing filled, nothing fired"
plant clerk users
before=$(db_state clerk)
log_rows=$(q clerk "select count(*) from migration_log")
want='trigger planted on public.users runs planter.f(), owned by "t16_planter", not by "t16_owner" (the owner of public.users, whom phasemig runs as)'
assert_exit 3 "phase2 apply --dry-run" -- c 2 clerk apply --dry-run --mapping "$DATA/clerk/mapping.csv"
assert_contains "$LAST_ERR" "$want" "dry run: names trigger, table, function and both owners"
assert_exit 3 "phase2 apply" -- c 2 clerk apply --mapping "$DATA/clerk/mapping.csv"
assert_contains "$LAST_ERR" "$want" "names trigger, table, function and both owners"
assert_contains "$LAST_ERR" '"trusted_triggers"' "says how to trust it"
assert_contains "$LAST_ERR" "nothing was changed" "says nothing changed"
assert_exit 3 "phase1 rollback" -- c 1 clerk rollback
assert_contains "$LAST_ERR" "$want" "rollback: names it too"
assert_eq "$before" "$(db_state clerk)" "schema and every table as before"
assert_eq "$log_rows" "$(q clerk "select count(*) from migration_log")" "no migration_log row"
assert_eq "0" "$(seen clerk)" "the planted code never ran"
assert_eq "f" "$(superuser clerk)" "t16_app is not superuser"

test_case "clerk-to-firebase: the planted trigger listed in trusted_triggers fires, as t16_owner on every --jobs connection: no privilege gained"
trusting "$CLERK" "$TEST_TMP/clerk-trusting.json" users
assert_exit 0 "phase1 plan" -- phase 1 plan --plan "$TEST_TMP/clerk-trusting.json"
assert_contains "$LAST_OUT" "trusted trigger planted on public.users" "the plan shows what it trusts"
assert_exit 0 "phase2 apply --jobs 2" -- phase 2 apply --plan "$TEST_TMP/clerk-trusting.json" --logs-dir "$LOGS" -d clerk \
    --mapping "$DATA/clerk/mapping.csv" --jobs 2 --batch-size 50
assert_contains "$LAST_ERR" 'trigger planted on public.users runs planter.f(), owned by "t16_planter", not by "t16_owner" (the owner of public.users, whom phasemig runs as): trusted by the plan' "names the trusted trigger"
assert_contains "$LAST_ERR" "on 2 connections" "two connections filled"
assert_ne "0" "$(q clerk "select count(*) from public.users where firebase_uid is not null")" "users filled"
assert_ne "0" "$(q clerk "select count(*) from planter.seen where app like '%job 2)'")" "it fired on the second connection too"
assert_eq "t16_owner|postgres" "$(seen_as clerk)" "it ran as t16_owner, connected as postgres"
assert_eq "f" "$(superuser clerk)" "t16_app is not superuser"
assert_exit 0 "phase2 rollback (the restore fires it too)" -- phase 2 rollback --plan "$TEST_TMP/clerk-trusting.json" --logs-dir "$LOGS" -d clerk
assert_eq "0" "$(q clerk "select count(*) from public.users where firebase_uid is not null")" "restored"
assert_eq "t16_owner|postgres" "$(seen_as clerk)" "still only as t16_owner"
assert_eq "f" "$(superuser clerk)" "t16_app is not superuser"

test_case "string-to-uuid: a trigger planted on users refuses phase1 (exit 3) before anything is created; trusted, phase1 and phase2 run and it fires as t16_owner"
owned_app uuid
plant uuid users
before=$(catalog uuid)
assert_exit 3 "phase1 apply" -- u 1 uuid apply
assert_contains "$LAST_ERR" 'trigger planted on public.users runs planter.f(), owned by "t16_planter", not by "t16_owner" (the owner of public.users, whom phasemig runs as)' "names it"
assert_eq "$before" "$(catalog uuid)" "nothing created: no column, no migration_log, no migration_backup"
trusting "$UUID" "$TEST_TMP/uuid-trusting.json" users
# a trigger running a function built into the server is not someone's planted code
must q uuid "create trigger same before update on public.tags for each row execute function suppress_redundant_updates_trigger()"
assert_exit 0 "phase1 apply (trusted)" -- phase 1 apply --plan "$TEST_TMP/uuid-trusting.json" --logs-dir "$LOGS" -d uuid
assert_exit 0 "phase2 apply (trusted)" -- phase 2 apply --plan "$TEST_TMP/uuid-trusting.json" --logs-dir "$LOGS" -d uuid
assert_eq "0" "$(q uuid "select count(*) from public.users where id_uuid is null")" "every key's shadow filled"
assert_ne "0" "$(seen uuid)" "the trusted trigger fired"
assert_eq "t16_owner|postgres" "$(seen_as uuid)" "as t16_owner"
assert_eq "f" "$(superuser uuid)" "t16_app is not superuser"

test_case "string-to-uuid: a trigger planted on a child table with an owner of its own (or one of that owner's) refuses phase2 (exit 3) naming it; trusted, it fires as users' owner"
owned_app child
must q child "alter table public.journal_entries owner to t16_child"
assert_exit 0 "phase1 apply (t16_owner is a member of t16_child)" -- u 1 child apply
plant child journal_entries
# the child's owner's own function fires as t16_owner too: t16_child could put its code there
must q child "create function public.touch() returns trigger language plpgsql as 'begin return new; end';
  alter function public.touch() owner to t16_child;
  create trigger \"need\"\"q(uot\" before update on public.journal_entries for each row execute function public.touch()"
before=$(db_state child)
assert_exit 3 "phase2 apply" -- u 2 child apply
assert_contains "$LAST_ERR" 'trigger "need""q(uot" on public.journal_entries runs public.touch(), owned by "t16_child", not by "t16_owner"' "the child owner's function too, its hostile name quoted"
must q child "drop trigger \"need\"\"q(uot\" on public.journal_entries; drop function public.touch()"
before=$(db_state child)
assert_contains "$LAST_ERR" 'trigger planted on public.journal_entries runs planter.f(), owned by "t16_planter", not by "t16_owner" (the owner of public.users, whom phasemig runs as)' "names the trigger on the child"
assert_not_contains "$LAST_ERR" "phasemig_" "phasemig's own triggers on the child are not named"
assert_eq "$before" "$(db_state child)" "nothing filled"
assert_eq "0" "$(seen child)" "the planted code never ran"
trusting "$UUID" "$TEST_TMP/child-trusting.json" journal_entries
assert_exit 0 "phase2 apply (trusted)" -- phase 2 apply --plan "$TEST_TMP/child-trusting.json" --logs-dir "$LOGS" -d child
assert_eq "0" "$(q child "select count(*) from public.journal_entries where user_id is not null and user_id_uuid is null")" "child filled"
assert_ne "0" "$(seen child)" "the trusted trigger fired"
assert_eq "t16_owner|postgres" "$(seen_as child)" "as t16_owner"
assert_eq "f" "$(superuser child)" "t16_app is not superuser"

test_case "a child table whose owner's role users' owner lacks, or an owner without CREATE for the state: a superuser's phase1 refuses (exit 2) naming users' owner; nothing created"
owned_app stranger
must q stranger "alter table public.tags owner to t16_stranger"
before=$(catalog stranger)
assert_exit 2 "phase1 apply" -- u 1 stranger apply
assert_contains "$LAST_ERR" 'role "t16_owner" may not alter public.tags (owner t16_stranger); nothing was created' "names the child, its owner and the role phasemig runs as"
assert_contains "$LAST_ERR" 'GRANT owner TO "t16_owner"' "says what to grant"
assert_eq "$before" "$(catalog stranger)" "nothing created"
must q stranger "alter table public.tags owner to t16_owner; revoke create on database stranger from t16_owner;
  revoke create on schema public from t16_owner"
assert_exit 2 "phase1 apply, the owner lacking CREATE where the state goes" -- u 1 stranger apply
assert_contains "$LAST_ERR" 'role "t16_owner" lacks CREATE on schema public (for public.migration_log) and CREATE on database stranger' "names the owner's missing privileges, not the superuser's"
assert_contains "$LAST_ERR" 'grant it to "t16_owner"' "says whom to grant it to"

test_case "state an earlier run made as postgres, on tables now owned by t16_owner: refused (exit 3) naming its owner and the statements that give it to t16_owner; once given, phase2 runs"
gen_app earlier 300 t16 "$DATA/earlier"
assert_exit 0 "phase1 apply as postgres on tables postgres owns (no switch)" -- c 1 earlier apply
assert_not_contains "$LAST_ERR" "every statement runs as" "the owner connected: nothing to say"
must q earlier "alter table public.users owner to t16_owner; alter table public.journal_entries owner to t16_owner;
  alter table public.tags owner to t16_owner; alter table public.reminders owner to t16_owner"
before=$(db_state earlier)
assert_exit 3 "phase2 apply" -- c 2 earlier apply --mapping "$DATA/earlier/mapping.csv"
assert_contains "$LAST_ERR" "relation public.migration_log (owner postgres) is owned by a role phasemig does not run as" "names the log and its owner"
assert_contains "$LAST_ERR" 'give it to "t16_owner" (as a superuser): ALTER SCHEMA migration_backup OWNER TO t16_owner; ALTER TABLE' "says how to give it to the owner"
assert_eq "$before" "$(db_state earlier)" "nothing changed"
fix=$(sed -n 's/.*give it to "t16_owner" (as a superuser): //p' <<<"$LAST_ERR")
must q earlier "$fix"
assert_exit 0 "phase2 apply, once given" -- c 2 earlier apply --mapping "$DATA/earlier/mapping.csv"
assert_ne "0" "$(q earlier "select count(*) from public.users where firebase_uid is not null")" "users filled"
assert_eq "t16_owner" "$(q earlier "select string_agg(distinct pg_get_userbyid(proowner), ',') from pg_proc
  where pronamespace = 'migration_backup'::regnamespace")" "phase1's sync function now runs as t16_owner"

test_case "every connection a run opens is switched to the owner: db_connect is called by engine/run.c alone"
assert_eq "common/engine/run.c" "$(grep -rl 'db_connect(' "$ROOT/common" "$ROOT/phases" --include='*.c' | sed "s|^$ROOT/||" | grep -v '^common/core/' | sort)" \
    "another caller would open a connection without SET ROLE: open it with run_connect()"
