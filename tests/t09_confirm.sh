# t09_confirm.sh -- what stands between an operator (or a script) and a change that cannot be
# taken back: a rollback that would discard values the application wrote counts them, names the
# columns and refuses (exit 3, nothing changed) unless --discard-application-writes or a yes
# typed on the terminal says so, and records the decision in migration_log; phase3 apply and
# finalize off a terminal need --yes (exit 2, nothing changed, whatever standard input says); on
# a terminal the question is asked and answered on /dev/tty, type-ahead is flushed, only the word
# yes goes on, and a no is recorded as 'declined' (a migration_log of an older phasemig learns
# that status in place).
source "$(dirname "$0")/lib.sh"

must_dirs DATA LOGS
CLERK=$ROOT/plans/clerk-to-firebase.json
UUID=$ROOT/plans/string-to-uuid.json

# no_tty CMD...: CMD in a session of its own, without a controlling terminal (cron, CI, nohup
# under setsid), even when the tests are run from one
no_tty() { setsid -w "$@"; }
# on_tty EARLY LATE CMD...: CMD on a pseudo-terminal (script(1)); EARLY is typed at once, before
# the question can have been asked (type-ahead), LATE 4 s later. Output: the terminal's.
on_tty() {
    local early=$1 late=$2 cmd; shift 2
    printf -v cmd '%q ' "$@"
    { [ -n "$early" ] && printf '%s\n' "$early"; sleep 4; printf '%s\n' "$late"; sleep 1; } |
        timeout -k 5 60 script -qec "$cmd" /dev/null
}
# last_row DB PHASE: status|metadata of the newest phase-level row of PHASE
last_row() { q "$1" "select status || '|' || metadata::text from migration_log where phase = $2
  and operation in ('apply', 'rollback', 'finalize') order by id desc limit 1"; }
# discarded DB: what the last phase-level row recorded of the application's writes
discarded() { q "$1" "select metadata->>'discard_decision' || ' ' || (metadata->'application_writes')::text
  from migration_log where operation = 'rollback' order by id desc limit 1"; }

test_case "phase1 rollback (Clerk) after phase2's rollback counts nothing: no value left is the application's"
gen_app c0 300 t09c "$DATA"
must phase 1 apply --plan "$CLERK" --logs-dir "$LOGS" -d c0
must phase 2 apply --plan "$CLERK" --logs-dir "$LOGS" -d c0 --mapping "$DATA/firebase-export.json"
filled=$(q c0 "select count(*) from users where firebase_uid is not null")
assert_ne "0" "$filled" "phase2 filled rows"
# phase1 rollback comes after phase2's (exit 2 before it: t23), which puts back what it wrote
must phase 2 rollback --plan "$CLERK" --logs-dir "$LOGS" -d c0
assert_exit 0 "phase1 rollback, nothing of the application's" -- no_tty "$BIN/phase1" rollback --plan "$CLERK" --logs-dir "$LOGS" -d c0
assert_contains "$LAST_ERR" "no value the application wrote is discarded (6 columns counted)" "counted, none"
assert_eq "" "$(col_type c0 public.users firebase_uid)" "the column is dropped"

test_case "phase1 rollback (Clerk) refuses to drop values the application wrote: names the columns and counts"
gen_app c1 300 t09c "$DATA"
must phase 1 apply --plan "$CLERK" --logs-dir "$LOGS" -d c1
must phase 2 apply --plan "$CLERK" --logs-dir "$LOGS" -d c1 --mapping "$DATA/firebase-export.json"
# the application writes: 3 uids over phasemig's, 2 on rows phasemig never filled, 1 phone number
must q c1 "update users set firebase_uid = 'app-' || id where id in (select id from users where firebase_uid is not null order by id limit 3)"
must q c1 "update users set firebase_uid = 'app-' || id where id in (select id from users where firebase_uid is null order by id limit 2)"
must q c1 "update users set phone_number = '+100' where id = (select min(id) from users where firebase_uid is not null)"
must phase 2 rollback --plan "$CLERK" --logs-dir "$LOGS" -d c1
assert_eq "5" "$(q c1 "select count(*) from users where firebase_uid is not null")" "phase2 rollback kept the application's values"
before=$(db_state c1)
assert_exit 3 "--dry-run" -- no_tty "$BIN/phase1" rollback --plan "$CLERK" --logs-dir "$LOGS" -d c1 --dry-run
assert_contains "$LAST_OUT" "would discard 5 values the application wrote in public.users.firebase_uid" "dry run: the count"
assert_contains "$LAST_OUT" "would discard 1 value the application wrote in public.users.phone_number" "dry run: the other column"
rows=$(q c1 "select count(*) from migration_log")
assert_exit 3 "phase1 rollback off a terminal" -- no_tty "$BIN/phase1" rollback --plan "$CLERK" --logs-dir "$LOGS" -d c1 </dev/null
assert_contains "$LAST_ERR" "public.users.firebase_uid: 5 rows hold a value the application wrote" "names the column and count"
assert_contains "$LAST_ERR" "public.users.phone_number: 1 row holds" "and the other"
assert_not_contains "$LAST_ERR" "display_name:" "a column without the application's values is not listed"
assert_contains "$LAST_ERR" "--discard-application-writes" "says how to go on"
assert_eq "$before" "$(db_state c1)" "nothing changed"
assert_eq "refused|{\"discard_decision\": \"refused\", \"application_writes\": {\"public.users.firebase_uid\": 5, \"public.users.phone_number\": 1}}" \
    "$(last_row c1 1 | sed -E 's/"(client_pid|backend_pid|client_host)": [^,]*, //g')" "the refusal and the counts in migration_log"
assert_eq "$((rows + 1))" "$(q c1 "select count(*) from migration_log")" "one row: no step ran"

test_case "on a terminal the discarding rollback asks: no declines (exit 2), --discard-application-writes goes on"
out=$(on_tty "" no "$BIN/phase1" rollback --plan "$CLERK" --logs-dir "$LOGS" -d c1); rc=$?
assert_eq "2" "$rc" "answered no: exit 2"
assert_contains "$out" "public.users.firebase_uid: 5 rows" "the question names the counts"
assert_contains "$out" "Discard them? Type yes" "asked"
assert_eq "$before" "$(db_state c1)" "nothing changed"
assert_eq "declined" "$(last_row c1 1 | cut -d'|' -f1)" "recorded as declined"
assert_exit 0 "--discard-application-writes" -- no_tty "$BIN/phase1" rollback --plan "$CLERK" --logs-dir "$LOGS" -d c1 \
    --discard-application-writes
assert_eq "" "$(col_type c1 public.users firebase_uid)" "the column is dropped"
assert_eq "discarded: --discard-application-writes {\"public.users.firebase_uid\": 5, \"public.users.phone_number\": 1}" \
    "$(discarded c1)" "the decision in migration_log"
assert_eq "done" "$(last_row c1 1 | cut -d'|' -f1)" "done"

test_case "uuid plan: phase2 rollback counts shadows that differ from their original's uuid, not equal ones"
gen_app u1 200 t09u "$DATA"
must phase 1 apply --plan "$UUID" --logs-dir "$LOGS" -d u1
must phase 2 apply --plan "$UUID" --logs-dir "$LOGS" -d u1
# the two-way trigger carries a shadow written alone into its original (t25), so a shadow can only
# differ from its original when written past the triggers: a replica's apply, a data load with
# session_replication_role = replica
must q u1 "set session_replication_role = replica; update users set id_uuid = gen_random_uuid() where id in (select id from users order by id limit 2)"
must q u1 "set session_replication_role = replica; update reminders set user_id_uuid = gen_random_uuid() where id = (select min(id) from reminders where user_id is not null)"
# the same value the trigger would give: not the application's to lose
must q u1 "update tags set user_id_uuid = user_id::uuid where id = (select min(id) from tags)"
before=$(db_state u1)
assert_exit 3 "phase2 rollback off a terminal" -- no_tty "$BIN/phase2" rollback --plan "$UUID" --logs-dir "$LOGS" -d u1
assert_contains "$LAST_ERR" "public.users.id_uuid: 2 rows hold a value the application wrote" "the key's shadow"
assert_contains "$LAST_ERR" "public.reminders.user_id_uuid: 1 row holds" "a child's shadow"
assert_not_contains "$LAST_ERR" "tags.user_id_uuid:" "an equal value is phasemig's"
assert_eq "$before" "$(db_state u1)" "nothing changed"
assert_exit 0 "--discard-application-writes" -- no_tty "$BIN/phase2" rollback --plan "$UUID" --logs-dir "$LOGS" -d u1 \
    --discard-application-writes
assert_eq "0" "$(q u1 "select count(*) from users where id_uuid is not null")" "shadows emptied"
assert_eq "discarded: --discard-application-writes {\"public.users.id_uuid\": 2, \"public.reminders.user_id_uuid\": 1}" \
    "$(discarded u1)" "recorded"

test_case "uuid plan: phase1 rollback counts shadows written since; a yes on the terminal discards them"
must q u1 "insert into users (id, email) values ('0b6f1a3e-0000-4000-8000-000000000001', 'new@example.com')"
assert_eq "0b6f1a3e-0000-4000-8000-000000000001" \
    "$(q u1 "select id_uuid from users where email = 'new@example.com'")" "the trigger filled the new row's shadow"
# a shadow written alone through the trigger moves its original along: nothing of it is lost
must q u1 "update users set id_uuid = '0b6f1a3e-0000-4000-8000-000000000002' where email = 'new@example.com'"
assert_eq "0b6f1a3e-0000-4000-8000-000000000002" "$(q u1 "select id from users where email = 'new@example.com'")" \
    "the original follows the shadow (two-way trigger)"
must q u1 "set session_replication_role = replica; update users set id_uuid = gen_random_uuid() where id = (select min(id) from users)"
assert_exit 3 "phase1 rollback off a terminal" -- no_tty "$BIN/phase1" rollback --plan "$UUID" --logs-dir "$LOGS" -d u1
assert_contains "$LAST_ERR" "public.users.id_uuid: 1 row holds" "only the application's value, not the trigger's"
out=$(on_tty "" yes "$BIN/phase1" rollback --plan "$UUID" --logs-dir "$LOGS" -d u1); rc=$?
assert_eq "0" "$rc" "answered yes: done"
assert_eq "" "$(col_type u1 public.users id_uuid)" "the shadow is dropped"
assert_eq "discarded: confirmed on the terminal {\"public.users.id_uuid\": 1}" "$(discarded u1)" "recorded"

test_case "phase3 apply off a terminal needs --yes: echo no, echo yes, </dev/null all change nothing (exit 2)"
gen_app c2 200 t09d "$DATA" --missing-pct 0
must phase 1 apply --plan "$CLERK" --logs-dir "$LOGS" -d c2
must phase 2 apply --plan "$CLERK" --logs-dir "$LOGS" -d c2 --mapping "$DATA/firebase-export.json"
before=$(db_state c2)
for input in no yes; do
    run no_tty sh -c "echo $input | \"\$@\"" sh "$BIN/phase3" apply --plan "$CLERK" --logs-dir "$LOGS" -d c2
    assert_eq "2" "$LAST_RC" "echo $input |: exit 2"
    assert_contains "$LAST_ERR" "give --yes" "says to pass --yes"
done
assert_exit 2 "</dev/null" -- no_tty "$BIN/phase3" apply --plan "$CLERK" --logs-dir "$LOGS" -d c2 </dev/null
# (xargs says 123 for a command that exited 1 to 125)
assert_exit 123 "| xargs" -- no_tty sh -c "echo -d c2 | xargs \"\$@\"" sh "$BIN/phase3" apply --plan "$CLERK" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" "give --yes" "| xargs: says to pass --yes"
assert_eq "$before" "$(db_state c2)" "nothing swapped or dropped"
assert_eq "varchar" "$(q c2 "select 'varchar' from pg_attribute where attrelid = 'users'::regclass and attname = 'clerk_user_id'")" "clerk_user_id stays"

test_case "on a terminal: type-ahead is flushed, y declines ('declined', state upgraded in place); under nohup with 2>file it still asks there"
# a migration_log an older phasemig made: its status list without 'declined'
must q c2 "alter table migration_log drop constraint migration_log_status_check, add constraint migration_log_status_check
  check (status in ('running', 'done', 'failed', 'refused', 'interrupted'))"
out=$(on_tty yes y "$BIN/phase3" apply --plan "$CLERK" --logs-dir "$LOGS" -d c2); rc=$?
assert_eq "2" "$rc" "a yes typed ahead does not count; y declines: exit 2"
assert_contains "$out" "Go on? Type yes" "asked on the terminal"
assert_eq "$before" "$(db_state c2)" "nothing changed"
assert_eq "declined" "$(last_row c2 3 | cut -d'|' -f1)" "recorded as declined"
assert_contains "$(q c2 "select pg_get_constraintdef(oid) from pg_constraint where conname = 'migration_log_status_check'")" \
    "'declined'" "the older status list learnt 'declined'"
st=$(phase 3 status --plan "$CLERK" --logs-dir "$LOGS" -d c2)
assert_contains "$st" "last run: apply declined" "status shows it"
# nohup: standard input from /dev/null, yet the terminal is still there to ask on
out=$(on_tty "" yes sh -c "cd \"$TEST_TMP\" && nohup \"\$@\" >out 2>err" sh "$BIN/phase3" apply --plan "$CLERK" \
    --logs-dir "$LOGS" -d c2); rc=$?
assert_eq "0" "$rc" "answered yes (nohup, standard error to a file): done"
assert_contains "$out" "Go on? Type yes" "the question is on the terminal"
assert_not_contains "$(cat "$TEST_TMP/err")" "Go on?" "not in the file"
assert_eq "" "$(col_type c2 public.users clerk_user_id)" "the column is dropped"
assert_eq "done" "$(last_row c2 3 | cut -d'|' -f1)" "done"
