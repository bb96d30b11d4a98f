# t12_clerk_paths.sh -- the Clerk to Firebase job's other paths: generated uids that stay the
# same through rollbacks and re-applies, import files that list each generated user exactly once
# whatever was interrupted (SIGTERM, kill -9, a connection lost during the commit), application
# writes to a column the plan fills (under a pgbench load) given back by rollback, and the
# Clerk plan's rollback after the string-to-uuid plan changed the key's type.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
UPLAN=$ROOT/plans/string-to-uuid.json
must_dirs DATA
GEN='migration_backup."clerk-to-firebase:generated"'
LEDGER='migration_backup."clerk-to-firebase:import_files"'

# fresh_app DB USERS [MISSING_PCT]: the legacy app schema with generated users (same seed every time)
fresh_app() { gen_app "$1" "$2" t12 "$DATA" --missing-pct "${3:-20}"; }
# each test case has its own logs directory (p1, p2, p3 use $LOGS), so its import files can be counted
new_logs() { LOGS=$TEST_TMP/logs-$1; fresh_dir "$LOGS"; }
# every localId of every final import file, one a line, sorted (duplicates kept)
listed_uids() { cat "$LOGS"/*-firebase-import-*.json 2>/dev/null | sed -n 's/.*"localId": "\([^"]*\)".*/\1/p' | LC_ALL=C sort; }
# DB: the union of the import files lists every generated user exactly once, and no file is left partial
assert_exactly_once() {
    local listed
    listed=$(listed_uids)
    assert_eq "" "$(uniq -d <<<"$listed")" "no user listed by two import files"
    assert_eq "$(q "$1" "select firebase_uid from $GEN order by firebase_uid collate \"C\"")" "$listed" \
        "the import files together list every generated user"
    assert_eq "" "$(ls "$LOGS" | grep '\.partial$')" "no partial import file left"
}

test_case "rollback 3, 2, 1 and apply 1, 2, 3 again: the same generated uids, and no user in two import files"
new_logs cycle
fresh_app cycle 500
assert_exit 0 "phase1 apply" -- p1 apply -d cycle
assert_exit 0 "phase2 apply" -- p2 apply -d cycle --mapping "$DATA/firebase-export.json" --generate-missing \
  --clerk-export "$DATA/clerk-export.csv" --batch-size 50
assert_exit 0 "phase3 apply" -- p3 apply -d cycle
uids=$(q cycle "select id || ' ' || firebase_uid from public.users order by id")
n_gen=$(q cycle "select count(*) from $GEN")
assert_ne "0" "$n_gen" "some users were given new uids"
assert_exit 0 "phase3 rollback" -- p3 rollback -d cycle
assert_exit 0 "phase2 rollback" -- p2 rollback -d cycle
assert_eq "0" "$(q cycle "select count(*) from public.users where firebase_uid is not null")" "phase2 rollback emptied the uids"
# phase2 again on its own, then the whole way back
assert_exit 0 "phase2 apply again" -- p2 apply -d cycle --mapping "$DATA/firebase-export.json" --generate-missing
assert_eq "$uids" "$(q cycle "select id || ' ' || firebase_uid from public.users order by id")" "same uids after phase2 rollback and apply"
assert_exit 0 "phase2 rollback" -- p2 rollback -d cycle
assert_exit 0 "phase1 rollback" -- p1 rollback -d cycle
assert_contains "$LAST_ERR" "kept the generated uids" "says the generated uids are kept"
assert_eq "" "$(q cycle "select attname from pg_attribute where attrelid = 'public.users'::regclass and attname = 'firebase_uid' and not attisdropped")" \
  "phase1 rollback dropped the column"
assert_eq "$n_gen" "$(q cycle "select count(*) from $GEN")" "the generated uids survive phase1 rollback"
# a user the application adds meanwhile, whom no export knows
q cycle "insert into public.users (id, clerk_user_id, email) values ('00000000-new', 'user_brand_new', 'brand@new.example')" >/dev/null
assert_exit 0 "phase1 apply again" -- p1 apply -d cycle
assert_exit 0 "phase2 apply again" -- p2 apply -d cycle --mapping "$DATA/firebase-export.json" --generate-missing \
  --clerk-export "$DATA/clerk-export.csv"
assert_exit 0 "phase3 apply again" -- p3 apply -d cycle
assert_eq "$uids" "$(q cycle "select id || ' ' || firebase_uid from public.users where id <> '00000000-new' order by id")" \
  "every user has the uid it had before"
assert_eq "2" "$(ls "$LOGS"/*-firebase-import-*.json | wc -l)" "one more import file, for the new user only"
assert_eq "1" "$(grep -c '"localId"' "$(ls -t "$LOGS"/*-firebase-import-*.json | head -1)")" "the second file lists one user"
assert_exactly_once cycle
assert_eq "2|$((n_gen + 1))" "$(q cycle "select count(*), sum(users) from $LEDGER")" \
  "the ledger names each file with its users"

test_case "--discard-generated-uids: only on rollback (exit 2 elsewhere); phase1 rollback with it forgets the uids"
assert_exit 2 "refused on apply" -- p1 apply -d cycle --discard-generated-uids
assert_contains "$LAST_ERR" "accepted by rollback only" "says where it belongs"
assert_exit 2 "refused by phase3" -- p3 rollback -d cycle --discard-generated-uids
assert_exit 0 "phase1 --help" -- phase 1 --help
assert_contains "$LAST_OUT" "--discard-generated-uids" "documented in --help"
q cycle "create table public.old_uids as select firebase_uid from $GEN" >/dev/null
assert_exit 0 "phase3 rollback" -- p3 rollback -d cycle
assert_exit 0 "phase2 rollback" -- p2 rollback -d cycle
assert_exit 0 "phase1 rollback --discard-generated-uids" -- p1 rollback -d cycle --discard-generated-uids
assert_contains "$LAST_ERR" "must not be imported now" "names the import files that listed them"
assert_eq "0" "$(q cycle "select count(*) from pg_tables where schemaname = 'migration_backup' and tablename like 'clerk-to-firebase:%'")" \
  "no table of the plan left"
assert_exit 0 "phase1 apply" -- p1 apply -d cycle
assert_exit 0 "phase2 apply" -- p2 apply -d cycle --mapping "$DATA/firebase-export.json" --generate-missing
assert_eq "$(q cycle "select count(*) from public.old_uids")|0" "$(q cycle "select count(*), count(*) filter (where o.firebase_uid is not null)
  from $GEN g left join public.old_uids o using (firebase_uid)")" "as many generated uids as before, all new"

test_case "generated uids an earlier phasemig kept only in the source table are adopted: the same uids, listed no second time"
new_logs adopt
fresh_app adopt 200
must p1 apply -d adopt
assert_exit 0 "phase2 apply" -- p2 apply -d adopt --mapping "$DATA/firebase-export.json" --generate-missing
uids=$(q adopt "select id || ' ' || firebase_uid from public.users order by id")
n_gen=$(q adopt "select count(*) from $GEN")
# what the earlier version left: the uids only in the source table, each marked with the run of its import file
q adopt "alter table migration_backup.\"clerk-to-firebase:source\" add column import_file text;
  update migration_backup.\"clerk-to-firebase:source\" s set import_file = g.import_file::text from $GEN g
    where g.firebase_uid = s.firebase_uid and s.origin = 'generated';
  drop table $GEN; drop table $LEDGER" >/dev/null
assert_exit 0 "phase2 rollback" -- p2 rollback -d adopt
assert_contains "$LAST_ERR" "kept $n_gen generated uids found in" "adopted before the source is emptied"
assert_exit 0 "phase2 apply again" -- p2 apply -d adopt --mapping "$DATA/firebase-export.json" --generate-missing
assert_eq "$uids" "$(q adopt "select id || ' ' || firebase_uid from public.users order by id")" "the same uids"
assert_eq "1" "$(ls "$LOGS"/*-firebase-import-*.json | wc -l)" "no second import file"
assert_exactly_once adopt

for sig in TERM KILL; do
    test_case "SIG$sig to phase2 without --generate-missing, resumed with it: one run fills every row and lists every generated user"
    db=sig_${sig,,}
    new_logs "$db"
    fresh_app "$db" 500
    must p1 apply -d "$db"
    "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d "$db" --mapping "$DATA/firebase-export.json" \
        --batch-size 7 --sleep-ms 30 >/dev/null 2>&1 &
    victim=$!
    wait_for_sql "$db" "select coalesce(max(rows_done), 0) >= 350 from migration_log where operation like 'backfill%'" t 60
    kill -"$sig" "$victim"; wait "$victim" 2>/dev/null
    before_key=$(q "$db" "select count(*) from public.users where firebase_uid is null
      and id <= (select last_key from migration_log where operation like 'backfill%' order by id desc limit 1)")
    assert_ne "0" "$before_key" "rows before the checkpoint have no match yet"
    assert_exit 0 "phase2 resumed with --generate-missing" -- p2 apply -d "$db" --mapping "$DATA/firebase-export.json" --generate-missing
    assert_contains "$LAST_ERR" "resuming the interrupted backfill" "resumed, not restarted"
    assert_not_contains "$LAST_ERR" "no match in the mapping" "no row left without a match"
    assert_eq "0" "$(q "$db" "select count(*) from public.users where firebase_uid is null")" "every row filled"
    assert_eq "1" "$(ls "$LOGS"/*-firebase-import-*.json | wc -l)" "one import file"
    assert_exactly_once "$db"
    assert_eq "0" "$(q "$db" "select count(*) from $GEN g left join public.users u on u.firebase_uid = g.firebase_uid where u.id is null")" \
      "each generated uid is in its row"
done

# The import file's commit made to wait for a lock the test holds: a deferred constraint trigger on
# the ledger takes an advisory lock at COMMIT. The trigger is added once phase2 is filling rows, after
# its start-up check of migration_backup (which refuses any trigger phasemig did not make).
# Returns with phase2 ($victim) waiting inside its COMMIT.
hold_commit_setup() {   # hold_commit_setup DB
    local db=$1
    fresh_app "$db" 300
    must p1 apply -d "$db"
    assert_exit 0 "phase2 apply" -- p2 apply -d "$db" --mapping "$DATA/firebase-export.json" --generate-missing
    q "$db" "insert into public.users (id, clerk_user_id, email) select '00000000-late-' || g, 'user_late_' || g, null
      from generate_series(1, 5) g;
      create function public.hold_commit() returns trigger language plpgsql as \$\$
        begin perform pg_advisory_xact_lock(4242); return null; end \$\$" >/dev/null
    psql -X -q -d "$db" -c "select pg_advisory_lock(4242)" -c "select pg_sleep(120)" >/dev/null 2>&1 &
    holder=$!
    wait_for_sql "$db" "select count(*) from pg_locks where locktype = 'advisory' and objid = 4242 and granted" 1
    "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d "$db" --mapping "$DATA/firebase-export.json" --generate-missing \
        --batch-size 10 --sleep-ms 100 >/dev/null 2>&1 &
    victim=$!
    wait_for_sql "$db" "select count(*) from migration_log where operation like 'backfill%' and status = 'running' and rows_done > 0" 1 60
    q "$db" "create constraint trigger hold_commit after insert on $LEDGER deferrable initially deferred
        for each row execute function public.hold_commit()" >/dev/null
    wait_for_sql "$db" "select count(*) from pg_stat_activity where application_name like 'phase2 apply%'
      and query = 'COMMIT' and wait_event_type = 'Lock'" 1 60
    partial=$(ls "$LOGS"/*.partial 2>/dev/null)
    assert_eq "1" "$(wc -w <<<"$partial")" "the file exists under its temporary name while the commit waits"
    assert_eq "1" "$(ls "$LOGS"/*-firebase-import-*.json | wc -l)" "only the first run's file has its final name"
    run_id=$(basename "$partial" | cut -c1-36)
}
release_hold() {   # release_hold DB
    q "$1" "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(120)%' and pid <> pg_backend_pid()" >/dev/null
    wait "$holder" 2>/dev/null
    q "$1" "drop trigger hold_commit on $LEDGER; drop function public.hold_commit()" >/dev/null
}

test_case "connection lost during the import file's COMMIT (not committed): the re-run removes the partial file and lists those users"
new_logs lost
hold_commit_setup lost
q lost "select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'phase2 apply%' and query = 'COMMIT'" >/dev/null
wait "$victim"; assert_eq "1" "$?" "phase2 failed"
release_hold lost
assert_eq "1" "$(ls "$LOGS"/*.partial | wc -l)" "the partial file stays"
assert_eq "0" "$(q lost "select count(*) from $LEDGER where run_id = '$run_id'")" "its users were not committed"
assert_exit 0 "phase2 again" -- p2 apply -d lost --mapping "$DATA/firebase-export.json" --generate-missing
assert_contains "$LAST_ERR" "$run_id-firebase-import-bcrypt.json.partial\": its run did not commit" "says why it removed the file"
assert_eq "5" "$(grep -c '"localId"' "$(ls -t "$LOGS"/*-firebase-import-*.json | head -1)")" "the new file lists the five new users"
assert_exactly_once lost

test_case "phase2 killed during the import file's COMMIT, which then commits: the re-run gives the partial file its final name"
new_logs committed
hold_commit_setup committed
kill -9 "$victim"; wait "$victim" 2>/dev/null
# the server finishes the COMMIT once the lock is free, though its client is gone
release_hold committed
wait_for_sql committed "select count(*) from $LEDGER where run_id = '$run_id'" 1
assert_eq "1" "$(ls "$LOGS"/*.partial | wc -l)" "the partial file is left by the killed run"
assert_exit 0 "phase2 again" -- p2 apply -d committed --mapping "$DATA/firebase-export.json" --generate-missing
assert_contains "$LAST_ERR" "committed its import file but stopped before naming it" "says it finished the file"
assert_contains "$LAST_ERR" "no user to import" "and writes no new file"
assert_eq "5" "$(grep -c '"localId"' "$LOGS/$run_id-firebase-import-bcrypt.json")" "the renamed file lists the five new users"
assert_eq "0" "$(ls "$LOGS"/*.partial 2>/dev/null | wc -l)" "no partial file left"
assert_exactly_once committed
# a partial file of a run this plan never had is not touched
must touch "$LOGS/00000000-0000-4000-8000-000000000000-firebase-import-bcrypt.json.partial"
assert_exit 0 "phase2 again" -- p2 apply -d committed --mapping "$DATA/firebase-export.json" --generate-missing
assert_eq "1" "$(ls "$LOGS"/*.partial | wc -l)" "another run's partial file left alone"

test_case "a plan filling a column the application writes, under a pgbench load: rollback gives back the application's values"
new_logs load
fresh_app load 600 5
edit_file "$PLAN" "$TEST_TMP/name-plan.json" 's/"name": "clerk-to-firebase"/"name": "clerk-name"/' \
    's/"display_name": "displayName"/"name": "displayName"/'
LP="--plan $TEST_TMP/name-plan.json --logs-dir $LOGS -d load"
# users the application will insert during the load (in the export, gone from the table), some names
# NULL so the batches fill them, what the table held at the start (the load updates only its first
# 200 rows, so batches fill names nobody writes again), and a log of every application write
q load "create table public.pool as select row_number() over (order by id) as n, id, clerk_user_id, email
          from public.users where clerk_user_id is not null order by id limit 200;
        delete from public.users where id in (select id from public.pool);
        update public.users set name = null where md5(id) < '8';
        create table public.before as select row_number() over (order by id) - 1 as n, id, name from public.users;
        create table public.app_writes (id text primary key, name text)" >/dev/null
# each client inserts its own half of the pool (client 0 the odd n, client 1 the even): two clients
# inserting one row at the same moment would race on users_clerk_user_id_key, which ON CONFLICT (id)
# does not cover, and abort pgbench with or without phasemig
cat > "$TEST_TMP/app.sql" <<'SQL'
\set n :lo + 2 * random(0, (:hi - :lo - 1) / 2) + :client_id
\set v random(1, 1000000)
\set m random(0, 199)
BEGIN;
WITH i AS (INSERT INTO public.users (id, clerk_user_id, email, name)
           SELECT id, clerk_user_id, email, CASE WHEN :n % 2 = 0 THEN 'app-ins-' || :v END FROM public.pool WHERE n = :n
           ON CONFLICT (id) DO NOTHING RETURNING id)
INSERT INTO public.app_writes SELECT id, CASE WHEN :n % 2 = 0 THEN 'app-ins-' || :v END FROM i
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
COMMIT;
BEGIN;
WITH u AS (UPDATE public.users SET name = CASE WHEN :v % 4 = 0 THEN NULL ELSE 'app-upd-' || :v END
           WHERE id = CASE WHEN :v % 2 = 0 THEN (SELECT id FROM public.pool WHERE n = :n)
                           ELSE (SELECT id FROM public.before WHERE n = :m) END RETURNING id)
INSERT INTO public.app_writes SELECT id, CASE WHEN :v % 4 = 0 THEN NULL ELSE 'app-upd-' || :v END FROM u
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
COMMIT;
SQL
# first load: while phase1 and phase2 run
pgbench -n -f "$TEST_TMP/app.sql" -T 8 -c 2 -D lo=1 -D hi=100 load >"$TEST_TMP/pgbench1.out" 2>&1 &
load=$!
assert_exit 0 "phase1 apply under load" -- phase 1 apply $LP
assert_exit 0 "phase2 apply under load" -- phase 2 apply $LP --mapping "$DATA/firebase-export.json" --batch-size 20 --sleep-ms 20
wait "$load"; rc=$?
[ "$rc" = 0 ] || sed 's/^/#   pgbench: /' "$TEST_TMP/pgbench1.out" | grep -v '^#   pgbench: *$' | tail -20
assert_eq "0" "$rc" "the first load ran"
assert_contains "$(cat "$TEST_TMP/pgbench1.out")" "number of failed transactions: 0 " "no application transaction failed (no deadlock with the batches)"
# second load: after phase2, the trigger alone fills the rows the application inserts
pgbench -n -f "$TEST_TMP/app.sql" -T 3 -c 2 -D lo=101 -D hi=200 load >"$TEST_TMP/pgbench2.out" 2>&1
assert_eq "0" "$?" "the second load ran"
assert_contains "$(cat "$TEST_TMP/pgbench2.out")" "number of failed transactions: 0 " "no application transaction failed"
expected="select count(*) from public.users u left join public.app_writes a on a.id = u.id left join public.before b on b.id = u.id
  where u.name is distinct from (case when a.id is not null then a.name else b.name end)"
assert_ne "0" "$(q load "$expected")" "phasemig filled names the application had left NULL"
assert_ne "0" "$(q load "select count(*) from public.users u join public.pool p on p.id = u.id where p.n > 100 and u.firebase_uid is not null")" \
  "the trigger filled rows inserted after phase2"
assert_eq "0" "$(q load "select count(*) from public.users u join public.app_writes a on a.id = u.id
  where a.name is not null and u.name is distinct from a.name")" "no name the application wrote was overwritten"
assert_exit 0 "phase2 rollback" -- phase 2 rollback $LP
assert_eq "0" "$(q load "$expected")" "every name as the application last wrote it (or as it was)"
assert_eq "0" "$(q load "select count(*) from public.users where firebase_uid is not null")" \
  "no uid left, on rows the trigger filled too"
assert_eq "0" "$(q load 'select count(*) from migration_backup."clerk-name:backfill"')" "backup table emptied, kept for the trigger"
assert_exit 0 "phase1 rollback" -- phase 1 rollback $LP
assert_eq "0" "$(q load "$expected")" "names unchanged by phase1 rollback"
assert_eq "" "$(q load "select to_regclass('migration_backup.\"clerk-name:backfill\"')")" "backup table dropped with the trigger"

test_case "the Clerk plan's rollbacks of phase3 and phase2 after the string-to-uuid plan made the key a uuid"
new_logs both
fresh_app both 300 5
U="--plan $UPLAN --logs-dir $LOGS -d both"
assert_exit 0 "clerk phase1" -- p1 apply -d both
assert_exit 0 "clerk phase2" -- p2 apply -d both --mapping "$DATA/firebase-export.json" --generate-missing
assert_exit 0 "clerk phase3" -- p3 apply -d both
clerk_ids=$(q both "select id || ' ' || firebase_uid || ' ' || coalesce(d.value, '-') from public.users u
  join migration_backup.\"clerk-to-firebase:drop:clerk_user_id\" d on d.key = u.id order by id::text collate \"C\"")
assert_exit 0 "uuid phase1" -- phase 1 apply $U
assert_exit 0 "uuid phase2" -- phase 2 apply $U
assert_exit 0 "uuid phase3 (the swap)" -- phase 3 apply $U
assert_eq "uuid" "$(q both "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'public.users'::regclass and attname = 'id'")" "users.id is a uuid now"
assert_exit 0 "clerk phase3 rollback" -- p3 rollback -d both
assert_eq "$clerk_ids" "$(q both "select id || ' ' || firebase_uid || ' ' || coalesce(clerk_user_id, '-') from public.users order by id::text collate \"C\"")" \
  "clerk_user_id back on every row"
# the sync trigger still fills (and saves) a row the application inserts after the swap
read -r clerk uid <<<"$(awk -F, 'NR > 1 && $3 != "" { print $2, $3; exit }' "$DATA/expected.csv")"
q both "delete from public.users where clerk_user_id = '$clerk'" >/dev/null
assert_exit 0 "the application inserts" -- q both "insert into public.users (clerk_user_id, email) values ('$clerk', 'again@example.com')"
assert_eq "$uid" "$(q both "select firebase_uid from public.users where clerk_user_id = '$clerk'")" "filled by the trigger"
assert_exit 0 "clerk phase2 rollback" -- p2 rollback -d both
assert_eq "0" "$(q both "select count(*) from public.users where firebase_uid is not null or display_name is not null")" \
  "every filled value restored, the row inserted after the swap too"
assert_exit 0 "uuid phase3 rollback" -- phase 3 rollback $U
assert_exit 0 "uuid phase2 rollback" -- phase 2 rollback $U
assert_exit 0 "uuid phase1 rollback" -- phase 1 rollback $U
assert_exit 0 "clerk phase2 apply again, key text again" -- p2 apply -d both --mapping "$DATA/firebase-export.json" --generate-missing
assert_exit 0 "clerk phase2 rollback" -- p2 rollback -d both
assert_exit 0 "clerk phase1 rollback" -- p1 rollback -d both
assert_eq "0" "$(q both "select count(*) from pg_trigger where tgrelid = 'public.users'::regclass and not tgisinternal")" "no trigger left"

# The source table is built under another name, then swapped in by a rename (source.c). A session
# reading the source (as the sync trigger does, within an application's open transaction) makes the
# swap wait for its lock after the build has committed: phase2 is killed there, between build and swap.
SRC='migration_backup."clerk-to-firebase:source"' BUILD='migration_backup."clerk-to-firebase:source_build"'
killed_before_swap() {   # killed_before_swap DB: phase2 kill -9'd while its built source waits for the swap
    local db=$1 reader
    psql -X -q -d "$db" -c "begin" -c "select count(*) from $SRC" -c "select pg_sleep(120)" >/dev/null 2>&1 &
    reader=$!
    wait_for_sql "$db" "select count(*) from pg_locks where relation = to_regclass('$SRC') and granted" 1
    "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d "$db" --mapping "$DATA/firebase-export.json" >/dev/null 2>&1 &
    victim=$!
    wait_for_sql "$db" "select count(*) from pg_stat_activity where application_name like 'phase2 apply%'
      and wait_event_type = 'Lock' and query like 'DROP TABLE IF EXISTS%'" 1 60
    kill -9 "$victim"; wait "$victim" 2>/dev/null
    q "$db" "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(120)%' and pid <> pg_backend_pid()" >/dev/null
    wait "$reader" 2>/dev/null
    wait_for_sql "$db" "select count(*) from pg_stat_activity where application_name like 'phase2 apply%'" 0
}

test_case "phase2 killed between building the source table and swapping it in: the next apply drops and rebuilds it"
new_logs swap
fresh_app swap 300
fresh_app swap_ref 300
must p1 apply -d swap
must p1 apply -d swap_ref
assert_exit 0 "phase2 apply, uninterrupted (the reference)" -- p2 apply -d swap_ref --mapping "$DATA/firebase-export.json"
killed_before_swap swap
assert_eq "0" "$(q swap "select count(*) from $SRC")" "the old source (empty after phase1) is still the one in place"
assert_ne "0" "$(q swap "select count(*) from $BUILD")" "the built table is left, under its own name"
assert_eq "1" "$(q swap "select count(*) from migration_backup.phasemig_objects where kind = 'source_build'")" "and registered"
# what a leftover holds is never used: spoil it
q swap "update $BUILD set firebase_uid = 'spoiled-' || firebase_uid" >/dev/null
assert_exit 0 "phase2 apply again" -- p2 apply -d swap --mapping "$DATA/firebase-export.json"
assert_contains "$LAST_ERR" "which an interrupted run built and never swapped in" "says it rebuilds the leftover"
assert_eq "" "$(q swap "select to_regclass('$BUILD')")" "no build table left"
assert_eq "0" "$(q swap "select count(*) from migration_backup.phasemig_objects where kind = 'source_build'")" "nor its registration"
assert_eq "0" "$(q swap "select count(*) from $SRC where firebase_uid like 'spoiled-%'")" "the source is the mapping, rebuilt"
assert_eq "$(q swap_ref "select count(*) from $SRC")" "$(q swap "select count(*) from $SRC")" "the whole mapping"
assert_eq "$(q swap_ref "select id || ' ' || coalesce(firebase_uid, '-') || ' ' || coalesce(display_name, '-') from public.users order by id")" \
    "$(q swap "select id || ' ' || coalesce(firebase_uid, '-') || ' ' || coalesce(display_name, '-') from public.users order by id")" \
    "every row as the uninterrupted run filled it"
assert_eq "$(q swap_ref "select string_agg(indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid), ', ' order by 1) from pg_index where indrelid = to_regclass('$SRC')")" \
    "$(q swap "select string_agg(indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid), ', ' order by 1) from pg_index where indrelid = to_regclass('$SRC')")" \
    "the swapped-in source has phase1's index names"
# the sync trigger reads the swapped-in table: a row the application inserts is filled
read -r clerk uid <<<"$(awk -F, 'NR > 1 && $3 != "" { print $2, $3; exit }' "$DATA/expected.csv")"
q swap "delete from public.users where clerk_user_id = '$clerk'" >/dev/null
q swap "insert into public.users (clerk_user_id, email) values ('$clerk', 'again@example.com')" >/dev/null
assert_eq "$uid" "$(q swap "select firebase_uid from public.users where clerk_user_id = '$clerk'")" "the trigger fills from the new source"
assert_exit 0 "phase2 apply once more (idempotent)" -- p2 apply -d swap --mapping "$DATA/firebase-export.json"
assert_eq "$(q swap_ref "select count(*) from $SRC")" "$(q swap "select count(*) from $SRC")" "the same mapping again"

test_case "a leftover build table goes with phase2 rollback and phase1 rollback; one phasemig did not register is refused"
killed_before_swap swap
assert_ne "" "$(q swap "select to_regclass('$BUILD')")" "a leftover again"
assert_exit 0 "phase2 rollback" -- p2 rollback -d swap
assert_eq "" "$(q swap "select to_regclass('$BUILD')")" "phase2 rollback dropped it"
assert_eq "0" "$(q swap "select count(*) from public.users where firebase_uid is not null")" "and restored every row"
killed_before_swap swap
assert_exit 0 "phase2 rollback" -- p2 rollback -d swap
assert_exit 0 "phase1 rollback" -- p1 rollback -d swap
assert_eq "0" "$(q swap "select count(*) from pg_tables where schemaname = 'migration_backup' and tablename like 'clerk-to-firebase:%'")" \
  "no table of the plan left"
must p1 apply -d swap
q swap "create table $BUILD (x int)" >/dev/null
assert_exit 1 "phase2 apply with a table of that name phasemig did not make" -- p2 apply -d swap --mapping "$DATA/firebase-export.json"
assert_contains "$LAST_ERR" "exists but phasemig did not create it" "says whose table it is not"
assert_eq "0" "$(q swap "select count(*) from public.users where firebase_uid is not null")" "nothing filled"
assert_eq "x" "$(q swap "select string_agg(attname, ',') from pg_attribute where attrelid = to_regclass('$BUILD') and attnum > 0")" "the table untouched"
