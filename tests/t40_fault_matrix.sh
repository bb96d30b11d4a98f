# t40_fault_matrix.sh -- every subcommand of both shipped plans interrupted at two points by
# each of three faults (kill -9 of phasemig, SIGTERM, pg_terminate_backend of its backend),
# each followed at once by the same command again (no sleep). After the walk (apply all,
# roll back all, apply all again) the database equals an uninterrupted run's: schema
# fingerprint, every table's checksum, no migration_log row left 'running', and for the Clerk
# plan every generated user in exactly one import file, with the same uid throughout.
#
# The two points of each command: "lock" (a session holding ROW EXCLUSIVE on the plan's table,
# as an application's open write does, has made a DDL step wait for its lock; or a batch loop
# has done 30% of its rows) and "snapshot" (a session holding an old snapshot has made a
# CONCURRENTLY build or drop wait; or a batch loop has done 70% of its rows). A command has
# no snapshot point when it builds nothing concurrently and runs no batches: such points
# are counted as missed, and only lock points must never miss (but for uuid phase2
# rollback, which has nothing to do on this data).
# Knobs: FAULT_USERS (1200) and FAULT_KINDS (kill9,term,terminate; make check-fast runs
# kill9,term: a backend terminated midway is t41's and t11's too).
source "$(dirname "$0")/lib.sh"

must_dirs LOGS DATA
USERS=${FAULT_USERS:-1200}
IFS=, read -r -a FAULTS <<<"${FAULT_KINDS:-kill9,term,terminate}"
for fault in "${FAULTS[@]}"; do [[ $fault == @(kill9|term|terminate) ]] || setup_failed "FAULT_KINDS: no fault '$fault'"; done
DELIVERED=0 MISSED=0

# plan copies with small fixed batches (target_batch_ms 0: not adapted), so that batch loops take long
# enough to be interrupted
for p in clerk-to-firebase string-to-uuid; do
    edit_file "$ROOT/plans/$p.json" "$TEST_TMP/$p.json" 's/"batch_size": 1000/"batch_size": 40, "target_batch_ms": 0/'
done
CLERK_PLAN=$TEST_TMP/clerk-to-firebase.json UUID_PLAN=$TEST_TMP/string-to-uuid.json

fresh_app() { gen_app "$1" "$USERS" t40 "$DATA"; }

# The state compared between runs.  Generated Firebase uids are random: a user's uid counts
# as "the export's" or "generated", and generated uids are checked separately.
state() {
    local db=$1 plan=$2
    schema_fingerprint "$db"
    if [ "$plan" = clerk ]; then
        table_checksums "$db" | grep -v '^public.users '
        q "$db" "select md5(string_agg((to_jsonb(u) - 'firebase_uid')::text || ':' ||
            case when to_jsonb(u)->>'firebase_uid' is null then 'none' when to_jsonb(u)->>'firebase_uid' = e.uid
                 then 'export' else 'generated' end, ',' order by u.id))
            from public.users u left join public.fault_expected e on e.id = u.id"
    else
        table_checksums "$db"
    fi
}
# view_columns DB: the versioned views' columns in their order (the fingerprint takes them in any
# order, as a finalize rollback reorders the table they follow; within one life of the views, from
# phase1 apply to its rollback, the order must hold, or a prepared SELECT * breaks)
view_columns() {
    q "$1" "select string_agg(c.oid::regclass::text || ': ' || (select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', '
        order by attnum) from pg_attribute where attrelid = c.oid and attnum > 0), E'\\n' order by c.oid::regclass::text)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'v' and n.nspname like '%\\_before'
        or c.relkind = 'v' and n.nspname like '%\\_after'"
}
load_expected() {   # the export's uid per user, to tell generated uids from exported ones
    q "$1" "create table public.fault_expected (id text primary key, clerk text, uid text)" >/dev/null
    q "$1" "\\copy public.fault_expected from '$DATA/expected.csv' with (format csv, header)" >/dev/null
}

# cmd PLAN DB N SUB: sets CMD to the phase command of the walk (run in the background as
# "${CMD[@]}" &, so that $! is phasemig's own pid, not a subshell's)
cmd() {
    local plan=$1 db=$2 n=$3 sub=$4 file=$UUID_PLAN
    [ "$plan" = clerk ] && file=$CLERK_PLAN
    CMD=("$BIN/phase$n" "$sub" --plan "$file" --logs-dir "$LOGS/$db" -d "$db")
    if [ "$plan" = clerk ] && [ "$n" = 2 ] && [ "$sub" = apply ]; then
        CMD+=(--mapping "$DATA/firebase-export.json" --generate-missing --sleep-ms 20)
    elif [ "$n" = 2 ]; then
        CMD+=(--sleep-ms 20)
    elif [ "$n" = 3 ] && { [ "$sub" = apply ] || [ "$sub" = finalize ]; }; then
        CMD+=(--yes)   # off a terminal they need it
    fi
}
run_cmd() { cmd "$@"; "${CMD[@]}"; }

# interrupt PLAN DB N SUB FAULT POINT: start the command, interrupt it at POINT with FAULT,
# then run it again at once; that second run must succeed.
interrupt() {
    local plan=$1 db=$2 n=$3 sub=$4 fault=$5 point=$6 blocker victim rc reached=f
    local table=public.users
    local label="$plan phase$n $sub, $fault at the $point point"
    if [ "$point" = lock ]; then
        psql -X -q -d "$db" -c "begin; lock table $table in row exclusive mode; select pg_sleep(120); commit" \
            >/dev/null 2>&1 &
    else
        psql -X -q -d "$db" -c "begin isolation level repeatable read; select 1; select pg_sleep(120); commit" \
            >/dev/null 2>&1 &
    fi
    blocker=$!
    wait_for_sql "$db" "select count(*) > 0 from pg_stat_activity where datname = current_database() and query like '%pg_sleep(120)%' and state = 'active' and pid <> pg_backend_pid()" t 10
    local start_id share=3
    [ "$point" = snapshot ] && share=7
    # no migration_log before the first phase1 apply: 0 then (not a failure)
    start_id=$(psql -X -A -t -q -d "$db" -c "select coalesce(max(id), 0) from migration_log" 2>/dev/null || echo 0)
    [ -n "$start_id" ] || start_id=0
    cmd "$plan" "$db" "$n" "$sub"
    "${CMD[@]}" >"$TEST_TMP/victim.out" 2>&1 &
    victim=$!
    local end=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$end" ] && kill -0 "$victim" 2>/dev/null; do
        reached=$(psql -X -A -t -q -d "$db" -c "select (select count(*) > 0 from pg_stat_activity where application_name like 'phase$n $sub (phasemig run%' and wait_event_type = 'Lock')
            or (select coalesce(bool_or(rows_total > 0 and rows_done * 10 >= rows_total * $share), false) from migration_log where id > $start_id and status = 'running')" 2>/dev/null)
        [ "$reached" = t ] && break
        sleep 0.05
    done
    if [ "$reached" = t ] && kill -0 "$victim" 2>/dev/null; then
        case $fault in
            kill9) kill -KILL "$victim" ;;
            term) kill -TERM "$victim" ;;
            terminate) q "$db" "select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'phase$n $sub (phasemig run%'" >/dev/null ;;
        esac
        DELIVERED=$((DELIVERED + 1))
    else
        # uuid phase2 rollback has nothing to walk here: with no regenerated key the shadows
        # already hold what the triggers compute, and it waits on no lock
        if [ "$point" = lock ] && [ "$plan $n $sub" != "uuid 2 rollback" ]; then
            _t_fail "$label: the run ended before the point was reached (not interrupted)"
        else
            MISSED=$((MISSED + 1))
        fi
    fi
    wait "$victim"; rc=$?
    q "$db" "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(120)%' and pid <> pg_backend_pid()" >/dev/null
    wait "$blocker" 2>/dev/null
    if [ "$fault" = term ] && [ "$reached" = t ]; then
        [ "$rc" -ne 0 ] && ! grep -q "stopped by SIGTERM" "$TEST_TMP/victim.out" && [ "$rc" -ne 3 ] &&
            _t_fail "$label: no 'stopped by SIGTERM' line" "$(tail -5 "$TEST_TMP/victim.out")"
    fi
    # a rollback that finished before the fault reached it (recorded done) has left nothing to undo
    local completed=0
    [ "$sub" = rollback ] && completed=$(q "$db" "select count(*) from migration_log where id > $start_id
      and phase = $n and operation = 'rollback' and status = 'done'")
    # at once, no sleep: the same command again
    run run_cmd "$plan" "$db" "$n" "$sub"
    if [ "$completed" != 0 ]; then
        [ "$LAST_RC" = 2 ] && [[ $LAST_ERR == *"nothing to roll back"* ]] ||
            _t_fail "$label: the rollback completed first: the same rollback again should exit 2, nothing to roll back (exit $LAST_RC)" "$(tail -8 <<<"$LAST_ERR")"
    else
        [ "$LAST_RC" = 0 ] || [ "$n$sub" = 3check ] ||
            _t_fail "$label: the run after the interruption exited $LAST_RC" "$(tail -8 <<<"$LAST_ERR")"
    fi
}

SEQ_clerk=("1 apply" "2 apply" "3 check" "3 apply" "3 rollback" "2 rollback" "1 rollback")
SEQ_uuid=("1 apply" "2 apply" "3 check" "3 apply" "3 finalize" "3 rollback" "2 rollback" "1 rollback")

# The uninterrupted reference of each plan: the state after everything is applied.
for plan in clerk uuid; do
    fresh_app "ref_$plan"; load_expected "ref_$plan"
    must mkdir -p "$LOGS/ref_$plan"
    declare -n seq="SEQ_$plan"
    for step in "${seq[@]:0:4}"; do run_cmd "$plan" "ref_$plan" $step >/dev/null 2>&1 || _t_fail "reference $plan: phase $step failed"; done
    [ "$plan" = uuid ] && { run_cmd uuid ref_uuid 3 finalize >/dev/null 2>&1 || _t_fail "reference uuid: finalize failed"; }
    state "ref_$plan" "$plan" > "$TEST_TMP/ref_$plan.applied"
    view_columns "ref_$plan" > "$TEST_TMP/ref_$plan.views"
    grep -q "_after.users: " "$TEST_TMP/ref_$plan.views" || _t_fail "reference $plan: no versioned view of users"
done

# generated_once DB: every generated uid in the table is in exactly one import file, and the
# files list nobody else
generated_once() {
    local db=$1 ids
    ids=$(for f in "$LOGS/$db"/*-firebase-import-*.json; do
        [ -f "$f" ] || continue
        psql -X -A -t -q -d "$db" -v j="$(cat "$f")" <<<"select u->>'localId' from jsonb_array_elements((:'j'::jsonb)->'users') u"
    done | sort)
    assert_eq "" "$(uniq -d <<<"$ids")" "$db: no user in two import files"
    assert_eq "$(q "$db" "select u.firebase_uid from public.users u left join public.fault_expected e on e.id = u.id
        where u.firebase_uid is not null and u.firebase_uid is distinct from e.uid order by 1" | LC_ALL=C sort)" \
        "$(LC_ALL=C sort <<<"$ids" | sed '/^$/d')" "$db: the import files list exactly the generated users"
    [ -n "$ids" ] || _t_fail "$db: no generated user at all: the check would be vacuous"
}

for plan in clerk uuid; do
    declare -n seq="SEQ_$plan"
    for fault in "${FAULTS[@]}"; do
        test_case "$plan: every subcommand interrupted by $fault at two points, re-run at once: same end state as an uninterrupted run"
        db="f_${plan}_$fault"
        fresh_app "$db"; load_expected "$db"; must mkdir -p "$LOGS/$db"
        start=$(state "$db" "$plan")
        for step in "${seq[@]}"; do
            set -- $step
            if [ "$2" = check ]; then run run_cmd "$plan" "$db" 3 check; continue; fi
            [ "$2" = rollback ] && [ "$1" = 3 ] && { assert_eq "$(cat "$TEST_TMP/ref_$plan.applied")" "$(state "$db" "$plan")" "$db: applied state equals the uninterrupted run's"
                assert_eq "$(cat "$TEST_TMP/ref_$plan.views")" "$(view_columns "$db")" "$db: the versioned views' columns in the uninterrupted run's order"
                if [ "$plan" = clerk ]; then
                    generated_once "$db"
                    uids_before=$(q "$db" "select md5(string_agg(id || firebase_uid, ',' order by id)) from public.users where firebase_uid is not null")
                fi; }
            points=(snapshot lock)
            [ "$2" = finalize ] && points=(lock)   # finalize cannot be undone alone to be interrupted twice
            for point in "${points[@]}"; do
                interrupt "$plan" "$db" "$1" "$2" "$fault" "$point"
                # the point's second run finished the command; undo it so the next point interrupts it again
                if [ "$point" = snapshot ]; then
                    case "$1 $2" in
                        "1 apply") must run_cmd "$plan" "$db" 1 rollback ;;
                        "2 apply") must run_cmd "$plan" "$db" 2 rollback ;;
                        "3 apply") must run_cmd "$plan" "$db" 3 rollback ;;
                        "3 rollback") must run_cmd "$plan" "$db" 3 apply ;;
                        "2 rollback") must run_cmd "$plan" "$db" 2 apply ;;
                        "1 rollback") must run_cmd "$plan" "$db" 1 apply ;;
                    esac
                fi
            done
        done
        assert_eq "$start" "$(state "$db" "$plan")" "$db: after rolling back everything, schema and data as at the start"
        # apply everything again: the same end state, and the same generated uids
        for step in "${seq[@]:0:4}"; do run_cmd "$plan" "$db" $step >/dev/null 2>&1 || _t_fail "$db: apply again: phase $step failed"; done
        [ "$plan" = uuid ] && { run_cmd uuid "$db" 3 finalize >/dev/null 2>&1 || _t_fail "$db: finalize again failed"; }
        assert_eq "$(cat "$TEST_TMP/ref_$plan.applied")" "$(state "$db" "$plan")" "$db: applied again: equals the uninterrupted run"
        if [ "$plan" = clerk ]; then
            generated_once "$db"
            assert_eq "$uids_before" "$(q "$db" "select md5(string_agg(id || firebase_uid, ',' order by id)) from public.users where firebase_uid is not null")" \
                "$db: every user has the uid it had before the rollbacks"
        fi
        assert_eq 0 "$(q "$db" "select count(*) from migration_log where status = 'running'")" "$db: no migration_log row left running"
        case $fault in
            term) assert_ne 0 "$(q "$db" "select count(*) from migration_log where status = 'interrupted' and message like 'stopped by SIGTERM%'")" "$db: SIGTERM runs recorded as interrupted, with the reason" ;;
            terminate) assert_ne 0 "$(q "$db" "select count(*) from migration_log where status = 'failed' and coalesce(message, '') <> ''")" "$db: terminated runs recorded as failed, with a reason" ;;
            kill9) assert_ne 0 "$(q "$db" "select count(*) from migration_log where status = 'interrupted' and message like '%process ended without recording%'")" "$db: killed runs closed as interrupted by the next run" ;;
        esac
    done
done

echo "# fault matrix: $DELIVERED interruptions delivered; $MISSED snapshot points the command has not" >&2
test_case "the fault matrix delivered its interruptions"
[ "$DELIVERED" -ge $((40 * ${#FAULTS[@]} / 3)) ] || _t_fail "only $DELIVERED interruptions were delivered"
