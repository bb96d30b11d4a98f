# scripts/lib/load.sh -- the application load of a rehearsal with --with-load: pgbench clients on the
# copy during each apply (load_start, load_stop), the figures of their logs within a phase's window
# (load_figures, load_kinds: tests source this file to check them), the hold-out (the same load
# with no phasemig run, load_holdout) and what the phases' failures have beyond it
# (load_comparison), and the removal of the rows they created (load_cleanup). load_stop leaves the
# phase's figures in LOAD_FACTS (key=value, for the run's record). Needs util.sh and rehearse's
# LOAD_DIR, ROOT, PLAN_NAME, PGBENCH, PGBENCH_ERRORS, load_clients, load_max_seconds, STAGING_DSN
# and work.

# ---------------------------------------------------------------- 5. the application load
LOAD_PID="" LOAD_ROWS_REMOVED=0 LOAD_FAILED=0 LOAD_STARTED="" LOAD_KINDS=""
declare -a LOAD_FACTS=()
# the first apply's load per phase N: WIN_SECONDS[ROUND:N] (how long pgbench ran), WIN_KINDS[ROUND:N]
# (its failures by kind, "KIND=COUNT,..."); the hold-out's per phase: HOLDOUT[N] ("SECONDS TX FAILED
# KINDS"); LOAD_ATTRIBUTABLE the failures beyond the hold-outs (load_comparison)
declare -A WIN_SECONDS=() WIN_KINDS=() HOLDOUT=()
LOAD_ATTRIBUTABLE=0

load_script() {   # load_script N: the script for phase N of the plan
    local f
    for f in "$LOAD_DIR/$PLAN_NAME-phase$1.sql" "$LOAD_DIR/$PLAN_NAME.sql"; do
        [ -r "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# load_start TAG N: pgbench clients on the copy with phase N's script, until load_stop; returns once
# they are all connected and have run for a second
load_start() {
    local tag=$1 script end=$((SECONDS + 30))
    script=$(load_script "$2")
    LOAD_SCRIPT=${script#"$ROOT/"} LOAD_STARTED=$(now)
    PGAPPNAME=phasemig-rehearse-load "$PGBENCH" -n -f "$script" -D load_clients="$load_clients" -c "$load_clients" -j $((load_clients < 2 ? 1 : 2)) \
        -T "$load_max_seconds" --log --log-prefix="$work/$tag.load" "${PGBENCH_ERRORS[@]}" "$STAGING_DSN" \
        >"$work/$tag.load.out" 2>"$work/$tag.load.err" &
    LOAD_PID=$!
    until [ "$(sql "$STAGING_DSN" <<<"SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = 'phasemig-rehearse-load'")" -ge "$load_clients" ]; do
        kill -0 "$LOAD_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ] || break
        sleep 0.2
    done
    sleep 1
}

# load_figures PREFIX T0 T1: "TRANSACTIONS FAILED LONGEST_MS AVERAGE_MS" of the pgbench run whose files
# start with PREFIX: PREFIX.PID[.THREAD] its per-transaction logs (--log), PREFIX.out its summary.
# A log line is "client transaction time script epoch_s epoch_us": time is the latency in microseconds,
# or for a transaction that failed why it failed: "failed", or with --failures-detailed (pgbench 15)
# "serialization" or "deadlock". Every word that is not a latency counts as a failure. Successes count
# when they overlap [T0, T1], failures when they end in it; and the failures are never fewer than
# pgbench's own summary says ("number of failed transactions: N"), which covers its whole run.
load_figures() {
    local prefix=$1 t0=$2 t1=$3 figures tx failed max avg summary
    figures=$(cat "$prefix".[0-9]* 2>/dev/null | awk -v t0="$t0" -v t1="$t1" '
        NF < 6 { next }
        { end = $5 + $6 / 1e6 }
        $3 ~ /^[0-9]+$/ { if (end >= t0 && end - $3 / 1e6 <= t1) { n++; sum += $3; if ($3 > max) max = $3 }; next }
        end >= t0 && end <= t1 { failed++ }
        END { printf "%d %d %.1f %.1f\n", n, failed, max / 1000, n ? sum / n / 1000 : 0 }')
    read -r tx failed max avg <<<"$figures"
    summary=$(sed -n 's/^number of failed transactions: \([0-9][0-9]*\).*/\1/p' "$prefix.out" 2>/dev/null | tail -n 1)
    [ "${summary:-0}" -le "$failed" ] || failed=$summary
    echo "$tx $failed $max $avg"
}

# load_kinds PREFIX T0 T1: the failures of the pgbench run whose files start with PREFIX, by kind,
# as "KIND=COUNT,..." sorted: a SQLSTATE when the failure says which. Failed transactions in its logs
# within [T0, T1] ("serialization" 40001, "deadlock" 40P01, "failed" of unknown kind), and every
# client it aborted (pgbench 15 aborts a client on any other error), from PREFIX.err, the SQLSTATE
# told by the server's message (pgbench prints the message, not the code).
load_kinds() {
    local prefix=$1 t0=$2 t1=$3
    {
        cat "$prefix".[0-9]* 2>/dev/null | awk -v t0="$t0" -v t1="$t1" '
            NF < 6 || $3 ~ /^[0-9]+$/ { next }
            { end = $5 + $6 / 1e6 }
            end >= t0 && end <= t1 { print ($3 == "serialization" ? "40001" : $3 == "deadlock" ? "40P01" : "failed") }'
        grep -E 'aborted in command|aborted while' "$prefix.err" 2>/dev/null | awk '
            /violates foreign key constraint/ { print "23503"; next }
            /duplicate key value|violates unique constraint/ { print "23505"; next }
            /violates not-null constraint/ { print "23502"; next }
            /violates check constraint/ { print "23514"; next }
            /deadlock detected/ { print "40P01"; next }
            /could not serialize/ { print "40001"; next }
            /lock timeout|could not obtain lock/ { print "55P03"; next }
            /statement timeout|canceling statement/ { print "57014"; next }
            /column .* does not exist/ { print "42703"; next }
            /(function|operator) .* does not exist/ { print "42883"; next }
            /relation .* does not exist/ { print "42P01"; next }
            /invalid input syntax/ { print "22P02"; next }
            /division by zero/ { print "22012"; next }
            /cached plan must not change result type/ { print "0A000"; next }
            /terminating connection|server closed the connection|connection to server/ { print "57P01"; next }
            { print "other" }'
    } | sort | uniq -c | awk '{ printf "%s%s=%d", (NR > 1 ? "," : ""), $2, $1 }'
}

# kinds_get KINDS KIND: the count of KIND in "KIND=COUNT,..." (0 when absent)
kinds_get() {
    local k
    for k in ${1//,/ }; do [ "${k%%=*}" = "$2" ] && { echo "${k#*=}"; return; }; done
    echo 0
}

# kinds_add KINDS KINDS2: the two lists summed, sorted by kind
kinds_add() {
    printf '%s\n' ${1//,/ } ${2//,/ } | awk -F= 'NF == 2 { n[$1] += $2 } END { for (k in n) print k "=" n[k] }' |
        sort | paste -sd,
}

# load_stop TAG T0 T1: stop pgbench (SIGALRM ends a -T run cleanly, its logs complete), then count
# the transactions that ran during the phase [T0, T1]: failed ones and the longest one
load_stop() {
    local tag=$1 t0=$2 t1=$3 i figures tx failed max avg aborted err early="" kinds classified extra
    kill -0 "$LOAD_PID" 2>/dev/null || early="pgbench had stopped before the phase ended (--load-max-seconds $load_max_seconds, or every client aborted)"
    kill -ALRM "$LOAD_PID" 2>/dev/null
    for ((i = 0; i < 300; i++)); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.1; done
    stop_job "$LOAD_PID"   # still running 30 s after SIGALRM: SIGTERM, then SIGKILL
    read -r tx failed max avg <<<"$(load_figures "$work/$tag.load" "$t0" "$t1")"
    aborted=$(grep -c 'aborted in command\|aborted while' "$work/$tag.load.err")
    err=$(grep -m1 -E 'got an error|aborted|error:|fatal:' "$work/$tag.load.err" | sed 's/^pgbench: //')
    [ -z "$early" ] || { err=${err:+$err; }$early; say "warning: $early"; }
    LOAD_FAILED=$((LOAD_FAILED + failed + aborted))
    # by kind; the failures pgbench's summary counts beyond its logs' window are of unknown kind
    kinds=$(load_kinds "$work/$tag.load" "$t0" "$t1")
    classified=$(awk -F= -v RS=, 'NF == 2 { n += $2 } END { print n + 0 }' <<<"$kinds")
    extra=$((failed + aborted - classified))
    [ "$extra" -le 0 ] || kinds=$(kinds_add "$kinds" "failed=$extra")
    LOAD_KINDS=$kinds LOAD_RAN_SECONDS=$(seconds_since "$LOAD_STARTED")
    say "load during the phase: $tx transactions, $((failed + aborted)) failed${kinds:+ ($kinds)}, longest ${max} ms"
    LOAD_FACTS=(load_script="$LOAD_SCRIPT" load_clients="$load_clients" load_tx="$tx"
                load_failed="$((failed + aborted))" load_aborted="$aborted" load_max_ms="$max"
                load_avg_ms="$avg" load_error="$err" load_log="$tag.load.*" load_kinds="$kinds"
                load_seconds="$LOAD_RAN_SECONDS")
    LOAD_PID=""
}

# load_window ROUND N: count the load just stopped in phase N's windows of ROUND (apply or re-apply)
load_window() {
    local key="$1:$2"
    WIN_SECONDS[$key]=$(awk -v a="${WIN_SECONDS[$key]:-0}" -v b="$LOAD_RAN_SECONDS" 'BEGIN { printf "%.3f", a + b }')
    WIN_KINDS[$key]=$(kinds_add "${WIN_KINDS[$key]:-}" "$LOAD_KINDS")
}

# load_holdout N: the hold-out of phase N: the same load (phase N's script, the same clients) on the
# copy as it is before phase N (after its rollback), with no phasemig command running, for as long
# as it ran during phase N's commands of the first apply; its figures in HOLDOUT[N]
load_holdout() {
    local n=$1 secs tag tx failed max avg kinds aborted classified
    secs=${WIN_SECONDS[apply:$n]:-}
    [ -n "$secs" ] || return 0
    tag=holdout-phase$n
    secs=$(awk -v s="$secs" 'BEGIN { t = int(s); if (t < s) t++; print t < 1 ? 1 : t }')
    say "hold-out of phase $n: the same load for $secs s with no phasemig command running ..."
    PGAPPNAME=phasemig-rehearse-load "$PGBENCH" -n -f "$(load_script "$n")" -D load_clients="$load_clients" -c "$load_clients" \
        -j $((load_clients < 2 ? 1 : 2)) -T "$secs" --log --log-prefix="$work/$tag.load" "${PGBENCH_ERRORS[@]}" \
        "$STAGING_DSN" >"$work/$tag.load.out" 2>"$work/$tag.load.err" &
    LOAD_PID=$! CURRENT="the hold-out of phase $n"
    wait "$LOAD_PID"; LOAD_PID="" CURRENT=""
    read -r tx failed max avg <<<"$(load_figures "$work/$tag.load" 0 9999999999)"
    aborted=$(grep -c 'aborted in command\|aborted while' "$work/$tag.load.err")
    kinds=$(load_kinds "$work/$tag.load" 0 9999999999)
    classified=$(awk -F= -v RS=, 'NF == 2 { n += $2 } END { print n + 0 }' <<<"$kinds")
    [ $((failed + aborted - classified)) -le 0 ] || kinds=$(kinds_add "$kinds" "failed=$((failed + aborted - classified))")
    HOLDOUT[$n]="$secs $tx $((failed + aborted)) ${kinds:--}"
    say "hold-out of phase $n: $tx transactions, $((failed + aborted)) failed${kinds:+ ($kinds)}, longest ${max} ms"
}

# load_attributable KINDS SECONDS HOLDOUT_KINDS HOLDOUT_SECONDS: the failures of KINDS (during
# SECONDS of phasemig's commands) that the hold-out does not explain: of each kind, those beyond the
# hold-out's count scaled to the same time (rounded up); every one of a kind the hold-out never had
load_attributable() {
    local kinds=$1 secs=$2 hkinds=$3 hsecs=$4 k n h allowed sum=0
    for k in ${kinds//,/ }; do
        n=${k#*=} h=$(kinds_get "$hkinds" "${k%%=*}")
        allowed=$(awk -v h="$h" -v s="$secs" -v hs="$hsecs" 'BEGIN { a = hs > 0 ? h * s / hs : h; t = int(a); if (t < a) t++; print t }')
        [ "$n" -le "$allowed" ] || sum=$((sum + n - allowed))
    done
    echo "$sum"
}

# load_comparison: a line per round and phase with load, for the report: "ROUND<tab>N<tab>SECONDS<tab>
# KINDS<tab>HOLDOUT SECONDS<tab>HOLDOUT TX<tab>HOLDOUT FAILED<tab>HOLDOUT KINDS<tab>ATTRIBUTABLE" (the
# hold-out fields empty when it did not run: every failure then counts); sets LOAD_ATTRIBUTABLE
load_comparison() {
    local key round n hsecs htx hfailed hkinds a
    LOAD_ATTRIBUTABLE=0
    for key in $(printf '%s\n' "${!WIN_SECONDS[@]}" | sort -t: -k1,1 -k2,2n); do
        round=${key%%:*} n=${key#*:} hsecs="" htx="" hfailed="" hkinds=""
        if [ -n "${HOLDOUT[$n]:-}" ]; then
            read -r hsecs htx hfailed hkinds <<<"${HOLDOUT[$n]}"
            [ "$hkinds" != - ] || hkinds=""
            a=$(load_attributable "${WIN_KINDS[$key]}" "${WIN_SECONDS[$key]}" "$hkinds" "$hsecs")
        else
            a=$(awk -F= -v RS=, 'NF == 2 { n += $2 } END { print n + 0 }' <<<"${WIN_KINDS[$key]}")
        fi
        LOAD_ATTRIBUTABLE=$((LOAD_ATTRIBUTABLE + a))
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$n" "${WIN_SECONDS[$key]}" "${WIN_KINDS[$key]}" \
            "$hsecs" "$htx" "$hfailed" "$hkinds" "$a"
    done
}

load_cleanup() {   # remove the rows the load created, so the tables can be compared exactly
    local n
    n=$(sql "$STAGING_DSN" -f "$LOAD_DIR/$PLAN_NAME-cleanup.sql" 2>>"$work/load-cleanup.err") ||
        { say "error: $PLAN_NAME-cleanup.sql failed: $(head -1 "$work/load-cleanup.err")"; return 1; }
    LOAD_ROWS_REMOVED=$((LOAD_ROWS_REMOVED + n))
    say "removed the $n rows the load created"
}
