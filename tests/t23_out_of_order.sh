# t23_out_of_order.sh -- every command run before its phase can run (or after it can no
# longer), for both shipped plans, at every stage of the sequence: exit 2, the one message
# pattern ("phaseN CMD: phaseM <state> for plan P on database D; run "..." first" or
# "nothing to roll back") with the order as a hint, and nothing changed: the schema, every
# table's rows and migration_log are as before the command.
source "$(dirname "$0")/lib.sh"

must_dirs LOGS
# ooo DB NAME STAGE CMD...: each "N SUB" in CMD... (phase N, subcommand SUB) run on DB with plan
# NAME exits 2 with the shared message and hint, and leaves the database as it was
ooo() {
    local db=$1 name=$2 stage=$3 cmd before log_before; shift 3
    # each command is compared with the stage's state: none of them may change it
    before=$(db_state "$db") log_before=$(mlog_rows "$db")
    for cmd in "$@"; do
        run phase "${cmd%% *}" ${cmd#* } $(yes_for "$cmd") --plan "$ROOT/plans/$name.json" --logs-dir "$LOGS" -d "$db"
        [ "$LAST_RC" = 2 ] || _t_fail "$name, $stage: phase$cmd: expected exit 2, got $LAST_RC" "$(tail -5 <<<"$LAST_ERR")"
        [[ $LAST_ERR =~ phase${cmd%% *}:\ error:\ phase$cmd:\ phase[123]\ [^$'\n']*\ for\ plan\ \"$name\"\ on\ database\ \"$db\"\;\ (run\ \"phase[123]\ (apply|rollback)\"\ first|nothing\ to\ roll\ back) ]] ||
            _t_fail "$name, $stage: phase$cmd: not the shared out-of-order message" "$(tail -5 <<<"$LAST_ERR")"
        assert_contains "$LAST_ERR" "hint: the order is phase1 apply, phase2 apply, phase3 check, phase3 apply" "$name, $stage: phase$cmd: the order as a hint"
        assert_not_contains "$LAST_ERR" "does not exist" "$name, $stage: phase$cmd: no raw SQL error"
        assert_eq "$before" "$(db_state "$db")" "$name, $stage: phase$cmd: schema and rows unchanged"
        assert_eq "$log_before" "$(mlog_rows "$db")" "$name, $stage: phase$cmd: migration_log unchanged"
    done
}
# yes_for "N SUB": --yes for the phase3 commands that ask (a refusal must come before the question)
yes_for() { case $1 in "3 apply" | "3 finalize") echo --yes ;; esac; }
# mlog_rows DB: migration_log's rows, or "none" when there is no migration_log
mlog_rows() {
    if [ -z "$(q "$1" "select to_regclass('public.migration_log')")" ]; then echo none; return; fi
    q "$1" "select id, run_id, phase, operation, status, coalesce(message, ''), finished_at from public.migration_log order by id"
}
# ok DB NAME CMD: a step of the sequence the cases build on
ok() { must phase "${3%% *}" ${3#* } $(yes_for "$3") --plan "$ROOT/plans/$2.json" --logs-dir "$LOGS" -d "$1" "${@:4}"; }

for name in clerk-to-firebase string-to-uuid; do
    db=${name//-/_}
    mapping=()
    [ "$name" = clerk-to-firebase ] && mapping=(--mapping "$TEST_TMP/data-$db/firebase-export.json" --generate-missing)

    test_case "$name: on a fresh database every command but phase1 apply exits 2 and changes nothing"
    gen_app "$db" 60 t23 "$TEST_TMP/data-$db"
    ooo "$db" "$name" fresh "2 apply" "2 rollback" "2 throttle" "3 check" "3 apply" "3 finalize" "3 rollback" "1 rollback"
    assert_eq "" "$(q "$db" "select to_regclass('public.migration_log')")" "$name: no migration_log was created"

    test_case "$name: after phase1 apply: phase2 rollback and every phase3 command exit 2"
    ok "$db" "$name" "1 apply"
    ooo "$db" "$name" "after phase1" "2 rollback" "3 check" "3 apply" "3 finalize" "3 rollback"

    test_case "$name: after phase2 apply: phase1 apply and rollback, phase3 finalize and rollback exit 2"
    ok "$db" "$name" "2 apply" "${mapping[@]}"
    ooo "$db" "$name" "after phase2" "1 apply" "1 rollback" "3 finalize" "3 rollback"

    test_case "$name: after phase3 apply: phase1 and phase2 apply and rollback, phase3 check exit 2"
    ok "$db" "$name" "3 apply"
    ooo "$db" "$name" "after phase3" "1 apply" "1 rollback" "2 apply" "2 rollback" "3 check"

    test_case "$name: after a full rollback: phase3 check, phase2 and every rollback exit 2"
    ok "$db" "$name" "3 rollback"
    ok "$db" "$name" "2 rollback"
    ok "$db" "$name" "1 rollback"
    ooo "$db" "$name" "rolled back" "3 check" "3 apply" "3 finalize" "2 apply" "3 rollback" "2 rollback" "1 rollback"
done

test_case "a rollback of a phase whose apply failed in a step is not refused (something to undo); failed before any step, it is"
db=partial
gen_app "$db" 30 t23 "$TEST_TMP/data-$db"
ok "$db" string-to-uuid "1 apply"
# a phase2 apply that failed before its first step (as a declined confirmation does): nothing to undo
q "$db" "insert into public.migration_log (run_id, plan, phase, operation, status, tool_version, finished_at)
  values (gen_random_uuid(), 'string-to-uuid', 2, 'apply', 'failed', 'test', clock_timestamp())" >/dev/null
ooo "$db" string-to-uuid "phase2 failed before a step" "2 rollback"
# a phase2 apply that failed in a step (recorded 'failed'), as a lost connection leaves it
q "$db" "with r as (select gen_random_uuid() as id)
  insert into public.migration_log (run_id, plan, phase, operation, status, tool_version, finished_at)
  select r.id, 'string-to-uuid', 2, op, 'failed', 'test', clock_timestamp() from r, (values ('apply'), ('convert_to_uuid id')) v(op)" >/dev/null
assert_exit 0 "phase2 rollback after a failed phase2 apply" -- \
    phase 2 rollback --plan "$ROOT/plans/string-to-uuid.json" --logs-dir "$LOGS" -d "$db"
assert_eq "done" "$(q "$db" "select status from public.migration_log where phase = 2 and operation = 'rollback' order by id desc limit 1")" \
    "the rollback ran and is recorded done"
ooo "$db" string-to-uuid "phase2 rolled back" "2 rollback"
