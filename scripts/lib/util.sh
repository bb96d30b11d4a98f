# scripts/lib/util.sh -- scripts/rehearse's small helpers: messages (say, die, die_usage), clocks
# (now, seconds_since), ending a background job (stop_job) and running SQL (sql). die adds to
# REASONS (scripts/lib/report.sh) and exits: rehearse's exit trap still writes the report.

prog=${prog:-rehearse}

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { say "error: $*"; REASONS+=("$*"); exit 1; }   # on_exit still writes the report
die_usage() {
    say "error: $*"
    echo "Try \"scripts/rehearse --help\" for more information." >&2
    exit 2
}
now() { date +%s.%N; }

# stop_job PID [GRACE_SECONDS]: end a background job of ours: SIGTERM, then SIGKILL after the grace
# period (default 5 s); reaps it. (Background jobs of a non-interactive shell ignore SIGINT.)
stop_job() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    if kill -TERM "$pid" 2>/dev/null; then
        for ((i = 0; i < ${2:-5} * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# sql DSN [psql option...]: run the SQL on stdin (psql variables work: -v name=value), print the rows
sql() {
    local dsn=$1; shift
    PGAPPNAME=phasemig-rehearse psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$dsn" "$@"
}
