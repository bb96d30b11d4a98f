# t06_dry_run.sh -- --dry-run on every apply, rollback and finalize of both plans: it changes
# nothing (schema fingerprint, every table's checksum, migration_log, no run log, no hook), it
# exits with the code the real run then exits with, and the statements it prints are the ones
# the real run writes to its run log, in the same order.
source "$(dirname "$0")/lib.sh"

must_dirs DATA LOGS
EVENTS=$TEST_TMP/events.jsonl

# mlog_state DB: migration_log's rows, or "none" before phase1 made it
mlog_state() {
    if [ "$(q "$1" "select to_regclass('public.migration_log') is null")" = t ]; then echo none; return; fi
    q "$1" "select count(*) || ' ' || coalesce(md5(string_agg(l::text, ',' order by id)), '') from public.migration_log l"
}
# dry_statements: the statements of a dry run's output (comments and transaction control left out)
dry_statements() { grep -v -e '^--' -e '^BEGIN;$' -e '^COMMIT;$' -e '^SET LOCAL lock_timeout' | sed 's/;$//'; }
# logged_statements DB: the statements the newest run's log recorded
logged_statements() {
    local id
    id=$(q "$1" "select run_id from public.migration_log order by id desc limit 1")
    grep -h ': statement: ' "$LOGS/$id.log" | sed 's/^.*: statement: //'
}
# dry_then_real DB CODE PHASE ARGS...: the dry run changes nothing and exits CODE, then the
# real run exits CODE too and logs exactly the statements the dry run printed
dry_then_real() {
    local db=$1 want=$2 n=$3 before printed logs_before; shift 3
    before=$(db_state "$db"; mlog_state "$db")
    logs_before=$(ls "$LOGS" | wc -l)
    : >"$EVENTS"
    assert_exit "$want" "phase$n $* --dry-run" -- phase "$n" "$@" --dry-run --plan "$PLAN" --logs-dir "$LOGS" \
        --hook "cat >> '$EVENTS'"
    printed=$(dry_statements <<<"$LAST_OUT")
    assert_eq "$before" "$(db_state "$db"; mlog_state "$db")" "phase$n $* --dry-run: schema, rows and migration_log unchanged"
    assert_eq "$logs_before 0" "$(ls "$LOGS" | wc -l) $(wc -l <"$EVENTS")" "phase$n $* --dry-run: no run log, no hook event"
    assert_contains "$LAST_ERR" "nothing was changed" "phase$n $* --dry-run says so"
    assert_exit "$want" "phase$n $*" -- phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS"
    [ "$want" = 0 ] || return 0
    [ -n "$printed" ] || _t_fail "phase$n $* --dry-run printed no statement"
    assert_eq "$printed" "$(logged_statements "$db")" "phase$n $*: the statements printed are those the real run ran"
}

test_case "clerk-to-firebase: every apply and rollback, dry then real: the same statements, nothing changed by the dry run"
PLAN=$ROOT/plans/clerk-to-firebase.json
gen_app dryc 400 t06 "$DATA" --missing-pct 0
start=$(db_state dryc)
dry_then_real dryc 0 1 apply -d dryc
dry_then_real dryc 0 2 apply -d dryc --mapping "$DATA/firebase-export.json" --batch-size 150
dry_then_real dryc 0 3 apply -d dryc
dry_then_real dryc 0 3 rollback -d dryc
dry_then_real dryc 0 2 rollback -d dryc
dry_then_real dryc 0 1 rollback -d dryc
assert_eq "$start" "$(db_state dryc)" "the real runs' rollbacks give back the start"

test_case "string-to-uuid: every apply, finalize and rollback, dry then real"
PLAN=$ROOT/plans/string-to-uuid.json
gen_app dryu 300 t06u "$DATA"
start=$(db_state dryu)
dry_then_real dryu 0 1 apply -d dryu
dry_then_real dryu 0 2 apply -d dryu --batch-size 200
dry_then_real dryu 0 3 apply -d dryu
dry_then_real dryu 0 3 finalize -d dryu
dry_then_real dryu 0 3 rollback -d dryu
dry_then_real dryu 0 2 rollback -d dryu
dry_then_real dryu 0 1 rollback -d dryu
assert_eq "$start" "$(db_state dryu)" "the real runs' rollbacks give back the start"

test_case "a dry run exits as the real run would: out of order (2), refused by pre-flight checks (3)"
PLAN=$ROOT/plans/clerk-to-firebase.json
gen_app dryr 300 t06r "$DATA"
dry_then_real dryr 2 2 apply -d dryr --mapping "$DATA/firebase-export.json"
must p1 apply -d dryr
must p2 apply -d dryr --mapping "$DATA/firebase-export.json"
dry_then_real dryr 3 3 apply -d dryr
assert_contains "$LAST_ERR" "null_or_empty" "the refusal names the check"

test_case "phase2 --dry-run of the Clerk job counts the rows it would fill and those without a match"
assert_exit 0 "phase2 rollback" -- p2 rollback -d dryr
assert_exit 0 "phase2 apply --dry-run" -- p2 apply -d dryr --dry-run --mapping "$DATA/firebase-export.json"
assert_eq "300" "$(q dryr "select count(*) from users where firebase_uid is null")" "nothing filled"
would=$(sed -n 's/.*: \([0-9]*\) would be filled from it$/\1/p' <<<"$LAST_OUT")
unmatched=$(sed -n 's/^-- \([0-9]*\) rows have no match.*/\1/p' <<<"$LAST_OUT")
assert_exit 0 "phase2 apply" -- p2 apply -d dryr --mapping "$DATA/firebase-export.json"
assert_eq "$(q dryr "select count(firebase_uid) || ' ' || count(*) filter (where firebase_uid is null) from users")" \
    "$would $unmatched" "the dry run's counts are what the real run filled and left empty"
[ "${unmatched:-0}" -gt 0 ] || _t_fail "expected rows without a match (5% of the users are not in the export)"

test_case "--dry-run is refused where nothing would change"
PLAN=$ROOT/plans/clerk-to-firebase.json
assert_exit 2 "status --dry-run" -- p2 status -d dryr --dry-run
assert_contains "$LAST_ERR" "accepted by apply, rollback and finalize only" "says where it is accepted"
assert_exit 2 "check --dry-run" -- p3 check -d dryr --dry-run
