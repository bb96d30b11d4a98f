# scripts/lib/phases.sh -- the phases on the copy: run_phase runs one command of bin/phaseN, timed
# (under the load during an apply with --with-load), and keeps its record, built by
# bin/rehearse-report from what was measured here and its steps from migration_log ("phaseN status
# --run RUN_ID --json"); apply_round and rollback_round run them in order; run_before_rollback runs
# the operator's hook. Needs util.sh, load.sh, report.sh and rehearse's BIN, REPORT, STAGING_DSN,
# plan_file, mapping, PHASE2_EXTRA, CONVERTS_TO_UUID, with_load and work.

# ---------------------------------------------------------------- 3. phases
declare -a RUN_JSON=()

# run_phase ROUND N SUBCOMMAND [ARG...]: run bin/phaseN on the copy (under the load during an
# apply with --with-load), time it, keep its record in RUN_JSON; returns its exit code
run_phase() {
    local round=$1 n=$2 sub=$3; shift 3
    local label="phase$n $sub" tag t0 t1 secs rc record mark0 lsn0 bytes0 wal bytes1
    tag=$(printf '%02d-phase%s-%s' $((${#RUN_JSON[@]} + 1)) "$n" "$sub")
    [ "$with_load" = 1 ] && [ "$sub" != check ] && [ "$sub" != rollback ] && load_start "$tag" "$n"
    say "$label ($round) ..."
    CURRENT="$label ($round)"
    mark0=$(storage_mark) && read -r lsn0 bytes0 <<<"$mark0"
    t0=$(now)
    # -d: the copy, whatever PG* variables the operator's environment has (they come before
    # DATABASE_URL); the string names the hidden service file's entry (connections.sh), as psql's
    # -d does here, so ps shows no password
    # no question reaches the operator's terminal (the rehearsal answers for its copy: --yes to
    # phase3 apply and finalize), nor is an answer read from it: standard input is /dev/null; a
    # rollback runs without a controlling terminal (setsid: same pid, as this shell has no job
    # control), so one that would discard values the application wrote refuses (exit 3) rather
    # than ask: the load's own rows are removed before, so a refusal is a finding
    local detach=()
    [ "$sub" = rollback ] && detach=(setsid)
    "${detach[@]}" "$BIN/phase$n" "$sub" -d "$STAGING_DSN" --plan "$plan_file" --logs-dir "$work" "$@" \
        </dev/null >"$work/$tag.out" 2>&1 &
    PHASE_PID=$!
    wait "$PHASE_PID"; rc=$? t1=$(now) PHASE_PID="" CURRENT=""
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    # the WAL the server wrote during the command (the load's and any other database's included) and
    # the size of the plan's tables (pg_total_relation_size: indexes and TOAST included) before and after
    wal="" bytes1=""
    [ -z "${lsn0:-}" ] || read -r wal bytes1 <<<"$(storage_since "$lsn0")"
    LOAD_FACTS=()
    if [ -n "$LOAD_PID" ]; then
        load_stop "$tag" "$t0" "$t1"
        [ "$round" = rollback ] || load_window "$round" "$n"
    fi
    say "$label ($round): exit $rc in $secs s"
    [ "$rc" -eq 0 ] || tail -n 12 "$work/$tag.out" | sed 's/^/    /' >&2
    record=$(run_record "$round" "$label" "$rc" "$secs" "$n" "$tag") || die "could not read migration_log of $staging_db"
    RUN_JSON+=("$record")
    return "$rc"
}

# run_record ROUND LABEL RC SECONDS N TAG: the run as JSON (bin/rehearse-report run): what was
# measured here (TAG.facts) and its steps from migration_log (TAG.mlog.json), found by the run id
# bin/phaseN prints first; no steps when it stopped before it had one
run_record() {
    local n=$5 tag=$6 id warnings
    # what the phase warned about (lock retries, autovacuum in the way), each line cut at 400 characters
    warnings=$(grep -E '^phase[0-9]: (warning: |an autovacuum worker)' "$work/$tag.out" 2>/dev/null | cut -c1-400 | head -n 20)
    id=$(head -n 5 "$work/$tag.out" | sed -n -E "s/^phase$n: [a-z]+: plan \".*, run ([0-9a-f-]{36}), .*/\1/p" | head -n 1)
    if [ -n "$id" ]; then
        "$BIN/phase$n" status -d "$STAGING_DSN" --plan "$plan_file" --run "$id" --json \
            >"$work/$tag.mlog.json" 2>"$work/$tag.mlog.err" || { sed 's/^/    /' "$work/$tag.mlog.err" >&2; return 1; }
        rm -f "$work/$tag.mlog.err"
    fi
    printf '%s\0' round="$1" command="$2" exit_code="$3" seconds="$4" output="$tag.out" warnings="$warnings" \
        wal_bytes="$wal" table_bytes_before="${bytes0:-}" table_bytes_after="$bytes1" "${LOAD_FACTS[@]}" >"$work/$tag.facts"
    "$REPORT" run "$work/$tag.facts" ${id:+"$work/$tag.mlog.json"}
}

# apply_round ROUND: phase1 apply, phase2 apply, phase3 check, phase3 apply (and finalize); stops at
# the first that fails. Sets APPLIED_UPTO (the last phase whose apply ran) and REFUSED (the command
# that refused: exit 3, phase2 on its mapping or keys, phase3 check on its pre-flight checks)
apply_round() {
    local round=$1
    APPLIED_UPTO=0 REFUSED=""
    APPLIED_UPTO=1; run_phase "$round" 1 apply || { unapplied $?; return 1; }
    APPLIED_UPTO=2; run_phase "$round" 2 apply ${mapping:+--mapping "$mapping"} "${PHASE2_EXTRA[@]}" ||
        { unapplied $? && REFUSED="phase2 apply"; return 1; }
    run_phase "$round" 3 check || { [ $? -ne 3 ] || REFUSED="phase3 check"; return 1; }
    APPLIED_UPTO=3; run_phase "$round" 3 apply --yes || { unapplied $?; return 1; }
    [ "$CONVERTS_TO_UUID" = false ] || run_phase "$round" 3 finalize --yes
}

# unapplied RC: after an apply that exited RC: an exit 2 or 3 changed nothing, so its phase has
# nothing to roll back (its rollback would exit 2): APPLIED_UPTO goes back one; true when RC is 3
unapplied() {
    [ "$1" = 2 ] || [ "$1" = 3 ] && APPLIED_UPTO=$((APPLIED_UPTO - 1))
    [ "$1" = 3 ]
}

# rollback_round: phase3, phase2, phase1 rollback of what apply_round ran; stops at the first failure.
# With --with-load, after each rollback (the copy as it was before that phase), the phase's hold-out:
# its load with no phasemig command running, then the rows it created removed
rollback_round() {
    local n
    for ((n = APPLIED_UPTO; n >= 1; n--)); do
        run_phase rollback "$n" rollback || return 1
        [ "$with_load" = 0 ] || { load_holdout "$n"; load_cleanup || return 1; }
    done
}

# storage_mark: "LSN BYTES": the server's WAL position now and the size of the plan's tables (EST_SRC)
storage_mark() {
    sql "$STAGING_DSN" -v tables="$(cut -f1 <<<"$EST_SRC")" 2>/dev/null <<<"SELECT pg_current_wal_lsn() || ' ' ||
        coalesce(sum(pg_total_relation_size(to_regclass(t))), 0) FROM unnest(string_to_array(:'tables', E'\n')) t"
}
# storage_since LSN: "WAL_BYTES BYTES": the WAL written since LSN and the size of the plan's tables now
storage_since() {
    sql "$STAGING_DSN" -v lsn="$1" -v tables="$(cut -f1 <<<"$EST_SRC")" 2>/dev/null <<<"SELECT
        pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn')::bigint || ' ' ||
        coalesce(sum(pg_total_relation_size(to_regclass(t))), 0) FROM unnest(string_to_array(:'tables', E'\n')) t"
}

# ---------------------------------------------------------------- the operator's hook
HOOK_RC="" HOOK_PID=""
run_before_rollback() {
    local host port user
    [ -n "$before_rollback" ] || return 0
    read -r host port user < <(sql "$STAGING_DSN" <<<'\echo :HOST :PORT :USER')
    say "--before-rollback: $before_rollback"
    # in the background, so that a signal to the rehearsal is handled at once (on_exit stops it)
    PGDATABASE=$staging_db PGHOST=$host PGPORT=$port PGUSER=$user REHEARSAL_DSN=$STAGING_DSN \
        bash -c "$before_rollback" </dev/null >"$work/before-rollback.out" 2>&1 &
    HOOK_PID=$! CURRENT="--before-rollback"
    wait "$HOOK_PID"; HOOK_RC=$? HOOK_PID="" CURRENT=""
    say "--before-rollback: exit $HOOK_RC (output in $work/before-rollback.out)"
}
