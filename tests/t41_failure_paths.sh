# t41_failure_paths.sh -- one way to fail: a statement that fails, SIGTERM (at a batch
# boundary, and cancelling a statement outside the batches), a lost connection during the
# mapping load, commands run out of order; each checked in migration_log (no row left
# 'running', the reason recorded), in the exit code, and by the re-run that completes the
# work. Also what status says after a rollback and a finalize.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
UPLAN=$ROOT/plans/string-to-uuid.json
must_dirs DATA LOGS
# fresh_app DB [USERS]: the legacy app schema with generated users (same seed every time)
fresh_app() { gen_app "$1" "${2:-600}" t41 "$DATA"; }
p() { local n=$1; shift; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS"; }
u() { local n=$1; shift; phase "$n" "$@" --plan "$UPLAN" --logs-dir "$LOGS"; }
running_rows() { q "$1" "select count(*) from migration_log where status = 'running'"; }

test_case "a statement that fails inside phase2: exit 1, its rows failed with the server's message, the re-run completes"
fresh_app fail
must p 1 apply -d fail
# the application's own trigger refuses one row's update, as a broken constraint would
victim=$(q fail "select id from public.users order by id offset 300 limit 1")
q fail "create function public.refuse() returns trigger language plpgsql as \$\$ begin
  if new.id = '$victim' then raise exception 'application refuses row %', new.id; end if; return new; end \$\$;
  create trigger refuse before update on public.users for each row execute function public.refuse()" >/dev/null
assert_exit 1 "phase2 apply" -- p 2 apply -d fail --mapping "$DATA/mapping.csv" --batch-size 50
assert_contains "$LAST_ERR" "application refuses row" "the server's message shown"
assert_eq "0" "$(running_rows fail)" "no row left running"
assert_eq "failed|application refuses row $victim
failed|application refuses row $victim" "$(q fail "select status, message from migration_log where phase = 2 order by id")" \
    "the phase row and the step row: failed, with the reason"
assert_exit 0 "status" -- p 2 status -d fail
assert_contains "$LAST_OUT" "last run: apply failed" "status: the run failed"
assert_contains "$LAST_OUT" "application refuses row" "status: and why"
filled=$(q fail "select count(*) from public.users where firebase_uid is not null")
[ "$filled" -ge 250 ] || _t_fail "the batches before the failing one stay committed (filled: $filled)"
q fail "drop trigger refuse on public.users" >/dev/null
assert_exit 0 "phase2 apply again" -- p 2 apply -d fail --mapping "$DATA/mapping.csv" --batch-size 50
assert_contains "$LAST_ERR" "resuming the interrupted backfill" "resumed from the failed run's checkpoint"
q fail "create table public.expected (id text, clerk text, uid text)" >/dev/null
q fail "\\copy public.expected from '$DATA/expected.csv' with (format csv, header)" >/dev/null
assert_eq "0" "$(q fail "select count(*) from public.users u join public.expected e on e.id = u.id where e.uid <> '' and u.firebase_uid is distinct from e.uid")" \
    "every matched user has the export's uid"

test_case "SIGTERM: phase2 stops after the batch in flight, records interrupted, frees the lock; the re-run resumes"
fresh_app term
must p 1 apply -d term
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d term --mapping "$DATA/mapping.csv" --batch-size 20 --sleep-ms 50 \
    >"$TEST_TMP/term.out" 2>&1 &
victim=$!
wait_for_sql term "select coalesce(max(rows_done), 0) >= 100 from migration_log where status = 'running'" t 30
kill -TERM "$victim"; wait "$victim"; rc=$?
assert_eq 1 "$rc" "exit 1: run it again"
assert_contains "$(cat "$TEST_TMP/term.out")" "stopped by SIGTERM after" "says where it stopped"
assert_contains "$(cat "$TEST_TMP/term.out")" "run the same command again" "and what to do"
assert_eq "0" "$(running_rows term)" "no row left running"
assert_eq "interrupted|stopped by SIGTERM
interrupted|stopped by SIGTERM" "$(q term "select status, message from migration_log where phase = 2 order by id")" \
    "both rows interrupted, with the signal"
assert_eq "t" "$(q term "select count(*) = (select rows_done from migration_log where phase = 2 and rows_total is not null)
    from public.users where id <= (select last_key from migration_log where phase = 2 and rows_total is not null)")" \
    "the checkpoint matches the committed batches"
assert_exit 0 "the re-run starts at once (the lock is free) and resumes" -- p 2 apply -d term --mapping "$DATA/mapping.csv" --lock-wait 0
assert_contains "$LAST_ERR" "resuming the interrupted backfill" "resumed"
assert_exit 0 "status" -- p 2 status -d term
assert_contains "$LAST_OUT" "done; " "status: done"
assert_contains "$LAST_OUT" "(2 runs)" "status counts both runs"
assert_eq "$(q term "select count(*) from public.users where firebase_uid is not null")" \
    "$(psql -X -A -t -q -d term -v j="$(p 2 status -d term --json)" <<<"select (:'j'::jsonb)#>>'{phases,1,operations,0,rows_changed}'")" \
    "rows changed in all, across both runs, equals the rows filled"

test_case "a connection lost while the mapping loads: exit 1 (run it again), not 2 (fix the file)"
fresh_app lost 200
must p 1 apply -d lost
# a mapping large enough that its COPY is still going when the backend is terminated
must_write "$TEST_TMP/big.csv" awk 'BEGIN { print "clerk_user_id,firebase_uid"; for (i = 0; i < 1500000; i++) printf "user_x%d,uid_x%d\n", i, i }'
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d lost --mapping "$TEST_TMP/big.csv" >"$TEST_TMP/lost.out" 2>&1 &
victim=$!
wait_for_sql lost "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name like 'phase2 apply%' and query like 'COPY%'" 1 30
wait "$victim"; rc=$?
assert_eq 1 "$rc" "exit 1"
assert_not_contains "$(cat "$TEST_TMP/lost.out")" "must be CSV" "no hint about the file"
assert_eq "0" "$(running_rows lost)" "the outcome recorded on a new connection"
assert_eq "failed" "$(q lost "select status from migration_log where phase = 2 and operation = 'apply'")" "recorded as failed"

test_case "commands out of order: exit 2 with the order to follow, nothing recorded"
fresh_app order 100
assert_exit 2 "phase2 apply before phase1" -- p 2 apply -d order --mapping "$DATA/mapping.csv"
assert_contains "$LAST_ERR" 'run "phase1 apply" first' "says what to run"
assert_exit 2 "phase3 check before phase1" -- p 3 check -d order
must p 1 apply -d order
assert_exit 2 "phase3 apply before phase2" -- p 3 apply -d order
assert_contains "$LAST_ERR" 'the order is phase1 apply, phase2 apply, phase3 check, phase3 apply' "the order"
must p 2 apply -d order --mapping "$DATA/mapping.csv"
assert_exit 2 "phase1 rollback while phase2 is applied" -- p 1 rollback -d order
assert_contains "$LAST_ERR" 'rollbacks go phase3, phase2, phase1' "the order of rollbacks"
assert_exit 2 "finalize before phase3 apply" -- p 3 finalize -d order
assert_eq "0" "$(q order "select count(*) from migration_log where status <> 'done' or (phase = 1 and operation = 'rollback') or phase = 3")" \
    "the refused commands changed nothing and left rows only as failed, if at all"

test_case "status after a full rollback and after finalize tells the truth"
fresh_app st 150
for n in 1 2; do u $n apply -d st >/dev/null 2>&1 || _t_fail "uuid phase$n"; done
must u 3 check -d st; u 3 apply -d st >/dev/null 2>&1 || _t_fail "uuid phase3"
assert_exit 0 "finalize" -- u 3 finalize -d st
assert_exit 0 "status" -- u 3 status -d st
assert_contains "$LAST_OUT" "phase3: applied" "phase3 applied"
assert_contains "$LAST_OUT" "last run: finalize done" "the newest run is the finalize, not the check"
for n in 3 2 1; do u $n rollback -d st >/dev/null 2>&1 || _t_fail "uuid rollback $n"; done
assert_exit 0 "status after rolling back everything" -- u 2 status -d st
assert_contains "$LAST_OUT" "phase2: not applied" "phase2 not applied"
assert_not_contains "$LAST_OUT" "rows scanned" "no row counts of the rolled back fill"
assert_contains "$LAST_OUT" "last run: rollback done" "the newest run is the rollback"

test_case "kill -9 while a statement waits: the server ends the orphaned statement within seconds (client_connection_check_interval)"
fresh_app orphan 200
# an old snapshot makes phase1's CREATE INDEX CONCURRENTLY wait, with no lock_timeout, for as long as it lasts
psql -X -q -d orphan -c "begin isolation level repeatable read; select 1; select pg_sleep(60); commit" >/dev/null 2>&1 &
holder=$!
wait_for_sql orphan "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and state = 'active' and pid <> pg_backend_pid()" 1
"$BIN/phase1" apply --plan "$PLAN" --logs-dir "$LOGS" -d orphan >/dev/null 2>&1 &
victim=$!
wait_for_sql orphan "select count(*) from pg_stat_activity where application_name like 'phase1 apply%' and query like 'CREATE INDEX CONCURRENTLY%' and wait_event_type = 'Lock'" 1
kill -KILL "$victim"; wait "$victim" 2>/dev/null
killed_at=$SECONDS
wait_for_sql orphan "select count(*) from pg_stat_activity where application_name like 'phase1 apply%'" 0 10
[ $((SECONDS - killed_at)) -le 5 ] || _t_fail "the orphaned backend took $((SECONDS - killed_at)) s to end"
assert_eq "1" "$(q orphan "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()")" \
    "the old snapshot still holds: the server ended the statement because its client was gone"
q orphan "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null
assert_exit 0 "phase1 apply again, at once" -- p 1 apply -d orphan
assert_eq "0" "$(running_rows orphan)" "no row left running"

test_case "two plans adding the same column to one table: the second refuses, naming the first; both roll back to the start"
fresh_app twoplans 100
start=$(echo "$(schema_fingerprint twoplans)"; table_checksums twoplans)
edit_file "$PLAN" "$TEST_TMP/again.json" 's/"name": "clerk-to-firebase"/"name": "clerk-again"/'
assert_exit 0 "the first plan's phase1" -- p 1 apply -d twoplans
assert_exit 2 "the second plan's phase1" -- phase 1 apply -d twoplans --plan "$TEST_TMP/again.json" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" 'was added by plan "clerk-to-firebase"; two plans never share a column' "names the first plan"
assert_exit 0 "the second plan's rollback" -- phase 1 rollback -d twoplans --plan "$TEST_TMP/again.json" --logs-dir "$LOGS"
assert_eq "t" "$(q twoplans "select count(*) = 1 from pg_attribute where attrelid = 'public.users'::regclass and attname = 'firebase_uid'")" \
    "the first plan's column is still there"
assert_exit 0 "the first plan's rollback" -- p 1 rollback -d twoplans
assert_eq "$start" "$(echo "$(schema_fingerprint twoplans)"; table_checksums twoplans)" "back to the start"

test_case "SIGTERM whose cancel lands in a count outside the batches (uuid phase2 rollback, between two tables' batch loops): 'stopped by SIGTERM', recorded interrupted, exit 1; the re-run completes"
fresh_app tcount 300
must u 1 apply -d tcount
must u 2 apply -d tcount
"$BIN/phase2" rollback --plan "$UPLAN" --logs-dir "$LOGS" -d tcount --batch-size 10 --sleep-ms 100 >"$TEST_TMP/tcount.out" 2>&1 &
victim=$!
# while the users' shadows are reset, a session takes the next table's ACCESS EXCLUSIVE lock: the count of
# its rows to walk (db_count, run by uuid_undo_batches before its batches) waits there, and the cancel lands in it
wait_for_sql tcount "select count(*) from migration_log where operation = 'reset shadow public.users.id' and status = 'running' and rows_done > 0" 1
psql -X -q -d tcount -c "begin; lock table public.journal_entries in access exclusive mode; select pg_sleep(60); commit" >/dev/null 2>&1 &
holder=$!
wait_for_sql tcount "select count(*) from pg_stat_activity where application_name like 'phase2 rollback%' and query like 'SELECT count(*) FROM public.journal_entries%' and wait_event_type = 'Lock'" 1
kill -TERM "$victim"; wait "$victim"; rc=$?
q tcount "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null
out=$(cat "$TEST_TMP/tcount.out")
assert_eq 1 "$rc" "exit 1: run it again"
assert_contains "$out" "error: stopped by SIGTERM: the statement in progress was cancelled" "says the stop cancelled the statement, not a bare server error"
assert_not_contains "$out" "canceling statement due to user request" "no bare server error"
assert_contains "$out" "stopped by SIGTERM; recorded as interrupted in migration_log: run the same command again" "and what to do, as every interrupted run"
assert_eq "0" "$(running_rows tcount)" "no row left running"
assert_eq "interrupted|stopped by SIGTERM
interrupted|stopped by SIGTERM" "$(q tcount "select status, message from migration_log where phase = 2 and operation in ('rollback', 'rollback convert_to_uuid id') order by id")" \
    "the run and its step: interrupted, with the signal"
assert_exit 0 "the re-run completes the rollback" -- u 2 rollback -d tcount
assert_eq "0" "$(q tcount "select (select count(*) from public.users where id_uuid is not null) + (select count(*) from public.journal_entries where user_id_uuid is not null)")" \
    "every shadow reset"
