# t43_app_deadlock.sh -- a phase2 batch gives way to the application: it never waits on a row an
# application transaction holds (FOR NO KEY UPDATE NOWAIT), so an application transaction that
# locks rows in the reverse order of the batch's keys commits instead of dying in a deadlock; the
# batch is retried, smaller, and says so; a row that stays locked ends the run as failed (exit 1),
# every batch before it kept, and the next run goes on; and phase2 under the shipped load script,
# run several times, fails no application transaction.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/string-to-uuid.json
must_dirs LOGS DATA
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS" -d "$db"; }
# the users' key in key order: the batch locks them in this order
nth_user() { q "$1" "select id from public.users order by id offset $2 limit 1"; }
unfilled() { q "$1" "select (select count(*) from public.users where id_uuid is null)
                     + (select count(*) from public.journal_entries where user_id_uuid is null)"; }

# app_reverse DB EARLY LATE: in the background, an application transaction that updates user LATE
# (in the middle of the batch), waits until phase2 either waits on a lock or has committed a batch,
# lets the batch's own deadlock check pass (1.5 s), then updates user EARLY (which the batch locked
# before reaching LATE) and commits. Its exit status goes to $TEST_TMP/app.rc, its output to app.out.
app_reverse() {
    local db=$1 early=$2 late=$3
    ( psql -X -q -v ON_ERROR_STOP=1 -d "$db" >"$TEST_TMP/app.out" 2>&1 <<SQL
BEGIN;
UPDATE public.users SET name = name WHERE id = '$late';
DO \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                        AND application_name LIKE 'phase2 apply%' AND wait_event_type = 'Lock')
      OR EXISTS (SELECT 1 FROM public.migration_log WHERE operation = 'fill public.users.id' AND rows_done > 0)
      OR clock_timestamp() > t0 + interval '20 s';
    PERFORM pg_sleep(0.05);
  END LOOP;
END \$\$;
SELECT pg_sleep(1.5);
UPDATE public.users SET name = name WHERE id = '$early';
COMMIT;
SQL
      echo $? >"$TEST_TMP/app.rc" ) &
    APP_PID=$!
    wait_for_sql "$db" "select count(*) from pg_locks l join pg_stat_activity a using (pid)
                        where a.datname = '$db' and l.locktype = 'transactionid' and l.mode = 'ExclusiveLock'
                        and a.application_name = 'psql'" 1
}

test_case "an application transaction locking rows in the reverse order of a batch commits; the batch gives way, retries smaller, and the fill ends complete"
gen_app rev 300 t43 "$DATA/rev"
must u 1 rev apply
early=$(nth_user rev 2) late=$(nth_user rev 14)
app_reverse rev "$early" "$late"
# the lock timeout well over deadlock_timeout: a batch waiting on the row would still be waiting
# when the application's deadlock check runs
assert_exit 0 "phase2 apply --batch-size 20" -- u 2 rev apply --batch-size 20 --lock-timeout 10000
wait "$APP_PID"
assert_eq "0" "$(cat "$TEST_TMP/app.rc")" "the application transaction committed ($(cat "$TEST_TMP/app.out"))"
assert_not_contains "$(cat "$TEST_TMP/app.out")" "deadlock detected" "the application was no deadlock victim"
assert_contains "$LAST_ERR" "met a row locked by another transaction (phasemig gives way); retrying with 10 rows" \
    "the batch gave way and was retried smaller"
assert_eq "0" "$(unfilled rev)" "every row filled"
assert_eq "0" "$(q rev "select count(*) from migration_log where phase = 2 and status <> 'done'")" "every phase2 row done"
assert_eq "0" "$(q rev "select count(*) from public.users where id_uuid is distinct from id::uuid")" "every users.id_uuid is its id"

test_case "a row that stays locked ends the run as failed (exit 1, naming where), every batch before it kept; the next run goes on from there"
gen_app held 300 t43 "$DATA/held"
must u 1 held apply
held_key=$(nth_user held 57)
( psql -X -q -d held -c "begin; update public.users set name = name where id = '$held_key'; select pg_sleep(30); commit" \
    >/dev/null 2>&1 ) &
HOLDER=$!
on_exit "kill $HOLDER 2>/dev/null"
wait_for_sql held "select count(*) from pg_stat_activity where datname = 'held' and query like '%pg_sleep(30)%' and state = 'active'
    and pid <> pg_backend_pid()" 1
t0=$SECONDS
# a lock budget of 100 ms x 30 attempts
assert_exit 1 "phase2 apply while user 58 stays locked" -- u 2 held apply --batch-size 20 --lock-timeout 100
took=$((SECONDS - t0))
[ "$took" -le 20 ] || _t_fail "the run gave up after ${took}s, not after its lock budget of about 3 s"
assert_contains "$LAST_ERR" "the row after key $(nth_user held 56) stayed locked by another transaction for" \
    "says which row stayed locked: the one after the last key committed"
assert_contains "$LAST_ERR" "find the transaction holding it" "says what to do"
assert_eq "57" "$(q held "select count(*) from public.users where id_uuid is not null and id < '$held_key'")" \
    "every row before the locked one filled"
assert_eq "0" "$(q held "select count(*) from public.users where id_uuid is not null and id >= '$held_key'")" "nothing at or after it"
assert_eq "failed" "$(q held "select status from migration_log where phase = 2 and operation = 'fill public.users.id' order by id desc limit 1")" \
    "the fill recorded as failed"
assert_eq "0" "$(q held "select count(*) from migration_log where status = 'running'")" "no row left running"
q held "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'held' and query like '%pg_sleep(30)%'
          and pid <> pg_backend_pid()" >/dev/null
wait "$HOLDER" 2>/dev/null
assert_exit 0 "phase2 apply again, the lock gone" -- u 2 held apply --batch-size 20
assert_contains "$LAST_ERR" "resuming the interrupted fill public.users.id" "goes on from the checkpoint"
assert_eq "0" "$(unfilled held)" "every row filled"

# load_run DB TAG: pgbench plays scripts/load/string-to-uuid.sql (4 clients) on DB until load_end
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -n 1)
load_run() {
    PGAPPNAME=t43-load "$PGBENCH" -n -f "$ROOT/scripts/load/string-to-uuid.sql" -c 4 -j 2 -T 120 -D load_clients=4 \
        --failures-detailed --verbose-errors "$1" >"$TEST_TMP/$2.out" 2>"$TEST_TMP/$2.err" &
    LOAD_PID=$!
    wait_for_sql "$1" "select count(*) >= 4 from pg_stat_activity where application_name = 't43-load'" t
}
# load_end TAG: stop pgbench (SIGALRM ends a -T run with its summary); sets LOAD_TX and LOAD_FAILED
# (failed transactions, deadlocks among them, and clients aborted by an error)
load_end() {
    local failed aborted
    kill -ALRM "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID"
    LOAD_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TEST_TMP/$1.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$TEST_TMP/$1.out")
    aborted=$(grep -c 'aborted in command\|aborted while' "$TEST_TMP/$1.err")
    LOAD_TX=${LOAD_TX:-0} LOAD_FAILED=$((${failed:-0} + aborted))
}

RUNS=6
test_case "phase2 apply and rollback under the shipped load script (40 users, 50 journal entries each), $RUNS times: no application transaction fails"
gen_app load 40 t43 "$DATA/load" --children 50
must u 1 load apply
total_tx=0 total_failed=0
for i in $(seq "$RUNS"); do
    load_run load "load$i"
    assert_exit 0 "phase2 apply under load (run $i)" -- u 2 load apply --batch-size 500
    applied_err=$LAST_ERR
    assert_eq "0" "$(unfilled load)" "run $i: every row filled"
    # its batches empty the shadows, locking rows the same way
    [ "$i" = "$RUNS" ] || assert_exit 0 "phase2 rollback under load (run $i)" -- u 2 load rollback --batch-size 500
    applied_err+=$LAST_ERR
    load_end "load$i"; tx=$LOAD_TX failed=$LOAD_FAILED
    total_tx=$((total_tx + tx)) total_failed=$((total_failed + failed))
    echo "# run $i: $tx application transactions, $failed failed; phase2 gave way $(grep -c "gives way" <<<"$applied_err") times" >&2
    [ "$failed" = 0 ] || _t_fail "run $i: $failed application transactions failed:" \
        "$(grep -m3 -i 'deadlock\|error' "$TEST_TMP/load$i.err")"
done
assert_eq "0" "$total_failed" "failed application transactions over $RUNS runs ($total_tx transactions)"
[ "$total_tx" -ge $((RUNS * 50)) ] || _t_fail "the load ran only $total_tx transactions: it cannot have met the batches"
assert_eq "0" "$(q load "select count(*) from migration_log where status = 'running'")" "no row left running"
