# t11_clerk_failures.sh -- what the Clerk to Firebase job does when things go wrong: bad input,
# a conflicting mapping, a second operator, kill -9 in the middle of phase2, and a users table
# the project did not create (hostile names), all checked in the database afterwards.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS
# fresh_app DB [USERS]: the legacy app schema with generated users (same seed every time)
fresh_app() { gen_app "$1" "${2:-400}" t11 "$DATA"; }
# schema, data, and how many users the plan's stored mapping holds ("none" before phase1)
state() {
    db_state "$1"
    psql -X -A -t -q -d "$1" -c 'select count(*) from migration_backup."clerk-to-firebase:source"' 2>/dev/null || echo none
}
one_error_line() {   # the run's stderr has exactly one "error:" line, and it mentions $1
    assert_eq 1 "$(grep -c 'error:' <<<"$LAST_ERR")" "one error line"
    assert_contains "$LAST_ERR" "$1" "error says what is wrong"
}

fresh_app bad
must p1 apply -d bad

test_case "malformed, truncated or missing mapping: exit 2, one clear line, nothing changed"
before=$(state bad)
printf '{"users": [\n{\n  "localId": "abc",\n  "email": }\n]}' > "$TEST_TMP/malformed.json"
assert_exit 2 "malformed JSON" -- p2 apply -d bad --mapping "$TEST_TMP/malformed.json"
one_error_line "malformed.json\" is malformed: element 1"
must_write "$TEST_TMP/truncated.json" head -c 2000 "$DATA/firebase-export.json"
assert_exit 2 "truncated JSON" -- p2 apply -d bad --mapping "$TEST_TMP/truncated.json"
one_error_line "is malformed"
assert_exit 2 "missing file" -- p2 apply -d bad --mapping "$TEST_TMP/nope.json"
one_error_line "nope.json\": No such file or directory"
printf 'clerk,uid\nuser_a,b\n' > "$TEST_TMP/wrongheader.csv"
assert_exit 2 "CSV with another header" -- p2 apply -d bad --mapping "$TEST_TMP/wrongheader.csv"
assert_contains "$LAST_ERR" "header clerk_user_id,firebase_uid" "says which header"
# the header padded to 4095 bytes then a pair, on one line: its tail is not loaded as a row
{ printf 'clerk_user_id,firebase_uid%4069s' ''; printf 'user_a,UIDA\n'; } > "$TEST_TMP/longheader.csv"
assert_exit 2 "a first line over 4 kB that starts with the header" -- p2 apply -d bad --mapping "$TEST_TMP/longheader.csv"
one_error_line "header clerk_user_id,firebase_uid"
printf '[{"clerk_user_id": "user_a", "firebase_uid": "x", "extra": 1}]' > "$TEST_TMP/extra.json"
assert_exit 2 "unknown key in a mapping element" -- p2 apply -d bad --mapping "$TEST_TMP/extra.json"
one_error_line 'unknown key "extra"'
assert_exit 2 "no --mapping" -- p2 apply -d bad
assert_eq "$before" "$(state bad)" "nothing changed by any of them"

test_case "bad plan or bad usage: exit 2 with one line; unreachable database: exit 1"
edit_file "$PLAN" "$TEST_TMP/unknown-key.json" 's/"key": "id"/"key": "id", "kye": "id"/'
assert_exit 2 "unknown key in plan" -- phase 1 apply -d bad --plan "$TEST_TMP/unknown-key.json"
one_error_line 'unknown key "kye"'
must_write "$TEST_TMP/cut-plan.json" head -c 300 "$PLAN"
assert_exit 2 "truncated plan" -- phase 1 apply -d bad --plan "$TEST_TMP/cut-plan.json"
one_error_line "line"
edit_file "$PLAN" "$TEST_TMP/notable.json" 's/"table": "users"/"table": "nosuchtable"/'
assert_exit 2 "table missing" -- phase 1 apply -d bad --plan "$TEST_TMP/notable.json"
one_error_line '"public.nosuchtable"'
assert_exit 2 "missing plan file" -- phase 1 apply -d bad --plan "$TEST_TMP/none.json"
one_error_line "could not read plan"
assert_exit 2 "unknown subcommand" -- phase 1 destroy --plan "$PLAN"
assert_contains "$LAST_ERR" 'Try "phase1 --help" for more information.' "points to --help"
assert_exit 2 "bad option value" -- phase 2 apply --plan "$PLAN" --batch-size 0
assert_exit 2 "an option another phase takes" -- phase 1 apply --plan "$PLAN" --jobs 2
assert_contains "$LAST_ERR" 'option "--jobs" is not accepted here' "names the option, not its value"
assert_exit 2 "--jobs on status" -- phase 2 status --plan "$PLAN" -j 2
assert_contains "$LAST_ERR" 'accepted by apply, check and rollback only' "says where it is accepted"
assert_exit 1 "unreachable database" -- phase 1 status --plan "$PLAN" -d "host=$TEST_TMP/nowhere port=1 dbname=x"
one_error_line "could not connect"
assert_exit 1 "wrong password is not printed" -- phase 1 status --plan "$PLAN" -d "postgresql://u:s3cret@127.0.0.1:1/x"
assert_not_contains "$LAST_ERR" "s3cret" "password never printed"
assert_exit 0 "--help" -- phase 3 --help
assert_contains "$LAST_OUT" "  4    another run held the plan's lock for all of --lock-wait" "exit codes in --help"
assert_contains "$LAST_OUT" "  2    bad usage or bad input, or a command run before its phase can run" "out of order is a usage error"
assert_exit 0 "--version" -- phase 2 --version
assert_contains "$LAST_OUT" "phase2 (phasemig)" "version"

test_case "a conflicting mapping is refused before any write: exit 3 with the conflicts"
before=$(state bad)
read -r c1 c2 <<<"$(q bad "select string_agg(clerk_user_id, ' ' order by id) from (select * from public.users order by id limit 2) s")"
printf 'clerk_user_id,firebase_uid\n%s,UIDA\n%s,UIDA\n' "$c1" "$c2" > "$TEST_TMP/two-to-one.csv"
assert_exit 3 "two users to one uid" -- p2 apply -d bad --mapping "$TEST_TMP/two-to-one.csv"
assert_contains "$LAST_ERR" "one Firebase user matched by several rows" "conflict named"
assert_contains "$LAST_ERR" "uid UIDA" "uid shown"
printf 'clerk_user_id,firebase_uid\n%s,UIDA\n%s,UIDB\n' "$c1" "$c1" > "$TEST_TMP/one-to-two.csv"
assert_exit 3 "one user to two uids" -- p2 apply -d bad --mapping "$TEST_TMP/one-to-two.csv"
assert_contains "$LAST_ERR" "one row matched by several Firebase users" "conflict named"
assert_eq "$before" "$(state bad)" "nothing written, mapping not stored"
q bad "update public.users set firebase_uid = 'UIDC' where clerk_user_id = '$c2'" >/dev/null
before=$(state bad)
printf 'clerk_user_id,firebase_uid\n%s,UIDC\n' "$c1" > "$TEST_TMP/held.csv"
assert_exit 3 "uid held by another row" -- p2 apply -d bad --mapping "$TEST_TMP/held.csv"
assert_contains "$LAST_ERR" "uid already held by another row" "conflict named"
assert_eq "$before" "$(state bad)" "nothing written"
assert_eq "refused" "$(q bad "select status from migration_log where phase = 2 and operation like 'backfill%' order by id desc limit 1")" "audited as refused"
assert_contains "$(q bad "select metadata::text from migration_log where phase = 2 and operation like 'backfill%' order by id desc limit 1")" "uid already held" "conflicts in the metadata"

test_case "a second run while one holds the plan's lock exits 4 naming the holder"
fresh_app lock
must p1 apply -d lock
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d lock --mapping "$DATA/mapping.csv" --batch-size 5 --sleep-ms 200 >/dev/null 2>&1 &
first=$!
# the first run holds the plan's advisory lock (not only connected) before the second starts
wait_for_sql lock "select count(*) > 0 from pg_stat_activity a join pg_locks l on l.pid = a.pid
  where a.application_name like 'phase2 apply%' and l.locktype = 'advisory' and l.granted" t 20
assert_exit 4 "second phase2" -- p2 apply -d lock --mapping "$DATA/mapping.csv" --lock-wait 0
assert_contains "$LAST_ERR" 'held by ' "holder named"
assert_contains "$LAST_ERR" 'server backend pid ' "the backend's pid, named as such"
assert_contains "$LAST_ERR" 'application "phase2 apply (phasemig run' "holder's program named"
started=$SECONDS
assert_exit 4 "phase3 is refused too, after waiting --lock-wait" -- p3 check -d lock --lock-wait 2
assert_contains "$LAST_ERR" "waiting up to 2 s" "says it waits, and for whom"
assert_contains "$LAST_ERR" "(waited for it with --lock-wait)" "says it waited"
[ $((SECONDS - started)) -ge 2 ] || _t_fail "phase3 check gave up before --lock-wait 2 had passed"
assert_eq "0" "$(q lock "select count(*) from migration_log where phase = 3")" "the refused phase3 wrote nothing"
wait_for_sql lock "select count(*) from migration_log where status = 'running' and rows_done >= 10 and rows_total > 0" 1 30
assert_exit 0 "status does not need the lock" -- p2 status -d lock
assert_contains "$LAST_OUT" "running now: phasemig pid $first on host " "status shows the run in progress, its client's pid"
assert_contains "$LAST_OUT" "of 400 rows scanned" "rows done of the table's total"
assert_contains "$LAST_OUT" " s left" "the fill's rate and time left"
assert_exit 0 "status --json" -- p2 status -d lock --json
assert_eq "t|t" "$(psql -X -A -t -q -d lock -v j="$LAST_OUT" <<<"select ((:'j'::jsonb)#>>'{phases,1,operations,0,rows_per_second}')::float > 0,
  ((:'j'::jsonb)#>>'{phases,1,operations,0,eta_seconds}')::float >= 0")" "rate and ETA in JSON"
kill "$first" 2>/dev/null; wait "$first" 2>/dev/null

test_case "an index build interrupted halfway leaves it INVALID; phase1 apply again drops and rebuilds it"
fresh_app inval
# an open transaction with an xid: CREATE INDEX CONCURRENTLY waits for it with its index already in the catalog
psql -X -q -d inval -c "begin" -c "select txid_current()" -c "select pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
wait_for_sql inval "select count(*) from pg_stat_activity where datname = 'inval' and query like '%pg_sleep(60)%' and state = 'active' and pid <> pg_backend_pid()" 1
p1 apply -d inval >/dev/null 2>&1 &
victim=$!
wait_for_sql inval "select count(*) from pg_index where indexrelid = to_regclass('public.users_firebase_uid_idx') and not indisvalid" 1
q inval "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = 'inval' and query like 'CREATE INDEX CONCURRENTLY%'" >/dev/null
wait "$victim"; assert_eq 1 "$?" "the interrupted phase1 failed"
q inval "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'inval' and query like '%pg_sleep(60)%' and pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null
assert_eq "f" "$(q inval "select indisvalid from pg_index where indexrelid = 'public.users_firebase_uid_idx'::regclass")" "an INVALID index was left behind"
assert_exit 0 "phase1 apply again" -- p1 apply -d inval
assert_contains "$LAST_ERR" "is INVALID (an earlier build was interrupted); rebuilding it" "says what it found"
assert_eq "t|1" "$(q inval "select bool_and(indisvalid), count(*) from pg_index where indrelid = 'public.users'::regclass
  and indexrelid::regclass::text like '%firebase_uid%'")" "one index, valid"

test_case "kill -9 during phase2, then phase2 again: same data as an uninterrupted run"
fresh_app clean
must p1 apply -d clean
must p2 apply -d clean --mapping "$DATA/firebase-export.json" --batch-size 7
fresh_app killed
must p1 apply -d killed
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d killed --mapping "$DATA/firebase-export.json" --batch-size 7 --sleep-ms 50 >/dev/null 2>&1 &
victim=$!
wait_for_sql killed "select coalesce(max(rows_done), 0) >= 70 from migration_log where operation like 'backfill%'" t 30
kill -9 "$victim"; wait "$victim" 2>/dev/null
done_at_kill=$(q killed "select rows_done from migration_log where operation like 'backfill%' order by id desc limit 1")
assert_eq "running" "$(q killed "select status from migration_log where operation like 'backfill%' order by id desc limit 1")" "killed run left running"
assert_exit 0 "status calls it interrupted" -- p2 status -d killed
assert_contains "$LAST_OUT" "apply interrupted" "interrupted shown"
assert_eq "t" "$(q killed "select count(*) = $done_at_kill from public.users u
   where u.id <= (select last_key from migration_log where operation like 'backfill%' order by id desc limit 1)")" \
   "checkpoint (rows, last key) committed with its batch"
assert_exit 0 "phase2 again" -- p2 apply -d killed --mapping "$DATA/firebase-export.json" --batch-size 7
assert_contains "$LAST_ERR" "resuming the interrupted backfill" "resumed, not restarted"
assert_contains "$LAST_ERR" "ended without recording its outcome: recorded as interrupted" "the dead run's rows closed, and said so"
assert_eq "0" "$(q killed "select count(*) from migration_log where status = 'running'")" "no row left running"
assert_eq "2" "$(q killed "select count(*) from migration_log where status = 'interrupted' and message like 'its process ended%'")" \
  "the killed run's phase row and step row: interrupted, with the reason"
assert_eq "$(q clean "select md5(string_agg(to_jsonb(u)::text, '' order by id)) from public.users u")" \
          "$(q killed "select md5(string_agg(to_jsonb(u)::text, '' order by id)) from public.users u")" \
          "users identical to the uninterrupted run"
assert_eq "$(q clean "select count(*) from migration_backup.\"clerk-to-firebase:backfill\"")" \
          "$(q killed "select count(*) from migration_backup.\"clerk-to-firebase:backfill\"")" "same originals saved"

test_case "a users table the project did not create, with hostile names, given only an edited plan"
new_db foreign
q foreign 'create schema "crm""x";
  create table "crm""x"."Acc""ounts(1" (account_no bigint primary key, "clerk id" text unique, "e-mail" text,
    note text default $$it'"'"'s$$);
  insert into "crm""x"."Acc""ounts(1" (account_no, "clerk id", "e-mail")
    select g, $$user_$$ || g, $$U$$ || g || $$@Example.com$$ from generate_series(1, 300) g;
  create view "crm""x".v as select account_no from "crm""x"."Acc""ounts(1"' >/dev/null
edit_file "$PLAN" "$TEST_TMP/accounts.json" 's/"schema": "public"/"schema": "crm\\"x"/' 's/"table": "users"/"table": "Acc\\"ounts(1"/' \
    's/"key": "id"/"key": "account_no"/' 's/"clerk_user_id"/"clerk id"/g' 's/"email_column": "email"/"email_column": "e-mail"/' \
    's/"column": "email"/"column": "e-mail"/' 's/"firebase_uid"/"fb \\"uid"/g' 's/users_firebase_uid/acc_fb_uid/g' \
    's/"name": "clerk-to-firebase"/"name": "accounts-fb"/'
{ echo '{"users": ['
  for g in $(seq 1 300); do
    if [ $((g % 3)) = 0 ]; then attrs=''; else attrs=",\"customAttributes\": \"{\\\"clerk_user_id\\\":\\\"user_$g\\\"}\""; fi
    [ "$g" -gt 1 ] && echo ","
    printf '{"localId": "UID%025d", "email": "u%s@example.com", "displayName": "O'"'"'Brien \\"%s\\""%s}' "$g" "$g" "$g" "$attrs"
  done
  printf ']}'; } > "$TEST_TMP/accounts-export.json"
start=$(state foreign)
P="--plan $TEST_TMP/accounts.json --logs-dir $LOGS -d foreign"
assert_exit 0 "phase1" -- phase 1 apply $P
assert_exit 0 "phase2" -- phase 2 apply $P --mapping "$TEST_TMP/accounts-export.json" --batch-size 64
assert_eq "300|300" "$(q foreign 'select count(*), count(*) filter (where "fb ""uid" = $$UID$$ || lpad(account_no::text, 25, $$0$$)
   and display_name = $$O'"'"'Brien "$$ || account_no || $$"$$) from "crm""x"."Acc""ounts(1"')" \
   "every account matched, by clerk id or by case-insensitive email"
assert_exit 0 "phase3" -- phase 3 apply $P
assert_eq "t|UNIQUE (\"fb \"\"uid\")" "$(q foreign "select a.attnotnull, (select pg_get_constraintdef(c.oid) from pg_constraint c where c.conname = 'acc_fb_uid_key')
   from pg_attribute a where a.attrelid = '\"crm\"\"x\".\"Acc\"\"ounts(1\"'::regclass and a.attname = 'fb \"uid'")" "NOT NULL and UNIQUE on the hostile column"
assert_exit 0 "rollback 3" -- phase 3 rollback $P
assert_exit 0 "rollback 2" -- phase 2 rollback $P
assert_exit 0 "rollback 1" -- phase 1 rollback $P
assert_eq "$start" "$(state foreign)" "schema and data as at the start"

test_case "an autovacuum worker holding the users table is cancelled by the server on the next attempt, not waited out"
fresh_app vac 5000
q postgres "alter system set autovacuum_naptime = 1" >/dev/null; q postgres "select pg_reload_conf()" >/dev/null
on_exit 'psql -X -q -d postgres -c "alter system reset autovacuum_naptime" -c "select pg_reload_conf()" >/dev/null 2>&1'
# a vacuum of users that crawls (one page per 100 ms) and so holds SHARE UPDATE EXCLUSIVE for many seconds
q vac "alter table public.users set (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
  update public.users set name = name where id = (select min(id) from public.users)" >/dev/null
wait_for_sql vac "select count(*) from pg_stat_activity where backend_type = 'autovacuum worker' and datname = 'vac'" 1 90
assert_exit 0 "phase1 apply, with a lock timeout (300 ms) under deadlock_timeout (1 s)" -- p1 apply -d vac --lock-timeout 300
assert_contains "$LAST_ERR" "an autovacuum worker is running in this database: waiting up to 1200 ms for" "says why it waits longer"
# the server cancels the vacuum deadlock_timeout after the wait begins; on a loaded machine the
# worker may take longer than the 200 ms margin to go (and autovacuum may start again), so a change
# may need an attempt or two more, not the many the crawling vacuum would take to finish
assert_eq "t" "$(q vac "select max((metadata->>'ddl_retries')::int) <= 2 from migration_log where phase = 1 and operation like 'add_column%'")" \
  "no change needed more than two more attempts: the server cancelled the vacuum, phasemig did not wait it out"

test_case "odd inputs: a non-object user, a key that is not unique; a quoted CSV header with a BOM and CRLF is accepted"
fresh_app odd 50
must p1 apply -d odd
before=$(state odd)
printf '{"users": [1]}' > "$TEST_TMP/number.json"
assert_exit 2 "a user that is not an object" -- p2 apply -d odd --mapping "$TEST_TMP/number.json"
one_error_line 'element 1: expected an object'
edit_file "$PLAN" "$TEST_TMP/email-key.json" 's/"key": "id"/"key": "email"/'
assert_exit 2 "a key column that is not unique" -- phase 2 apply -d odd --plan "$TEST_TMP/email-key.json" --mapping "$DATA/mapping.csv"
one_error_line 'key column "email" of plan'
assert_eq "$before" "$(state odd)" "nothing changed"
{ printf '\xef\xbb\xbf"clerk_user_id","firebase_uid"\r\n'; tail -n +2 "$DATA/mapping.csv" | sed 's/$/\r/'; } > "$TEST_TMP/excel.csv"
assert_exit 0 "a spreadsheet's CSV" -- p2 apply -d odd --mapping "$TEST_TMP/excel.csv"
assert_eq "0" "$(q odd "select count(*) from public.users u join migration_backup.\"clerk-to-firebase:source\" s
  on s.clerk_user_id = u.clerk_user_id where u.firebase_uid is distinct from s.firebase_uid or s.firebase_uid like '%'||chr(13)")" \
  "every listed user filled, no carriage return kept"

test_case "generated uids: a re-run's import file lists only users no earlier file listed; files readable by their owner only"
fresh_app gen 200
must p1 apply -d gen
GLOGS=$TEST_TMP/genlogs; must mkdir -p "$GLOGS"
assert_exit 0 "phase2 --generate-missing" -- phase 2 apply --plan "$PLAN" -d gen --logs-dir "$GLOGS" \
  --mapping "$DATA/firebase-export.json" --generate-missing --clerk-export "$DATA/clerk-export.csv"
first=$(ls "$GLOGS"/*-firebase-import-*.json)
assert_eq "600" "$(stat -c %a "$first")" "import file mode"
assert_eq "600" "$(stat -c %a "$(ls "$GLOGS"/*.log | head -1)")" "run log mode"
allowed='["customAttributes", "displayName", "email", "localId", "passwordHash", "phoneNumber"]'
assert_eq "t" "$(q gen "select coalesce(bool_and(k.key = any(array(select jsonb_array_elements_text('$allowed'::jsonb)))), true)
  from jsonb_array_elements(pg_catalog.jsonb_extract_path('$(sed "s/'/''/g" "$first")'::jsonb, 'users')) u, jsonb_object_keys(u) k(key)")" \
  "valid JSON, with only keys firebase auth:import accepts"
n_first=$(grep -c '"localId"' "$first")
assert_eq "$(q gen "select count(*) from migration_backup.\"clerk-to-firebase:source\" where origin = 'generated'")" "$n_first" \
  "every generated user in the first file"
q gen "insert into public.users (id, clerk_user_id, email) values ('00000000-new-1', 'user_new_1', 'new1@example.com')" >/dev/null
assert_exit 0 "phase2 again" -- phase 2 apply --plan "$PLAN" -d gen --logs-dir "$GLOGS" \
  --mapping "$DATA/firebase-export.json" --generate-missing --clerk-export "$DATA/clerk-export.csv"
second=$(ls "$GLOGS"/*-firebase-import-*.json | grep -v "$first")
assert_eq "1" "$(grep -c '"localId"' "$second")" "the second file lists only the new user"
assert_contains "$(cat "$second")" "user_new_1" "the new user's clerk id"
assert_eq "$(q gen "select firebase_uid from public.users where id = '00000000-new-1'")" \
  "$(sed -n 's/.*"localId": "\([^"]*\)".*/\1/p' "$second")" "with the uid it was given"
assert_exit 0 "phase2 a third time" -- phase 2 apply --plan "$PLAN" -d gen --logs-dir "$GLOGS" \
  --mapping "$DATA/firebase-export.json" --generate-missing
assert_eq "2" "$(ls "$GLOGS"/*-firebase-import-*.json | wc -l)" "no third file: nobody new to import"

test_case "kill -9 during phase2, rollback, apply again: every row filled, none skipped by the old checkpoint"
fresh_app rbk
must p1 apply -d rbk
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d rbk --mapping "$DATA/mapping.csv" --generate-missing --batch-size 7 --sleep-ms 50 >/dev/null 2>&1 &
victim=$!
wait_for_sql rbk "select coalesce(max(rows_done), 0) >= 70 from migration_log where operation like 'backfill%'" t 30
kill -9 "$victim"; wait "$victim" 2>/dev/null
assert_exit 0 "phase2 rollback" -- p2 rollback -d rbk
assert_eq "0" "$(q rbk "select count(*) from public.users where firebase_uid is not null")" "rolled back"
assert_exit 0 "phase2 apply" -- p2 apply -d rbk --mapping "$DATA/mapping.csv" --generate-missing --batch-size 7
assert_not_contains "$LAST_ERR" "resuming" "started from the beginning"
assert_eq "0" "$(q rbk "select count(*) from public.users where firebase_uid is null")" "every row filled"

test_case "a NULL written between phase3's checks and its VALIDATE: phase3 fails, takes its CHECK away, keeps the sync trigger"
fresh_app race 100
must p1 apply -d race
must p2 apply -d race --mapping "$DATA/mapping.csv" --generate-missing
# an application transaction inserts a user phase3 cannot see yet, and commits once phase3 waits for the table
psql -X -q -d race -c "begin" -c "insert into public.users (id, clerk_user_id) values ('00000000-race', 'user_unknown_race')" \
  -c "select pg_sleep(3)" -c "commit" >/dev/null 2>&1 &
app=$!
wait_for_sql race "select count(*) from pg_stat_activity where datname = 'race' and query like '%pg_sleep(3)%' and pid <> pg_backend_pid()" 1
assert_exit 1 "phase3 apply" -- p3 apply -d race --lock-timeout 10000
wait "$app"
assert_contains "$LAST_ERR" "was dropped again" "says the CHECK went"
assert_eq "0|1" "$(q race "select count(*) from pg_constraint where conname like 'phasemig\_%\_nn\_%'")|$(q race "select count(*)
  from pg_trigger where tgname = 'phasemig_sync_clerk-to-firebase'")" "no CHECK left; the sync trigger still there"
assert_exit 0 "the application can still insert a user the mapping does not know" -- q race \
  "insert into public.users (id, clerk_user_id) values ('00000000-race-2', 'user_unknown_2')"
assert_exit 3 "phase3 check names the rows" -- p3 check -d race
assert_contains "$LAST_ERR" "'00000000-race'" "the racing row"
