# t07_throttle.sh -- phase2 throttle from another terminal: pause and resume a running phase2,
# change its sleep and batch size between two batches (each change in its run log, the row in
# status, the rate measured afresh after each), a result equal to an unthrottled run's; a
# setting belongs to the run it was given for (--next-run: the next one), never to a later run
# or a rollback, --reset clears it, status says "paused since" instead of a time left, and a
# control table of an older phasemig upgrades in place;
# --lag-query pauses while the operator's lag measure is over --max-lag-ms and is refused,
# before anything changes, when it is no measure (naming it); it runs on its own connection, so it
# cannot release the plan's lock; --max-lag-ms warns when no standby is connected.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS
# users_digest DB: every column of every user, in key order
users_digest() { q "$1" "select md5(string_agg(u::text, ',' order by id)) from public.users u"; }
# running_rows DB: rows done by the running fill
running_rows() { q "$1" "select coalesce(max(rows_done), 0) from migration_log where phase = 2 and status = 'running' and operation like 'backfill%'"; }
# wait_for_log PATTERN: until the newest run log has a line matching PATTERN (30 s)
wait_for_log() {
    local end=$((SECONDS + 30))
    until grep -q -- "$1" "$(ls -t "$LOGS"/*.log | head -n 1)" 2>/dev/null; do
        [ "$SECONDS" -ge "$end" ] && { _t_fail "no run log line matching '$1'"; return 1; }
        sleep 0.2
    done
}

test_case "pause, resume and a new batch size from another terminal; the result equals an unthrottled run's"
gen_app thr 3000 t07 "$DATA"
gen_app plain 3000 t07 "$DATA"
must p1 apply -d thr
must p1 apply -d plain
must p2 apply -d plain --mapping "$DATA/firebase-export.json"
assert_exit 0 "throttle --next-run before the run: the next run starts with it" -- p2 throttle -d thr --next-run --sleep-ms 40 --batch-size 50
assert_contains "$LAST_OUT" "no run of this plan is going" "says no run takes it now"
assert_contains "$LAST_OUT" "for the next run: not paused, 40 ms between batches, batch size 50" "says it is for the next run"
p2 apply -d thr --mapping "$DATA/firebase-export.json" >"$TEST_TMP/apply.out" 2>&1 &
apply_pid=$!
wait_for_sql thr "select coalesce(max(rows_done), 0) >= 100 from migration_log where phase = 2 and status = 'running'" t
thr_run=$(q thr "select run_id from migration_log where phase = 2 and status = 'running' and operation = 'apply'")
assert_eq "$thr_run f" "$(q thr "select concat_ws(' ', run_id, next_run) from migration_backup.phasemig_control")" \
    "the running run took the setting given for the next run: it is that run's now"
assert_exit 0 "throttle --pause" -- p2 throttle -d thr --pause
assert_contains "$LAST_OUT" "of this plan is going: it takes its setting before its next batch" "says the running run takes it"
wait_for_log "paused by"
held=$(running_rows thr)
sleep 1.5
assert_eq "$held" "$(running_rows thr)" "no batch while paused"
assert_exit 0 "status while paused" -- p2 status -d thr
assert_contains "$LAST_OUT" "throttle: for the running run ${thr_run:0:8}: paused since " "status shows the throttle of the running run"
assert_contains "$LAST_OUT" ", 40 ms between batches, batch size 50" "with its settings"
assert_contains "$LAST_OUT" "paused since" "the fill's line says paused"
assert_not_contains "$LAST_OUT" " left" "no time left while paused"
assert_exit 0 "status --json while paused" -- p2 status -d thr --json
assert_eq "true 40 50 running_run $thr_run t" "$(q thr "select concat_ws(' ', j->'throttle'->>'paused', j->'throttle'->>'sleep_ms', j->'throttle'->>'batch_size',
    j->'throttle'->>'applies_to', j->'throttle'->>'run_id', (j->'throttle'->>'paused_since')::timestamptz <= now())
    from (select \$j\$$LAST_OUT\$j\$::jsonb j) s")" "status --json has the throttle, for the running run, paused since when"
resumed_at=$(q thr "select clock_timestamp()")
assert_exit 0 "throttle --resume with a new batch size and no sleep" -- p2 throttle -d thr --resume --batch-size 400 --sleep-ms 0
wait "$apply_pid"; rc=$?
assert_eq "0" "$rc" "the throttled phase2 apply ends done"
assert_eq "t" "$(q thr "select (metadata->>'progress_from_at')::timestamptz >= '$resumed_at'
    and (metadata->>'progress_from_rows')::bigint >= $held from migration_log
    where phase = 2 and operation like 'backfill%' order by id desc limit 1")" \
    "the rate (status's time left) is measured afresh from the resume, not averaged over the pause"
log=$(ls -t "$LOGS"/*.log | head -n 1)
assert_contains "$(cat "$log")" "throttle: batch size 50 (was 1000)" "the first change, taken at the start"
assert_contains "$(cat "$log")" "throttle: batch size 400 (was 50)" "the change made while it ran"
assert_contains "$(cat "$log")" "resumed by" "the resume"
assert_contains "$(cat "$log")" "batch size 400" "batches of the new size"
assert_eq "$(users_digest plain)" "$(users_digest thr)" "every user as the unthrottled run left them"
assert_eq "$(q plain "select count(*) from migration_backup.\"clerk-to-firebase:backfill\"")" \
    "$(q thr "select count(*) from migration_backup.\"clerk-to-firebase:backfill\"")" "as many originals saved"

test_case "--lag-query: batches wait while its lag is over --max-lag-ms, then go on"
gen_app lag 600 t07l "$DATA"
must p1 apply -d lag
q lag "create table public.fake_lag (ms int); insert into public.fake_lag values (5000)" >/dev/null
p2 apply -d lag --mapping "$DATA/firebase-export.json" --max-lag-ms 100 \
    --lag-query "select ms from public.fake_lag" >"$TEST_TMP/lag.out" 2>&1 &
lag_pid=$!
wait_for_log "pausing: --lag-query's lag is 5000 ms, over the limit of 100 ms"
sleep 1
assert_eq "0" "$(running_rows lag)" "no batch while the lag is over the limit"
q lag "update public.fake_lag set ms = 20" >/dev/null
wait "$lag_pid"; rc=$?
assert_eq "0" "$rc" "phase2 apply ends done once the lag is under the limit"
assert_contains "$(cat "$TEST_TMP/lag.out")" "lag is 20 ms, under 100 ms: going on" "says it goes on"
assert_eq "t" "$(q lag "select count(firebase_uid) > 500 from users")" "the fill ran to its end"

test_case "a --lag-query that is no lag measure is refused before anything changes; no standby is warned about"
gen_app lagbad 200 t07b "$DATA"
must p1 apply -d lagbad
before=$(db_state lagbad; q lagbad "select count(*) from migration_log")
for bad in "select 1, 2" "select 'soon'" "select * from no_such_table" "select 1 where false" "select 1; select 2"; do
    assert_exit 2 "phase2 apply --lag-query '$bad'" -- p2 apply -d lagbad --mapping "$DATA/firebase-export.json" \
        --max-lag-ms 100 --lag-query "$bad"
done
assert_eq "$before" "$(db_state lagbad; q lagbad "select count(*) from migration_log")" "nothing changed"
assert_exit 2 "--lag-query without --max-lag-ms" -- p2 apply -d lagbad --mapping "$DATA/firebase-export.json" --lag-query "select 0"
assert_contains "$LAST_ERR" "needs --max-lag-ms" "says what it needs"
assert_exit 0 "phase2 apply --max-lag-ms on a server with no standby" -- p2 apply -d lagbad \
    --mapping "$DATA/firebase-export.json" --max-lag-ms 100
assert_contains "$LAST_ERR" "no standby is connected to this server" "warns that there is nothing to wait for"

test_case "--lag-query runs on a connection of its own: unlocking advisory locks there lets no second run in; NaN, infinities, over 9.2e18, negative lags, its errors and a hung query are refused naming --lag-query"
gen_app lagown 600 t07l "$DATA"
must p1 apply -d lagown
unlock="select 0 from (select pg_advisory_unlock_all()) s"
p2 apply -d lagown --mapping "$DATA/firebase-export.json" --max-lag-ms 100 --lag-query "$unlock" \
    --batch-size 20 --sleep-ms 50 >"$TEST_TMP/own.out" 2>&1 &
own_pid=$!
wait_for_sql lagown "select coalesce(max(rows_done), 0) >= 40 from migration_log where phase = 2 and status = 'running'" t
assert_exit 4 "a second phase2 apply of the plan while the first runs" -- p2 apply -d lagown \
    --mapping "$DATA/firebase-export.json" --lock-wait 0
assert_contains "$LAST_ERR" "another run holds the lock of plan" "says the lock is held"
wait "$own_pid"; rc=$?
assert_eq "0" "$rc" "the first run ends done ($(tail -2 "$TEST_TMP/own.out"))"
assert_eq "1" "$(q lagown "select count(*) from migration_log where phase = 2 and operation = 'apply'")" "one phase2 run recorded, the second never started"
assert_eq "$(users_digest lag)" "$(users_digest lagown)" "every user as the other --lag-query run left them"
before=$(db_state lagown; q lagown "select count(*) from migration_log")
for bad in "select 'NaN'::float8" "select 'Infinity'::float8" "select '-Infinity'::float8" "select 1e19" "select -5"; do
    assert_exit 2 "phase2 apply --lag-query \"$bad\"" -- p2 apply -d lagown --mapping "$DATA/firebase-export.json" \
        --max-lag-ms 100 --lag-query "$bad"
    assert_contains "$LAST_ERR" "error: --lag-query returned" "\"$bad\": refused as no lag"
    assert_contains "$LAST_ERR" "statement: $bad" "\"$bad\": the query named"
done
assert_exit 2 "phase2 apply --lag-query \"select 1/0\"" -- p2 apply -d lagown --mapping "$DATA/firebase-export.json" \
    --max-lag-ms 100 --lag-query "select 1/0"
assert_contains "$LAST_ERR" "error: --lag-query failed: division by zero" "the error says it came from --lag-query"
assert_exit 2 "phase2 apply --lag-query \"select pg_sleep(60)\"" -- p2 apply -d lagown --mapping "$DATA/firebase-export.json" \
    --max-lag-ms 100 --lag-query "select 0 from pg_sleep(60)"
assert_contains "$LAST_ERR" "error: --lag-query failed: canceling statement due to statement timeout" "a hung lag measure is cut at 10 s, naming --lag-query"
assert_eq "$before" "$(db_state lagown; q lagown "select count(*) from migration_log")" "nothing changed"

test_case "throttle refuses what it does not set, and a database phase1 never prepared"
assert_exit 2 "--pause and --resume together" -- p2 throttle -d lagbad --pause --resume
assert_exit 2 "--max-lag-ms to throttle" -- p2 throttle -d lagbad --max-lag-ms 10
assert_contains "$LAST_ERR" "throttle sets --sleep-ms, --batch-size, --pause and --resume only" "says what it sets"
assert_exit 2 "--pause to apply" -- p2 apply -d lagbad --pause
assert_exit 2 "--next-run to apply" -- p2 apply -d lagbad --next-run
assert_exit 2 "--reset with a setting" -- p2 throttle -d lagbad --reset --pause
assert_contains "$LAST_ERR" "give it alone" "says --reset goes alone"
new_db bare
assert_exit 2 "throttle before phase1" -- p2 throttle -d bare --pause

test_case "SIGTERM while paused: exit 1, recorded as interrupted, each batch kept; resumed, it ends as an unthrottled run"
gen_app pterm 3000 t07 "$DATA"
must p1 apply -d pterm
assert_exit 0 "throttle --pause for the next run" -- p2 throttle -d pterm --next-run --pause --batch-size 100
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d pterm --mapping "$DATA/firebase-export.json" >"$TEST_TMP/pterm.out" 2>&1 &
term_pid=$!
wait_for_log "paused by"
kill -TERM "$term_pid"
wait "$term_pid"; rc=$?
assert_eq "1" "$rc" "stopped by the signal: exit 1"
assert_contains "$(cat "$TEST_TMP/pterm.out")" "stopped by SIGTERM while paused" "says it stopped while paused"
assert_eq "interrupted" "$(q pterm "select status from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")" \
    "migration_log: interrupted"
assert_eq "0" "$(q pterm "select count(*) from migration_log where status = 'running'")" "no row left running"
assert_eq "$(q pterm "select count(*) from users")" "$(q pterm "select count(*) from users where firebase_uid is null")" \
    "paused before its first batch: nothing filled"
assert_exit 2 "throttle --resume with no run going" -- p2 throttle -d pterm --resume
assert_contains "$LAST_ERR" "no run of plan \"clerk-to-firebase\" is going" "refused: no run would take it"
assert_exit 0 "phase2 apply again: the pause was the stopped run's, not this one's" -- timeout 60 "$BIN/phase2" apply \
    --plan "$PLAN" --logs-dir "$LOGS" -d pterm --mapping "$DATA/firebase-export.json"
assert_eq "$(users_digest plain)" "$(users_digest pterm)" "every user as the unthrottled run left them"

# run_log RUN_ID: the text of that run's log
run_log() { cat "$LOGS/$1.log"; }
# last_run DB PHASE OPERATION: the run id of the newest such migration_log row
last_run() { q "$1" "select run_id from migration_log where phase = $2 and operation = '$3' order by id desc limit 1"; }
# fill_batches DB: the batches the newest backfill row of phase2 recorded
fill_batches() { q "$1" "select metadata->>'batches' from migration_log where phase = 2 and operation like 'backfill%' order by id desc limit 1"; }

test_case "a setting belongs to the run it was given for: never to the next run nor to a rollback"
gen_app own 3000 t07 "$DATA"
must p1 apply -d own
assert_exit 2 "throttle --sleep-ms with no run going and no --next-run" -- p2 throttle -d own --sleep-ms 10
assert_contains "$LAST_ERR" "no run of plan \"clerk-to-firebase\" is going: a throttle setting belongs to one run" "says why"
assert_contains "$LAST_ERR" "--next-run" "names --next-run"
assert_eq "0" "$(q own "select count(*) from migration_backup.phasemig_control")" "nothing set"
assert_exit 0 "throttle --next-run --batch-size 70 --sleep-ms 30" -- p2 throttle -d own --next-run --batch-size 70 --sleep-ms 30
assert_eq "t 70 30" "$(q own "select concat_ws(' ', next_run, batch_size, sleep_ms) from migration_backup.phasemig_control where run_id is null")" \
    "the row is for the next run"
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d own --mapping "$DATA/firebase-export.json" >"$TEST_TMP/own1.out" 2>&1 &
own_pid=$!
wait_for_sql own "select coalesce(max(rows_done), 0) >= 140 from migration_log where phase = 2 and status = 'running' and operation like 'backfill%'" t
own_run=$(q own "select run_id from migration_log where phase = 2 and status = 'running' and operation = 'apply'")
assert_exit 2 "throttle --next-run while a run goes" -- p2 throttle -d own --next-run --sleep-ms 5
assert_contains "$LAST_ERR" "is going: --next-run is for when none is" "refused: a run is going"
assert_exit 0 "throttle --pause --batch-size 5000 for the running run" -- p2 throttle -d own --pause --batch-size 5000
assert_contains "$LAST_OUT" "for the running run ${own_run:0:8}: paused since" "set for the running run"
wait_for_log "paused by"
assert_exit 0 "status while paused" -- p2 status -d own
assert_contains "$LAST_OUT" "paused since" "status says paused, and since when"
assert_not_contains "$LAST_OUT" " left" "and no time left"
kill -TERM "$own_pid"
wait "$own_pid"; rc=$?
assert_eq "1" "$rc" "the paused run stopped by SIGTERM: exit 1"
assert_eq "$own_run t 5000" "$(q own "select concat_ws(' ', run_id, paused, batch_size) from migration_backup.phasemig_control")" \
    "the stopped run's pause and batch size are left in its row"
assert_exit 0 "status after the run ended" -- p2 status -d own
assert_contains "$LAST_OUT" "throttle: none in force (the last, for run ${own_run:0:8}, which has ended)" "status: no setting in force"
assert_exit 0 "the next phase2 apply, given nothing: neither paused nor in batches of 5000" -- timeout 60 "$BIN/phase2" apply \
    --plan "$PLAN" --logs-dir "$LOGS" -d own --mapping "$DATA/firebase-export.json"
next_run=$(last_run own 2 apply)
assert_ne "$own_run" "$next_run" "a new run"
assert_not_contains "$(run_log "$next_run")" "throttle:" "its run log: no throttle setting taken"
assert_not_contains "$(run_log "$next_run")" "paused by" "its run log: never paused"
batches=$(fill_batches own)
# its own size: the plan's 1000 first, then as measured (at most doubling a batch), never 5000 at once
[ "$batches" -ge 2 ] || _t_fail "the rest of the 3000 rows in batches of its own: expected 2 or more batches in migration_log, got '$batches'"
assert_eq "$(users_digest plain)" "$(users_digest own)" "every user as the unthrottled run left them"
assert_exit 0 "phase2 rollback, given nothing: not paused by the stopped run's pause" -- timeout 60 "$BIN/phase2" rollback \
    --plan "$PLAN" --logs-dir "$LOGS" -d own
rb_run=$(last_run own 2 rollback)
assert_not_contains "$(run_log "$rb_run")" "throttle:" "the rollback's run log: no throttle setting taken"
assert_not_contains "$(run_log "$rb_run")" "paused by" "the rollback's run log: never paused"
assert_eq "3000" "$(q own "select count(*) from users where firebase_uid is null")" "the rollback restored every user"
assert_eq "$own_run" "$(q own "select run_id from migration_backup.phasemig_control")" "the row still belongs to the stopped run only"

test_case "--next-run applies to one run only; --reset clears every setting, a running run's pause too"
gen_app rst 3000 t07 "$DATA"
must p1 apply -d rst
assert_exit 0 "throttle --next-run --batch-size 60" -- p2 throttle -d rst --next-run --batch-size 60
assert_exit 0 "phase2 apply takes it" -- timeout 60 "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d rst \
    --mapping "$DATA/firebase-export.json"
first=$(last_run rst 2 apply)
assert_contains "$(run_log "$first")" "throttle: batch size 60 (was 1000)" "its run log: the setting taken"
assert_eq "t" "$(q rst "select $(fill_batches rst) >= 50")" "migration_log: batches of 60 (3000 rows in 50 or more)"
assert_exit 0 "phase2 rollback after it: not in batches of 60" -- timeout 60 "$BIN/phase2" rollback --plan "$PLAN" --logs-dir "$LOGS" -d rst
assert_not_contains "$(run_log "$(last_run rst 2 rollback)")" "throttle:" "the rollback took nothing"
assert_exit 0 "throttle --next-run --pause" -- p2 throttle -d rst --next-run --pause
assert_exit 0 "throttle --reset" -- p2 throttle -d rst --reset
assert_contains "$LAST_OUT" "reset" "says it reset"
assert_eq "0" "$(q rst "select count(*) from migration_backup.phasemig_control")" "no setting left"
assert_exit 0 "phase2 apply after the reset: not paused" -- timeout 60 "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d rst \
    --mapping "$DATA/firebase-export.json"
assert_not_contains "$(run_log "$(last_run rst 2 apply)")" "paused by" "never paused"
must p2 rollback -d rst
assert_exit 0 "throttle --next-run --pause again" -- p2 throttle -d rst --next-run --pause
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d rst --mapping "$DATA/firebase-export.json" >"$TEST_TMP/rst.out" 2>&1 &
rst_pid=$!
wait_for_log "paused by"
assert_exit 0 "throttle --reset while the run is paused" -- p2 throttle -d rst --reset
rc=124
for _ in $(seq 1 150); do kill -0 "$rst_pid" 2>/dev/null || { wait "$rst_pid"; rc=$?; break; }; sleep 0.2; done
[ "$rc" = 124 ] && kill -TERM "$rst_pid"
assert_eq "0" "$rc" "the reset let the paused run go on to its end"
assert_eq "$(users_digest plain)" "$(users_digest rst)" "every user as the unthrottled run left them"

test_case "a control table an older phasemig made upgrades in place; its rows belong to no run"
gen_app old 300 t07 "$DATA"
must p1 apply -d old
q old "alter table migration_backup.phasemig_control drop column run_id, drop column next_run, drop column paused_at;
    insert into migration_backup.phasemig_control (plan, paused, batch_size, updated_by) values ('clerk-to-firebase', true, 5, 'old@host')" >/dev/null
assert_exit 0 "phase2 apply on the older table: its row pauses nothing" -- timeout 60 "$BIN/phase2" apply --plan "$PLAN" \
    --logs-dir "$LOGS" -d old --mapping "$DATA/firebase-export.json"
assert_not_contains "$(run_log "$(last_run old 2 apply)")" "throttle:" "the older row was not taken"
must p2 rollback -d old
assert_exit 0 "throttle --next-run --batch-size 40 upgrades the table" -- p2 throttle -d old --next-run --batch-size 40
assert_eq "3" "$(q old "select count(*) from pg_attribute where attrelid = 'migration_backup.phasemig_control'::regclass
    and attname in ('run_id', 'next_run', 'paused_at') and not attisdropped")" "the columns are added in place"
assert_eq "f 40 t" "$(q old "select concat_ws(' ', paused, batch_size, next_run) from migration_backup.phasemig_control")" \
    "the older row replaced by the setting for the next run (its pause gone)"
assert_exit 0 "phase2 apply takes it" -- timeout 60 "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d old \
    --mapping "$DATA/firebase-export.json"
assert_contains "$(run_log "$(last_run old 2 apply)")" "throttle: batch size 40 (was 1000)" "taken by the next run"
