# t08_operator.sh -- what the operator sees and controls during the window: phase3 apply and
# finalize ask on a terminal (no: nothing changes, recorded as declined; yes or --yes: they go on;
# off a terminal they need --yes), one index on firebase_uid after phase3 and the plain one back after its rollback,
# the progress line with the whole job's figures and time left (in the run log even with
# --quiet), and status giving the job's rate and time left while a fill runs.
source "$(dirname "$0")/lib.sh"

must_dirs DATA LOGS
# on_tty ANSWER CMD...: CMD with a terminal as its standard input (script(1)), ANSWER typed there
on_tty() {
    local answer=$1 cmd; shift
    printf -v cmd '%q ' "$@"
    (sleep 3; printf '%s\n' "$answer") | script -qec "$cmd" /dev/null
}
# indexes DB: the indexes of public.users on firebase_uid
indexes() { q "$1" "select string_agg(c.relname, ' ' order by c.relname) from pg_index i join pg_class c on c.oid = i.indexrelid
  where i.indrelid = 'public.users'::regclass and i.indkey[0] = (select attnum from pg_attribute
  where attrelid = 'public.users'::regclass and attname = 'firebase_uid')"; }

test_case "phase3 apply on a terminal says what it drops and asks: no changes nothing, yes goes on"
PLAN=$ROOT/plans/clerk-to-firebase.json
gen_app ask 300 t08 "$DATA" --missing-pct 0
must p1 apply -d ask
must p2 apply -d ask --mapping "$DATA/firebase-export.json"
before=$(db_state ask)
out=$(on_tty no "$BIN/phase3" apply --plan "$PLAN" --logs-dir "$LOGS" -d ask); rc=$?
assert_eq "2" "$rc" "answered no: exit 2"
assert_contains "$out" "4. drop_column clerk_user_id: drops the column" "names what it drops"
assert_contains "$out" "in database \"ask\" on socket $PGHOST port $PGPORT as user \"$PGUSER\"" "names the database it asks about"
assert_contains "$out" "not confirmed (only the word yes goes on): nothing was changed" "says nothing changed"
assert_eq "$before" "$(db_state ask)" "nothing changed"
assert_eq "declined|not confirmed (only the word yes goes on): nothing was changed; recorded as declined" \
    "$(q ask "select status || '|' || message from migration_log where phase = 3 order by id desc limit 1")" "audited"
out=$(on_tty yes "$BIN/phase3" apply --plan "$PLAN" --logs-dir "$LOGS" -d ask); rc=$?
assert_eq "0" "$rc" "answered yes: done"
assert_eq "" "$(col_type ask public.users clerk_user_id)" "the column is dropped"

test_case "after phase3 one index on firebase_uid, the unique one; phase3 rollback builds the plain one again first"
assert_eq "users_firebase_uid_key" "$(indexes ask)" "only the unique constraint's index"
assert_exit 0 "phase3 rollback" -- p3 rollback -d ask
assert_eq "users_firebase_uid_idx" "$(indexes ask)" "the plain index is back, valid"
assert_eq "t" "$(q ask "select indisvalid from pg_index where indexrelid = 'public.users_firebase_uid_idx'::regclass")" "valid"
assert_exit 0 "phase3 apply --yes on a terminal asks nothing" -- on_tty "" "$BIN/phase3" apply --plan "$PLAN" \
    --logs-dir "$LOGS" -d ask --yes
assert_not_contains "$LAST_OUT" "Go on?" "no question"
assert_eq "users_firebase_uid_key" "$(indexes ask)" "again one index"
assert_exit 0 "phase3 rollback" -- p3 rollback -d ask
assert_exit 2 "phase3 apply off a terminal without --yes" -- setsid -w "$BIN/phase3" apply --plan "$PLAN" \
    --logs-dir "$LOGS" -d ask </dev/null
assert_contains "$LAST_ERR" "there is no terminal to ask on: nothing was changed" "refused, not asked"
assert_eq "varchar" "$(q ask "select 'varchar' from pg_attribute where attrelid = 'users'::regclass and attname = 'clerk_user_id'")" \
    "nothing dropped"
assert_exit 0 "phase3 apply off a terminal with --yes" -- p3 apply -d ask --yes </dev/null
assert_not_contains "$LAST_ERR" "Go on?" "no question"
assert_exit 0 "phase3 rollback" -- p3 rollback -d ask
assert_exit 0 "phase2 rollback" -- p2 rollback -d ask
assert_exit 0 "phase1 rollback" -- p1 rollback -d ask
assert_eq "" "$(indexes ask)" "phase1 rollback drops the plain index it built"

test_case "phase3 finalize asks too; --yes is refused where nothing is asked"
PLAN=$ROOT/plans/string-to-uuid.json
gen_app fin 200 t08f "$DATA"
must p1 apply -d fin
must p2 apply -d fin
must p3 apply -d fin
out=$(on_tty n "$BIN/phase3" finalize --plan "$PLAN" --logs-dir "$LOGS" -d fin); rc=$?
assert_eq "2" "$rc" "answered n: exit 2"
assert_contains "$out" "drops the <column>_legacy columns" "names what it drops"
assert_eq "character varying(36)" "$(col_type fin public.users id_legacy)" "the legacy column stays"
assert_eq "finalize declined" "$(q fin "select operation || ' ' || status from migration_log where phase = 3 order by id desc limit 1")" \
    "recorded as declined"
assert_exit 2 "phase1 apply --yes" -- p1 apply -d fin --yes
assert_exit 2 "phase3 rollback --yes" -- p3 rollback -d fin --yes

test_case "progress: the job's rows, rate and time left; --quiet keeps it off stderr, not out of the run log"
gen_app prog 2000 t08p "$DATA"
must p1 apply -d prog
assert_exit 0 "phase2 apply --quiet" -- p2 apply -d prog --quiet --batch-size 500
assert_not_contains "$LAST_ERR" "rows/s, about" "no progress line on stderr"
log=$(ls -t "$LOGS"/*.log | head -n 1)
line=$(grep -m 1 'fill public.users.id: [0-9]* of [0-9]* rows' "$log")
assert_contains "$line" "; job " "the job's figures"
assert_contains "$line" " rows/s, about " "rate and time left"
total=$(q prog "select (select count(*) from users) + (select count(*) from journal_entries) + (select count(*) from reminders)
  + (select count(*) from tags)")
assert_contains "$line" " of $total rows (" "the job's total is every table's rows"
assert_exit 0 "phase2 rollback" -- p2 rollback -d prog
assert_exit 0 "phase2 apply --log-format=json" -- p2 apply -d prog --batch-size 500 --log-format=json
assert_eq "$total" "$(grep -m 1 '"job_rows_total"' <<<"$LAST_ERR" | sed 's/.*"job_rows_total":\([0-9]*\).*/\1/')" \
    "the JSON progress line has the job's figures"

test_case "status while a fill runs: rows of every table, the job's rate and time left"
assert_exit 0 "phase2 rollback" -- p2 rollback -d prog
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d prog --batch-size 100 --sleep-ms 100 >/dev/null 2>&1 &
fill_pid=$!
wait_for_sql prog "select count(*) > 0 from migration_log where phase = 2 and status = 'running' and rows_done > 0" t
sleep 1
assert_exit 0 "phase2 status" -- p2 status -d prog
assert_contains "$LAST_OUT" "running now:" "the run"
assert_contains "$LAST_OUT" "rows/s, about" "rate and time left"
assert_exit 0 "phase2 status --json" -- p2 status -d prog --json
assert_eq "t" "$(q prog "select (j->'phases'->1->>'eta_seconds')::float > 0 and (j->'phases'->1->>'rows_total')::int = $total
  from (select \$j\$$LAST_OUT\$j\$::jsonb j) s")" "status --json: the job's rows and time left"
wait "$fill_pid"; rc=$?
assert_eq "0" "$rc" "the fill ends done"

test_case "status --json and check --json: ISO 8601 UTC times, plain identifiers, samples as arrays"
PLAN=$ROOT/plans/clerk-to-firebase.json
gen_app js 300 t08j "$DATA"
must p1 apply -d js
must p2 apply -d js --mapping "$DATA/firebase-export.json"
assert_exit 3 "phase3 check --json" -- p3 check -d js --json
check_json=$LAST_OUT
assert_eq "t" "$(q js "select jsonb_typeof(j->'findings'->0->'samples') = 'array'
  and jsonb_array_length(j->'findings'->0->'samples') = least(10, (select count(*) from users where firebase_uid is null))
  and (select bool_and(u.firebase_uid is null) from jsonb_array_elements_text(j->'findings'->0->'samples') k
       join users u on u.id = k)
  from (select \$j\$$check_json\$j\$::jsonb j) s")" "the samples: an array of the keys of rows without a uid"
assert_exit 0 "phase3 status --json" -- p3 status -d js --json
assert_eq "public|users|t|t" "$(q js "select concat_ws('|', j->>'schema', j->>'table',
  j->'phases'->0->'last_run'->>'started_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$',
  j->'phases'->2->'last_run'->>'finished_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
  from (select \$j\$$LAST_OUT\$j\$::jsonb j) s")" "plain schema and table, ISO 8601 UTC times"
run_id=$(q js "select run_id from migration_log where phase = 3 order by id desc limit 1")
assert_exit 0 "phase3 status --run --json" -- p3 status -d js --run "$run_id" --json
assert_eq "t|array" "$(q js "select concat_ws('|', j->>'started_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$',
  jsonb_typeof(j->'findings'->0->'samples')) from (select \$j\$$LAST_OUT\$j\$::jsonb j) s")" \
    "one run: ISO 8601 UTC start, samples as an array"

test_case "status: the newest run first, its errors, and earlier failed attempts under their own heading"
# js: phase3 check refused (rows without a uid); then phase2 gives them uids and the check passes
must p2 apply -d js --mapping "$DATA/firebase-export.json" --generate-missing
assert_exit 0 "phase3 check after --generate-missing" -- p3 check -d js
assert_exit 0 "phase3 status" -- p3 status -d js
phase3=$(sed -n '/^phase3:/,$p' <<<"$LAST_OUT")
assert_contains "$(sed -n 2p <<<"$phase3")" "last run: check done" "the newest run first"
assert_not_contains "$phase3" "error:" "no error: line for the good run"
assert_contains "$phase3" "  earlier attempts:
    check refused at " "the refused check under its heading"
assert_exit 0 "phase3 status --json" -- p3 status -d js --json
assert_eq "0|1|refused" "$(q js "select concat_ws('|', jsonb_array_length(j->'phases'->2->'errors'),
  jsonb_array_length(j->'phases'->2->'earlier_attempts'), j->'phases'->2->'earlier_attempts'->0->>'status')
  from (select \$j\$$LAST_OUT\$j\$::jsonb j) s")" "status --json: errors of the newest run, earlier attempts apart"

test_case "exit 4 names the holder's phasemig pid and host and its backend pid; status --run takes the short run id"
PLAN=$ROOT/plans/string-to-uuid.json
gen_app lk 200 t08l "$DATA"
must p1 apply -d lk
# a slow phase2 apply holds the plan's lock: a batch of 5 rows every 200 ms
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d lk --batch-size 5 --sleep-ms 200 >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
wait_for_sql lk "select count(*) from migration_log where phase = 2 and status = 'running' and rows_done > 0" 1
run_id=$(q lk "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
backend=$(q lk "select pid from pg_stat_activity where application_name = 'phase2 apply (phasemig run ${run_id:0:8})'")
assert_eq "$holder|$(hostname)|$backend" "$(q lk "select concat_ws('|', metadata->>'client_pid', metadata->>'client_host',
  metadata->>'backend_pid') from migration_log where run_id = '$run_id' and operation = 'apply'")" \
    "migration_log: the client's pid and host, and the backend's pid"
assert_exit 4 "a second phase2 apply" -- p2 apply -d lk --lock-wait 0
assert_contains "$LAST_ERR" "held by phasemig pid $holder on host $(hostname) (server backend pid $backend), run ${run_id:0:8}; " \
    "the holder: the phasemig process's pid, its host, the backend's pid, the run"
assert_exit 0 "phase2 status" -- p2 status -d lk
assert_contains "$LAST_OUT" "running now: phasemig pid $holder on host $(hostname)" "status names the holder the same way"
kill -TERM "$holder"; wait "$holder" || true
assert_exit 0 "status --run with the short id" -- p2 status -d lk --run "${run_id:0:8}"
assert_contains "$LAST_OUT" "run $run_id: phase2 apply interrupted" "the run the short id starts"
assert_exit 0 "status --run --json with the short id" -- p2 status -d lk --run "${run_id:0:8}" --json
assert_eq "$run_id|apply" "$(q lk "select concat_ws('|', j->>'run_id', j->>'subcommand') from (select \$j\$$LAST_OUT\$j\$::jsonb j) s")" \
    "status --run --json: the same run"
assert_exit 2 "status --run with a short id no run has" -- p2 status -d lk --run 00000000
assert_contains "$LAST_ERR" "no run of plan \"string-to-uuid\" in migration_log has an id starting with \"00000000\"" "says so"
assert_exit 2 "status --run with no run id" -- p2 status -d lk --run "x';--"
p1_run=$(q lk "select run_id from migration_log where phase = 1 and operation = 'apply'")
assert_exit 0 "phase1 status --run" -- p1 status -d lk --run "$p1_run"
assert_contains "$LAST_OUT" "longest lock hold " "the text shows the lock times, as --json does"
