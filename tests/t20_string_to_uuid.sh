# t20_string_to_uuid.sh -- the string to UUID job on the real server: the seeds' schema
# converted and rolled back exactly (with and without finalize), foreign keys of every shape,
# non-canonical and invalid ids, orphans, dependent views, concurrent writes, kill -9, and
# a table with hostile names converted from an edited plan.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/string-to-uuid.json
must_dirs LOGS
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS" -d "$db"; }
fresh_app() { gen_app "$1" "${2:-500}" t20 "$TEST_TMP/data-$1"; }
# past_not_null DB: 200 generated users, phase1 and phase2 applied and the shadows made NOT NULL,
# as if an earlier phase3 apply had got past its NOT NULL step: the next one goes straight to the swap
past_not_null() {
    fresh_app "$1" 200
    must u 1 "$1" apply
    must u 2 "$1" apply
    q "$1" "alter table public.users alter column id_uuid set not null;
      alter table public.journal_entries alter column user_id_uuid set not null;
      alter table public.tags alter column user_id_uuid set not null" >/dev/null
}

test_case "the seeds' schema: key and every foreign key become uuid; rollback gives back schema and rows"
fresh_app seeds
start=$(db_state seeds)
start_dump=$(schema_dump seeds)
assert_exit 0 "phase1" -- u 1 seeds apply
after1=$(db_state seeds)
assert_exit 0 "phase2" -- u 2 seeds apply --batch-size 97
after2=$(db_state seeds)
assert_exit 0 "phase3 check" -- u 3 seeds check
assert_exit 0 "phase3 apply" -- u 3 seeds apply
for t in users.id journal_entries.user_id tags.user_id reminders.user_id; do
    assert_eq uuid "$(col_type seeds "public.${t%.*}" "${t#*.}")" "$t is uuid"
done
assert_eq "PRIMARY KEY (id)|t" "$(q seeds "select pg_get_constraintdef(oid), convalidated from pg_constraint where conname = 'users_pkey'")" "primary key kept its name"
assert_eq "journal_entries_user_id_fkey|FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE|t
reminders_user_id_fkey|FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL|t
tags_user_id_fkey|FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE|t" \
  "$(q seeds "select conname, pg_get_constraintdef(oid), convalidated from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace order by 1")" \
  "foreign keys back with their names and actions, validated"
assert_eq "UNIQUE (user_id, name)" "$(q seeds "select pg_get_constraintdef(oid) from pg_constraint where conname = 'tags_user_id_name_key'")" "unique constraint on the new column"
assert_eq "gen_random_uuid()" "$(q seeds "select pg_get_expr(adbin, adrelid) from pg_attrdef where adrelid = 'public.users'::regclass and adnum = (select attnum from pg_attribute where attrelid = 'public.users'::regclass and attname = 'id')")" "text default became a uuid default"
assert_eq "0" "$(q seeds "select count(*) from public.users where id::text <> id_legacy")" "every key equal to its text"
assert_eq "0" "$(q seeds "select count(*) from public.journal_entries j join public.users u on u.id = j.user_id where j.user_id_legacy <> u.id_legacy")" "children follow"
assert_exit 0 "status" -- u 2 seeds status
assert_contains "$LAST_OUT" "fill public.tags.user_id" "status lists each table"
n_tags=$(q seeds "select count(*) from public.tags")
assert_contains "$LAST_OUT" "fill public.tags.user_id: $n_tags of $n_tags rows scanned (100.0%), done" "rows converted of total"
assert_contains "$LAST_OUT" "all tables: " "the whole job's total"
assert_contains "$LAST_OUT" "orphans   0" "orphans shown"
assert_exit 0 "status --json" -- u 3 seeds status --json
assert_eq "swapped|500" "$(psql -X -A -t -q -d seeds -v j="$LAST_OUT" <<<"select (:'j'::jsonb)->'phases'->2->>'reached', (:'j'::jsonb)->'phases'->1->>'canonical'")" "phase reached and canonical count in JSON"
assert_exit 0 "phase3 apply again is a no-op" -- u 3 seeds apply
after_apply=$(db_state seeds)
assert_exit 0 "phase3 rollback" -- u 3 seeds rollback
assert_eq "$after2" "$(db_state seeds)" "after phase3 rollback: schema fingerprint and checksums as after phase2 (no index left on the shadows)"
assert_exit 0 "phase2 rollback" -- u 2 seeds rollback
assert_eq "$after1" "$(db_state seeds)" "after phase2 rollback: schema fingerprint and checksums as after phase1"
assert_exit 0 "phase1 rollback" -- u 1 seeds rollback
assert_eq "$start" "$(db_state seeds)" "schema fingerprint and checksums equal the start"
assert_eq "$start_dump" "$(schema_dump seeds)" "pg_dump --schema-only equal the start (no column moved)"
assert_eq "0" "$(q seeds "select count(*) from migration_backup.phasemig_objects")" "nothing left registered"

test_case "finalize drops the legacy columns; rollback after it restores from migration_backup"
for n in 1 2 3; do u $n seeds apply >/dev/null 2>&1 || _t_fail "phase$n apply"; done
assert_eq "$after_apply" "$(db_state seeds)" "a second apply ends where the first did"
assert_exit 0 "finalize" -- u 3 seeds finalize
assert_eq "" "$(q seeds "select string_agg(attrelid::regclass || '.' || attname, ',') from pg_attribute where attname like '%_legacy' and not attisdropped and attrelid::regclass::text not like 'migration%'")" "no legacy column left"
assert_eq "0" "$(q seeds "select count(*) from pg_trigger t join pg_class c on c.oid = t.tgrelid where c.relnamespace = 'public'::regnamespace and not t.tgisinternal")" "no trigger left"
assert_exit 0 "finalize again" -- u 3 seeds finalize
assert_exit 0 "phase3 rollback" -- u 3 seeds rollback
assert_eq "$after2" "$(db_state seeds)" "after phase3 rollback of a finalized job: schema and rows as after phase2"
for n in 2 1; do assert_exit 0 "phase$n rollback" -- u $n seeds rollback; done
assert_eq "$start" "$(db_state seeds)" "schema and rows equal the start"

test_case "foreign keys of every shape: empty child, odd name, nullable with NULLs, actions kept"
new_db shapes
q shapes "create table public.users (id varchar(36) primary key default gen_random_uuid()::text, n text);
  create table public.audit (id serial primary key, entity_id varchar(36) constraint whatever_you_like references public.users on delete restrict on update cascade);
  create table public.empty_child (id bigint primary key, owner varchar(36) not null constraint ec_owner references public.users on delete cascade deferrable initially deferred);
  insert into public.users (id) select gen_random_uuid()::text from generate_series(1, 50);
  insert into public.audit (entity_id) select case when g % 3 = 0 then null else (select id from public.users order by id offset g % 50 limit 1) end from generate_series(1, 200) g" >/dev/null
start=$(db_state shapes)
fks() { q shapes "select conname, conrelid::regclass, pg_get_constraintdef(oid), confdeltype, confupdtype, condeferrable, condeferred from pg_constraint where contype = 'f' order by 1"; }
start_fks=$(fks)
for n in 1 2 3; do assert_exit 0 "phase$n apply" -- u $n shapes apply; done
assert_eq "uuid|uuid" "$(col_type shapes public.audit entity_id)|$(col_type shapes public.empty_child owner)" "both children converted"
assert_eq "$start_fks" "$(fks)" "names, actions (confdeltype), deferrable kept"
assert_eq "66" "$(q shapes "select count(*) from public.audit where entity_id is null")" "NULLs stay NULL"
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- u $n shapes rollback; done
assert_eq "$start" "$(db_state shapes)" "back to the start"

test_case "upper case, braced and hyphen-less ids end canonical; garbage stops phase2 until regenerate"
new_db odd
q odd "create table public.users (id varchar(40) primary key, n text);
  create table public.notes (id int primary key, user_id varchar(40) references public.users on delete cascade);
  insert into public.users values ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'upper'), ('{b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12}', 'braces'),
    ('c0eebc999c0b4ef8bb6d6bb9bd380a13', 'bare'), ('not-a-uuid', 'garbage'), ('d0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14', 'fine');
  insert into public.notes select g, (array['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11','{b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12}','c0eebc999c0b4ef8bb6d6bb9bd380a13','not-a-uuid', null])[g % 5 + 1] from generate_series(1, 20) g" >/dev/null
start=$(db_state odd)
assert_exit 0 "phase1" -- u 1 odd apply
assert_exit 0 "an invalid id does not make the application's write fail" -- q odd "insert into public.users values ('also garbage', 'x'); delete from public.users where id = 'also garbage'"
before=$(db_state odd)
assert_exit 3 "phase2 stops on invalid ids" -- u 2 odd apply
assert_contains "$LAST_ERR" "check \"invalid uuid\" failed for public.users.id: 1 found" "invalid counted"
assert_contains "$LAST_ERR" "'not-a-uuid'" "sample key"
assert_contains "$LAST_ERR" "--on-invalid=regenerate" "says how to go on"
assert_contains "$LAST_ERR" "3 accepted but not canonical" "non-canonical counted"
assert_eq "$before" "$(db_state odd)" "nothing written"
assert_eq "refused" "$(q odd "select status from migration_log where phase = 2 and operation like 'convert%' order by id desc limit 1")" "audited"
assert_exit 0 "phase2 with --on-invalid=regenerate" -- u 2 odd apply --on-invalid=regenerate
new=$(q odd "select new from migration_backup.\"string-to-uuid:uuid_map\" where old = 'not-a-uuid'")
assert_ne "" "$new" "the old -> new map kept in migration_backup"
assert_exit 0 "phase3 apply" -- u 3 odd apply
assert_eq "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12|c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13|$new" \
  "$(q odd "select string_agg(id::text, '|' order by array_position(array['upper','braces','bare','garbage'], n)) from public.users where n in ('upper','braces','bare','garbage')")" "canonical, and the new uuid"
assert_eq "4" "$(q odd "select count(*) from public.notes where user_id = '$new' and user_id_legacy = 'not-a-uuid'")" "every child of the regenerated key follows it"
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- u $n odd rollback; done
assert_eq "$start" "$(db_state odd)" "original text back, byte for byte"

test_case "orphans are reported and stop phase2"
new_db orph
q orph "create table public.users (id varchar(36) primary key);
  create table public.posts (id int primary key, author varchar(36));
  insert into public.users select gen_random_uuid()::text from generate_series(1, 5);
  insert into public.posts select g, (select id from public.users limit 1) from generate_series(1, 5) g;
  insert into public.posts values (100, '11111111-1111-1111-1111-111111111111');
  alter table public.posts add constraint posts_author_fkey foreign key (author) references public.users not valid" >/dev/null
assert_exit 0 "phase1" -- u 1 orph apply
assert_exit 3 "phase2" -- u 2 orph apply
assert_contains "$LAST_ERR" 'check "orphan" failed for public.posts.author: 1 found' "orphan counted"
assert_contains "$LAST_ERR" "hint: these child rows point at no parent row" "how to find them"
assert_contains "$LAST_ERR" "--on-invalid=regenerate does not lift orphans" "and what does not help"
assert_contains "$LAST_ERR" "'100' (value '11111111-1111-1111-1111-111111111111')" "orphan shown with its key and value"

test_case "a view on a converted column stops phase3 check, by name"
fresh_app view 100
q view 'create view public."active users" as select id, email from public.users' >/dev/null
must u 1 view apply; must u 2 view apply
before=$(db_state view)
assert_exit 3 "phase3 check" -- u 3 view check
assert_contains "$LAST_ERR" 'view public."active users"' "the view is named"
assert_exit 3 "phase3 apply" -- u 3 view apply
assert_eq "$before" "$(db_state view)" "nothing changed"

test_case "inserts, updates and deletes from another connection between phase1 and phase3 end right"
fresh_app live 300
must u 1 live apply
q live 'do $$ begin create role phasemig_app; exception when duplicate_object then null; end $$;
  grant usage on schema public to phasemig_app; grant select, insert, update, delete on all tables in schema public to phasemig_app' >/dev/null
assert_exit 0 "an unprivileged application role writes through the triggers" -- q live "set role phasemig_app;
  insert into public.users (id, email) values ('F0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A98', 'app@x');
  insert into public.tags (user_id, name) values ('F0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A98', 'app tag')"
assert_eq "f0eebc99-9c0b-4ef8-bb6d-6bb9bd380a98" "$(q live "select user_id_uuid from public.tags where name = 'app tag'")" "its rows get their uuid"
q live "insert into public.users (id, email) values ('E0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A99', 'up@x');
  insert into public.journal_entries (user_id, title) values ('E0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A99', 'during phase1');
  update public.reminders set user_id = (select id from public.users order by id limit 1) where id = (select id from public.reminders order by id limit 1);
  delete from public.users where id = (select id from public.users order by id desc limit 1)" >/dev/null
must u 2 live apply
q live "insert into public.users (id, email) values (gen_random_uuid()::text, 'during phase2');
  update public.tags set user_id = 'E0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A99' where id = (select id from public.tags order by id limit 1)" >/dev/null
assert_exit 0 "phase3 check" -- u 3 live check
assert_exit 0 "phase3 apply" -- u 3 live apply
q live "insert into public.users (email) values ('after swap');
  insert into public.tags (user_id, name) select id, 'new' from public.users where email = 'after swap';
  update public.journal_entries set user_id = (select id from public.users where email = 'after swap') where title = 'during phase1'" >/dev/null
assert_eq "0" "$(q live "select count(*) from public.users where id_legacy is null or id_legacy::uuid <> id")" "legacy key of every user, new rows included"
assert_eq "0" "$(q live "select count(*) from public.tags t join public.users u on u.id = t.user_id where t.user_id_legacy is distinct from u.id_legacy")" "legacy child values equal their parent's"
assert_eq "0" "$(q live "select count(*) from public.journal_entries j join public.users u on u.id = j.user_id where j.user_id_legacy is distinct from u.id_legacy")" "updated child follows in legacy too"
assert_eq "E0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A99" "$(q live "select id_legacy from public.users where email = 'up@x'")" "original text kept"
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- u $n live rollback; done
assert_eq "varchar rows: 1|1" "varchar rows: $(q live "select count(*) from public.users where email = 'after swap'")|$(q live "select count(*) from public.tags t join public.users u on u.id = t.user_id where u.email = 'after swap'")" "rows written after the swap survive the rollback"
assert_eq "t" "$(q live "select bool_and(convalidated) from pg_constraint where contype = 'f'")" "foreign keys valid again on the text columns"

test_case "the swap locks the users table before its children: an application transaction holding users is not blocked writing children"
past_not_null lockorder
# the application: a user, then (once the swap waits for the users table) its rows in every child table,
# each allowed to wait 300 ms; a swap holding a child while it waits for users would make them time out
psql -X -q -v ON_ERROR_STOP=1 -d lockorder >"$TEST_TMP/app.out" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO public.users (id, email) VALUES ('d1b2c3d4-0000-4000-8000-000000000001', 'lockorder@x');
DO $$ BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE NOT granted AND relation = 'public.users'::regclass);
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SET LOCAL lock_timeout = '300ms';
INSERT INTO public.journal_entries (user_id, title) VALUES ('d1b2c3d4-0000-4000-8000-000000000001', 'lockorder');
INSERT INTO public.tags (user_id, name) VALUES ('d1b2c3d4-0000-4000-8000-000000000001', 'lockorder');
INSERT INTO public.reminders (user_id, note) VALUES ('d1b2c3d4-0000-4000-8000-000000000001', 'lockorder');
COMMIT;
SQL
app=$!
wait_for_sql lockorder "select count(*) from pg_stat_activity where datname = 'lockorder' and query like 'DO %'" 1
assert_exit 0 "phase3 apply waits for the application, then swaps" -- u 3 lockorder apply --lock-timeout 20000
wait "$app"; app_rc=$?
assert_eq "0" "$app_rc" "the application's transaction committed: $(cat "$TEST_TMP/app.out")"
assert_eq "3" "$(q lockorder "select (select count(*) from public.journal_entries where title = 'lockorder') + (select count(*) from public.tags where name = 'lockorder') + (select count(*) from public.reminders where note = 'lockorder')")" "its three child rows are there"
assert_eq "uuid|d1b2c3d4-0000-4000-8000-000000000001" "$(q lockorder "select pg_typeof(id), id_legacy from public.users where email = 'lockorder@x'")" "and its user, swapped"
assert_not_contains "$LAST_ERR" "deadlock" "the swap never deadlocked"

test_case "an application transaction that wrote a child, then queues behind the swap, is never the deadlock victim"
past_not_null victim
# H holds users for 3 s, so the swap queues for it; A writes a tag, then reads users behind the swap's request.
# When H ends, a swap still waiting would take users and wait for tags, held by A: a deadlock whose victim
# is A, which has waited longer. The swap's LOCK waits less than deadlock_timeout, so it gives up first.
# (A must start waiting within deadlock_timeout, 1 s, before H ends; the test allows for 0.5 s of slack)
psql -X -q -d victim -c "begin" -c "lock table public.users in access share mode" -c "select pg_sleep(3)" -c "commit" >/dev/null 2>&1 &
holder=$!
wait_for_sql victim "select count(*) from pg_stat_activity where datname = 'victim' and query like '%pg_sleep(3)%' and pid <> pg_backend_pid()" 1
h_started=$(date +%s.%N)
u 3 victim apply --lock-timeout 5000 >"$TEST_TMP/victim.out" 2>&1 &
swap=$!
sleep "$(awk -v s="$h_started" -v n="$(date +%s.%N)" 'BEGIN { w = s + 2.5 - n; print (w > 0 ? w : 0) }')"
assert_exit 0 "the application's transaction commits" -- psql -X -q -v ON_ERROR_STOP=1 -d victim -c "begin" \
  -c "insert into public.tags (user_id, name) select id, 'victim' from public.users order by id limit 1" \
  -c "select count(*) from public.users" -c "commit"
wait "$holder"; wait "$swap"; swap_rc=$?
assert_eq "0" "$swap_rc" "phase3 apply done: $(tail -3 "$TEST_TMP/victim.out")"
assert_eq "1|uuid" "$(q victim "select count(*) from public.tags where name = 'victim'")|$(col_type victim public.tags user_id)" "the tag is there, and swapped"

test_case "kill -9 during phase2, then phase2 again: the same data as a clean run"
fresh_app clean 400
must u 1 clean apply; must u 2 clean apply --batch-size 13
fresh_app killed 400
must u 1 killed apply
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d killed --batch-size 13 --sleep-ms 40 >/dev/null 2>&1 &
victim=$!
wait_for_sql killed "select coalesce(max(rows_done), 0) >= 52 from migration_log where operation like 'fill%'" t 30
kill -9 "$victim"; wait "$victim" 2>/dev/null
assert_exit 0 "phase2 again" -- u 2 killed apply --batch-size 13
assert_contains "$LAST_ERR" "resuming the interrupted fill public.users.id after key" "resumed from the checkpoint"
assert_eq "$(table_checksums clean)" "$(table_checksums killed)" "every table identical to the clean run"

test_case "hostile names and another table: an edited plan converts them and rolls back"
new_db hostile
q hostile 'create schema "we""ird";
  create table "we""ird"."Pe(ople" ("the ""key" varchar(36) primary key, name text);
  create table "we""ird"."Ord""ers" (no int primary key, "buyer (id)" varchar(36) not null constraint "fk ""buyer""" references "we""ird"."Pe(ople" on delete cascade);
  create index "ord ix" on "we""ird"."Ord""ers" ("buyer (id)");
  insert into "we""ird"."Pe(ople" select upper(gen_random_uuid()::text), $$O$$ || chr(39) || $$Brien$$ from generate_series(1, 120);
  insert into "we""ird"."Ord""ers" select g, (select "the ""key" from "we""ird"."Pe(ople" order by 1 offset g % 120 limit 1) from generate_series(1, 300) g' >/dev/null
edit_file "$PLAN" "$TEST_TMP/people.json" 's/"schema": "public"/"schema": "we\\"ird"/' 's/"table": "users"/"table": "Pe(ople"/' \
    's/"key": "id"/"key": "the \\"key"/' 's/"column": "id"/"column": "the \\"key"/' 's/"name": "string-to-uuid"/"name": "people-uuid"/'
start=$(db_state hostile)
HP="--plan $TEST_TMP/people.json --logs-dir $LOGS -d hostile"
for n in 1 2 3; do assert_exit 0 "phase$n apply" -- phase $n apply $HP; done
assert_eq "uuid|uuid" "$(q hostile "select format_type(atttypid, null) from pg_attribute where attrelid = '\"we\"\"ird\".\"Pe(ople\"'::regclass and attname = 'the \"key'")|$(q hostile "select format_type(atttypid, null) from pg_attribute where attrelid = '\"we\"\"ird\".\"Ord\"\"ers\"'::regclass and attname = 'buyer (id)'")" "converted"
assert_exit 0 "finalize" -- phase 3 finalize $HP
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- phase $n rollback $HP; done
assert_eq "$start" "$(db_state hostile)" "back to the start"

test_case "recreate_views: a view on a converted column is recreated around the swap and its undo"
fresh_app views 100
q views 'do $$ begin create role "report reader"; exception when duplicate_object then null; end $$' >/dev/null
q views 'create view public."active users" with (security_barrier) as select id, email from public.users where email is not null;
  grant select on public."active users" to "report reader"; comment on view public."active users" is $$who is active$$' >/dev/null
edit_file "$PLAN" "$TEST_TMP/views.json" 's/{"op": "convert_to_uuid", "column": "id"}/{"op": "convert_to_uuid", "column": "id", "recreate_views": true}/' \
    's/"name": "string-to-uuid"/"name": "uuid-views"/'
VP="--plan $TEST_TMP/views.json --logs-dir $LOGS -d views"
view_facts() { q views "select c.relacl::text, c.reloptions::text, obj_description(c.oid, 'pg_class') from pg_class c where c.oid = 'public.\"active users\"'::regclass"; }
start=$(db_state views); start_facts=$(view_facts)
for n in 1 2 3; do assert_exit 0 "phase$n apply" -- phase $n apply $VP; done
assert_eq "uuid" "$(col_type views 'public."active users"' id)" "the view now shows the uuid column"
assert_eq "$start_facts" "$(view_facts)" "grants, options and comment kept"
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- phase $n rollback $VP; done
assert_eq "$start" "$(db_state views)" "back to the start, view included"
assert_eq "$start_facts" "$(view_facts)" "grants, options and comment kept after the rollback"

test_case "a self-referencing key and a table with two foreign keys to users: every column keeps its own trigger"
new_db selfref
q selfref "create table public.users (id varchar(36) primary key default gen_random_uuid()::text,
    manager_id varchar(36) references public.users on delete set null, n text);
  create table public.messages (id serial primary key,
    sender_id varchar(36) not null references public.users on delete cascade,
    recipient_id varchar(36) references public.users, body text);
  create index msg_pair on public.messages (sender_id, recipient_id);
  insert into public.users (id) select upper(gen_random_uuid()::text) from generate_series(1, 60);
  update public.users set manager_id = (select min(id) from public.users) where id <> (select min(id) from public.users);
  insert into public.messages (sender_id, recipient_id)
    select a.id, case when a.id < b.id then b.id end from (select id from public.users order by id limit 12) a,
    (select id from public.users order by id desc limit 5) b" >/dev/null
start=$(db_state selfref)
assert_exit 0 "phase1" -- u 1 selfref apply
assert_eq "messages phasemig_string-to-uuid_uuid_fwd_1,messages phasemig_string-to-uuid_uuid_fwd_2,users phasemig_string-to-uuid_uuid_fwd_0,users phasemig_string-to-uuid_uuid_fwd_3" \
  "$(q selfref "select string_agg(tgrelid::regclass || ' ' || regexp_replace(tgname, '_[0-9a-f]{8}_', '_'), ',' order by tgrelid::regclass::text, tgname) from pg_trigger where not tgisinternal")" \
  "one trigger per converted column, two on each table"
assert_eq "sender_id_uuid, recipient_id_uuid" "$(q selfref "select detail->>'columns' from migration_backup.phasemig_objects
  where kind = 'uuid_index' and name = 'public.messages.msg_pair'")" "the index on both columns mirrored once, on both shadows"
# the application writes both columns of each table while the migration runs
q selfref "insert into public.users (id, manager_id) values ('AB000000-0000-4000-8000-000000000001', (select min(id) from public.users));
  insert into public.messages (sender_id, recipient_id) values ((select min(id) from public.users), 'AB000000-0000-4000-8000-000000000001')" >/dev/null
assert_exit 0 "phase2" -- u 2 selfref apply --batch-size 7
q selfref "update public.messages set recipient_id = (select max(id) from public.users) where id = (select min(id) from public.messages);
  update public.users set manager_id = 'AB000000-0000-4000-8000-000000000001' where id = (select max(id) from public.users)" >/dev/null
assert_eq "0|0" "$(q selfref "select count(*) filter (where recipient_id_uuid is distinct from recipient_id::uuid),
  count(*) filter (where sender_id_uuid is distinct from sender_id::uuid) from public.messages")" "both shadows of messages follow updates"
assert_exit 0 "phase3 check" -- u 3 selfref check
assert_exit 0 "phase3 apply" -- u 3 selfref apply
assert_eq "uuid|uuid|uuid|uuid" "$(col_type selfref public.users id)|$(col_type selfref public.users manager_id)|$(col_type selfref public.messages sender_id)|$(col_type selfref public.messages recipient_id)" "all four converted"
q selfref "insert into public.users (manager_id) select id from public.users order by id limit 1;
  insert into public.messages (sender_id, recipient_id) select (select id from public.users order by id limit 1),
    (select id from public.users order by id desc limit 1)" >/dev/null
assert_eq "0|0|0" "$(q selfref "select count(*) filter (where id_legacy is distinct from id::text and id_legacy::uuid <> id),
  count(*) filter (where manager_id is not null and manager_id_legacy is distinct from (select p.id_legacy from public.users p where p.id = u.manager_id)) from public.users u")|$(q selfref "select count(*)
  from public.messages m where m.sender_id_legacy is distinct from (select id_legacy from public.users where id = m.sender_id)
  or m.recipient_id_legacy is distinct from (select id_legacy from public.users where id = m.recipient_id)")" "legacy columns kept by their own triggers"
assert_exit 0 "finalize" -- u 3 selfref finalize
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- u $n selfref rollback; done
q selfref "delete from public.messages where id > (select max(id) - 1 from public.messages);
  delete from public.users where manager_id is not null and id not in (select id from public.users where id like '%-%-%-%-%' and id = upper(id))" >/dev/null
assert_eq "0" "$(q selfref "select count(*) from pg_trigger where not tgisinternal")" "no trigger left"
assert_eq "t" "$(q selfref "select bool_and(convalidated) from pg_constraint where contype = 'f'")" "foreign keys valid on the text columns"

test_case "a shadow the triggers did not see change stops phase3 check; a NOT VALID foreign key stays NOT VALID"
fresh_app stale 120
q stale "alter table public.reminders drop constraint reminders_user_id_fkey;
  alter table public.reminders add constraint reminders_user_id_fkey foreign key (user_id) references public.users on delete set null not valid" >/dev/null
start=$(db_state stale)
must u 1 stale apply; must u 2 stale apply
# a write with triggers off (as a logical replication apply worker does): the shadow keeps the old user
orig=$(q stale "select user_id from public.tags where id = (select min(id) from public.tags)")
q stale "set session_replication_role = replica;
  update public.tags set user_id = (select max(id) from public.users) where id = (select min(id) from public.tags)" >/dev/null
before=$(db_state stale)
assert_exit 3 "phase3 check" -- u 3 stale check
assert_contains "$LAST_ERR" 'check "shadow differs from its original" failed for public.tags.user_id: 1 found' "the stale row counted"
assert_contains "$LAST_ERR" "'$(q stale "select min(id) from public.tags")'" "and named"
assert_exit 3 "phase3 apply refuses too" -- u 3 stale apply
assert_eq "$before" "$(db_state stale)" "nothing changed"
q stale "update public.tags set user_id = '$orig' where id = (select min(id) from public.tags)" >/dev/null
assert_exit 0 "phase3 apply, once a normal write fixed it" -- u 3 stale apply
assert_eq "f|FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL NOT VALID" "$(q stale "select convalidated,
  pg_get_constraintdef(oid) from pg_constraint where conname = 'reminders_user_id_fkey'")" "the NOT VALID foreign key came back NOT VALID"
# a run stopped between the swap and the validations: the next apply validates what is left
q stale "alter table public.tags drop constraint tags_user_id_fkey;
  alter table public.tags add constraint tags_user_id_fkey foreign key (user_id) references public.users on delete cascade not valid" >/dev/null
assert_exit 0 "phase3 apply again" -- u 3 stale apply
assert_eq "t|f" "$(q stale "select convalidated from pg_constraint where conname = 'tags_user_id_fkey'")|$(q stale "select convalidated
  from pg_constraint where conname = 'reminders_user_id_fkey'")" "the left-over foreign key validated, the NOT VALID one left so"
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- u $n stale rollback; done
assert_eq "$start" "$(db_state stale)" "back to the start"
assert_eq "f" "$(q stale "select convalidated from pg_constraint where conname = 'reminders_user_id_fkey'")" "still NOT VALID"

test_case "a partitioned child is refused by phase1 with one clear line; rollback after the refusal works"
new_db parts
q parts "create table public.users (id varchar(36) primary key);
  create table public.events (id bigint, user_id varchar(36) references public.users, primary key (id)) partition by range (id);
  create table public.events_1 partition of public.events for values from (0) to (1000)" >/dev/null
start=$(db_state parts)
assert_exit 2 "phase1" -- u 1 parts apply
assert_contains "$LAST_ERR" "public.events is a partitioned table; not supported" "says which table and why"
assert_not_contains "$LAST_ERR" "events_1" "the partition's copy of the foreign key is not a target of its own"
assert_exit 0 "phase1 rollback" -- u 1 parts rollback
assert_eq "$start" "$(db_state parts)" "nothing left behind"
assert_eq "0" "$(q parts "select count(*) from migration_backup.phasemig_objects")" "nothing registered"

test_case "NOT NULL on the shadows scans no table again: SET NOT NULL finds the validated CHECK (PostgreSQL 12+)"
# the server says so at DEBUG1 (NotNullImpliedByRelConstraints); without it SET NOT NULL would scan each
# table under ACCESS EXCLUSIVE. Control: the nullable child's shadow (reminders) gets no NOT NULL, no line.
fresh_app nn 200
must u 1 nn apply
must u 2 nn apply
slog=$PGHOST/server.log from=$(($(wc -l <"$slog") + 1))
PGOPTIONS="-c log_min_messages=debug1" assert_exit 0 "phase3 apply" -- u 3 nn apply
proved=$(tail -n +"$from" "$slog" | grep -o 'existing constraints on column "[a-z_.]*" are sufficient to prove that it does not contain nulls' | sort)
assert_eq 'existing constraints on column "journal_entries.user_id_uuid" are sufficient to prove that it does not contain nulls
existing constraints on column "tags.user_id_uuid" are sufficient to prove that it does not contain nulls
existing constraints on column "users.id_uuid" are sufficient to prove that it does not contain nulls' "$proved" \
  "each SET NOT NULL proven by its CHECK, once, and only the NOT NULL columns"
assert_eq "t|f|t|t" "$(q nn "select string_agg(attnotnull::text, '|' order by attrelid::regclass::text) from pg_attribute
  where (attrelid, attname) in (('public.users'::regclass, 'id'), ('public.journal_entries'::regclass, 'user_id'),
  ('public.tags'::regclass, 'user_id'), ('public.reminders'::regclass, 'user_id'))" | sed 's/true/t/g; s/false/f/g')" \
  "NOT NULL where the originals had it"
