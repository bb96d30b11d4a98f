# scripts/lib/load.sh -- the application load of a rehearsal with --with-load: pgbench clients on the
# copy during each apply (load_start, load_stop), the figures of their logs within a phase's window
# (load_figures: tests source this file to check it), and the removal of the rows they created
# (load_cleanup). load_stop leaves the phase's figures in LOAD_FACTS (key=value, for the run's
# record). Needs util.sh and rehearse's LOAD_DIR, ROOT, PLAN_NAME, PGBENCH, PGBENCH_ERRORS,
# load_clients, load_max_seconds, STAGING_DSN and work.

# ---------------------------------------------------------------- 5. the application load
LOAD_PID="" LOAD_ROWS_REMOVED=0 LOAD_FAILED=0
declare -a LOAD_FACTS=()

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
    LOAD_SCRIPT=${script#"$ROOT/"}
    PGAPPNAME=phasemig-rehearse-load "$PGBENCH" -n -f "$script" -c "$load_clients" -j $((load_clients < 2 ? 1 : 2)) \
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

# load_stop TAG T0 T1: stop pgbench (SIGALRM ends a -T run cleanly, its logs complete), then count
# the transactions that ran during the phase [T0, T1]: failed ones and the longest one
load_stop() {
    local tag=$1 t0=$2 t1=$3 i figures tx failed max avg aborted err early=""
    kill -0 "$LOAD_PID" 2>/dev/null || early="pgbench had stopped before the phase ended (--load-max-seconds $load_max_seconds, or every client aborted)"
    kill -ALRM "$LOAD_PID" 2>/dev/null
    for ((i = 0; i < 300; i++)); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.1; done
    stop_job "$LOAD_PID"   # still running 30 s after SIGALRM: SIGTERM, then SIGKILL
    read -r tx failed max avg <<<"$(load_figures "$work/$tag.load" "$t0" "$t1")"
    aborted=$(grep -c 'aborted in command\|aborted while' "$work/$tag.load.err")
    err=$(grep -m1 -E 'got an error|aborted|error:|fatal:' "$work/$tag.load.err" | sed 's/^pgbench: //')
    [ -z "$early" ] || { err=${err:+$err; }$early; say "warning: $early"; }
    LOAD_FAILED=$((LOAD_FAILED + failed + aborted))
    say "load during the phase: $tx transactions, $((failed + aborted)) failed, longest ${max} ms"
    LOAD_FACTS=(load_script="$LOAD_SCRIPT" load_clients="$load_clients" load_tx="$tx"
                load_failed="$((failed + aborted))" load_aborted="$aborted" load_max_ms="$max"
                load_avg_ms="$avg" load_error="$err" load_log="$tag.load.*")
    LOAD_PID=""
}

load_cleanup() {   # remove the rows the load created, so the tables can be compared exactly
    local n
    n=$(sql "$STAGING_DSN" -f "$LOAD_DIR/$PLAN_NAME-cleanup.sql" 2>>"$work/load-cleanup.err") ||
        { say "error: $PLAN_NAME-cleanup.sql failed: $(head -1 "$work/load-cleanup.err")"; return 1; }
    LOAD_ROWS_REMOVED=$((LOAD_ROWS_REMOVED + n))
    say "removed the $n rows the load created"
}
