# tests/lib.sh -- sourced by every tests/tNN_*.sh: test cases, assertions and database
# helpers (fresh databases, queries, schema fingerprints, table checksums) for the private
# cluster that tests/run starts. Results go to $TEST_RESULTS; diagnostics go to stderr.
set -u
: "${TEST_RESULTS:?run tests through tests/run}" "${TEST_TMP:?run tests through tests/run}"
_T_FILE=$(basename "$0") _T_CASE="" _T_FLAG=$TEST_TMP/.case_failed _T_ONEXIT=()

_t_record() { printf '%s\t%s: %s\n' "$1" "$_T_FILE" "$2" >>"$TEST_RESULTS"; }
_t_fail() {   # works from $(...) subshells too: the flag is a file
    printf '%s\n' "$@" | sed 's/^/#   /' >&2
    if [ -n "$_T_CASE" ]; then echo x >>"$_T_FLAG"; else echo "FAIL - (outside a test case) $1"; _t_record fail "(outside a test case) $1"; fi
    return 1
}
test_case() { [ -n "$_T_CASE" ] && end_case; _T_CASE=$1; rm -f "$_T_FLAG"; }
end_case() {
    # only the test file's own shell records a case: a subshell that inherited it never does twice
    [ -n "$_T_CASE" ] && [ "$BASHPID" = "$$" ] || return 0
    if [ -s "$_T_FLAG" ]; then echo "FAIL - $_T_CASE"; _t_record fail "$_T_CASE"
    else echo "ok - $_T_CASE"; _t_record pass "$_T_CASE"; fi
    _T_CASE="" ; rm -f "$_T_FLAG"
}
on_exit() { _T_ONEXIT+=("$*"); }   # use instead of `trap ... EXIT` (which would replace lib's)
_t_exit() {
    local rc=$? c
    for c in "${_T_ONEXIT[@]}"; do eval "$c"; done
    [ "$rc" -ne 0 ] && [ -n "$_T_CASE" ] && _t_fail "test file exited with status $rc inside this case"
    end_case
    [ "$rc" -eq 0 ] && grep -q '^fail' "$TEST_RESULTS" && rc=1
    exit "$rc"
}
trap _t_exit EXIT
trap 'exit 130' INT; trap 'exit 129' HUP; trap 'exit 143' TERM   # so _t_exit sees the signal

_t_show() { local s=$1; [ ${#s} -gt 4000 ] && s="...${s: -4000}"; printf '%s' "$s"; }
assert_eq() {
    [ "$1" == "$2" ] && return 0
    if [[ $1 == *$'\n'* || $2 == *$'\n'* ]]; then
        _t_fail "${3:-assert_eq}: values differ (- expected, + actual):" "$(diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | grep '^[<>]' | sed 's/^</-/; s/^>/+/' | head -40)"
    else _t_fail "${3:-assert_eq}: expected '$1', got '$2'"; fi
}
assert_ne() { [ "$1" != "$2" ] || _t_fail "${3:-assert_ne}: both values are '$(_t_show "$1")'"; }
assert_contains() { [[ $1 == *"$2"* ]] || _t_fail "${3:-assert_contains}: '$2' not found in:" "$(_t_show "$1")"; }
assert_not_contains() { [[ $1 != *"$2"* ]] || _t_fail "${3:-assert_not_contains}: '$2' unexpectedly found in:" "$(_t_show "$1")"; }

# run CMD...: sets LAST_OUT, LAST_ERR (trailing newlines stripped) and LAST_RC. Not in $(...).
run() {
    "$@" >"$TEST_TMP/.out" 2>"$TEST_TMP/.err"; LAST_RC=$?
    LAST_OUT=$(<"$TEST_TMP/.out") LAST_ERR=$(<"$TEST_TMP/.err")
}
# assert_exit EXPECTED_CODE MSG -- CMD...
assert_exit() {
    local want=$1 msg=$2; shift 2
    [ "${1:-}" == "--" ] && shift
    run "$@"
    [ "$LAST_RC" == "$want" ] || _t_fail "$msg: expected exit $want, got $LAST_RC from: $*" "stderr tail:" "$(tail -15 <<<"$LAST_ERR")"
}

phase() { local n=$1; shift; "$BIN/phase$n" "$@"; }

_t_psql() {   # _t_psql DB [psql args...]: query output to stdout, fails the case on error
    local db=$1 e=$TEST_TMP/.psql_err.$BASHPID; shift
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" "$@" 2>"$e"
    local rc=$?
    [ "$rc" -eq 0 ] || _t_fail "psql failed (exit $rc) on db '$db': $*" "$(cat "$e")"
    rm -f "$e"; return "$rc"
}
q()  { _t_psql "$1" -c "$2"; }   # q DB SQL
qf() { _t_psql "$1" -f "$2"; }   # qf DB FILE
new_db() {   # new_db NAME: drop (if any) and create an empty database
    printf '%s\n' 'DROP DATABASE IF EXISTS :"n" WITH (FORCE);' 'CREATE DATABASE :"n" TEMPLATE template0;' |
        _t_psql postgres -v n="$1" >/dev/null
}
# wait_for_sql DB SQL EXPECTED [TIMEOUT_S=30]: poll (errors tolerated) until SQL returns EXPECTED
wait_for_sql() {
    local end=$((SECONDS + ${4:-30})) got=""
    while :; do
        got=$(psql -X -A -t -q -d "$1" -c "$2" 2>&1) && [ "$got" == "$3" ] && return 0
        [ "$SECONDS" -ge "$end" ] && break
        sleep 0.2
    done
    _t_fail "wait_for_sql: timed out after ${4:-30}s waiting for '$3' from: $2" "last result: $got"
}

# schema_fingerprint, schema_dump, table_checksums: see scripts/lib/dbstate.sh
source "$ROOT/scripts/lib/dbstate.sh"
dbstate_psql() { _t_psql "$@"; }
dbstate_fail() { _t_fail "$@"; }
