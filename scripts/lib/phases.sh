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
    local label="phase$n $sub" tag t0 t1 secs rc record
    tag=$(printf '%02d-phase%s-%s' $((${#RUN_JSON[@]} + 1)) "$n" "$sub")
    [ "$with_load" = 1 ] && [ "$sub" != check ] && [ "$sub" != rollback ] && load_start "$tag" "$n"
    say "$label ($round) ..."
    CURRENT="$label ($round)"
    t0=$(now)
    # the connection string (maybe with a password) in the environment, not on a command line ps shows
    # no question reaches the operator's terminal (the rehearsal answers for its copy: --yes to
    # phase3 apply and finalize), nor is an answer read from it: standard input is /dev/null; a
    # rollback runs without a controlling terminal (setsid: same pid, as this shell has no job
    # control), so one that would discard values the application wrote refuses (exit 3) rather
    # than ask: the load's own rows are removed before, so a refusal is a finding
    local detach=()
    [ "$sub" = rollback ] && detach=(setsid)
    DATABASE_URL=$STAGING_DSN "${detach[@]}" "$BIN/phase$n" "$sub" --plan "$plan_file" --logs-dir "$work" "$@" \
        </dev/null >"$work/$tag.out" 2>&1 &
    PHASE_PID=$!
    wait "$PHASE_PID"; rc=$? t1=$(now) PHASE_PID="" CURRENT=""
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    LOAD_FACTS=()
    [ -n "$LOAD_PID" ] && load_stop "$tag" "$t0" "$t1"
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
    id=$(head -n 5 "$work/$tag.out" | sed -n -E "s/^phase$n: [a-z]+: plan \".*\", run ([0-9a-f-]{36})\$/\1/p" | head -n 1)
    if [ -n "$id" ]; then
        DATABASE_URL=$STAGING_DSN "$BIN/phase$n" status --plan "$plan_file" --run "$id" --json \
            >"$work/$tag.mlog.json" 2>"$work/$tag.mlog.err" || { sed 's/^/    /' "$work/$tag.mlog.err" >&2; return 1; }
        rm -f "$work/$tag.mlog.err"
    fi
    printf '%s\0' round="$1" command="$2" exit_code="$3" seconds="$4" output="$tag.out" warnings="$warnings" \
        "${LOAD_FACTS[@]}" >"$work/$tag.facts"
    "$REPORT" run "$work/$tag.facts" ${id:+"$work/$tag.mlog.json"}
}

# apply_round ROUND: phase1 apply, phase2 apply, phase3 check, phase3 apply (and finalize); stops at
# the first that fails. Sets APPLIED_UPTO (the last phase whose apply ran) and REFUSED (the command
# that refused: exit 3, phase2 on its mapping or keys, phase3 check on its pre-flight checks)
apply_round() {
    local round=$1
    APPLIED_UPTO=0 REFUSED=""
    APPLIED_UPTO=1; run_phase "$round" 1 apply || return 1
    APPLIED_UPTO=2; run_phase "$round" 2 apply ${mapping:+--mapping "$mapping"} "${PHASE2_EXTRA[@]}" ||
        { [ $? -ne 3 ] || REFUSED="phase2 apply"; return 1; }
    run_phase "$round" 3 check || { [ $? -ne 3 ] || REFUSED="phase3 check"; return 1; }
    APPLIED_UPTO=3; run_phase "$round" 3 apply --yes || return 1
    [ "$CONVERTS_TO_UUID" = false ] || run_phase "$round" 3 finalize --yes
}

# rollback_round: phase3, phase2, phase1 rollback of what apply_round ran; stops at the first failure
rollback_round() {
    local n
    for ((n = APPLIED_UPTO; n >= 1; n--)); do run_phase rollback "$n" rollback || return 1; done
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
