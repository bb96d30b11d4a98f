# tests/lib.sh -- sourced by every tests/tNN_*.sh: test cases, assertions, checked setup
# steps (must: a step that fails stops the file, recorded as failed) and database helpers
# (fresh databases, generated application data, queries, schema fingerprints, table
# checksums) for the private cluster that tests/run starts. Results go to $TEST_RESULTS;
# diagnostics go to stderr.
set -u
: "${TEST_RESULTS:?run tests through tests/run}" "${TEST_TMP:?run tests through tests/run}"
_T_FILE=$(basename "$0") _T_CASE="" _T_FLAG=$TEST_TMP/.case_failed _T_ONEXIT=() _T_STOPPED=""

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
    [ "$rc" -ne 0 ] && [ -n "$_T_CASE" ] && [ -z "$_T_STOPPED" ] && _t_fail "test file exited with status $rc inside this case"
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

# phase N ARGS...: bin/phaseN; phase3 apply and finalize get --yes, which they need off a
# terminal (t08 and t09 run $BIN/phase3 themselves to test the question and its refusal)
phase() {
    local n=$1; shift
    if [ "$n" = 3 ] && { [ "${1:-}" = apply ] || [ "${1:-}" = finalize ]; }; then set -- "$@" --yes; fi
    "$BIN/phase$n" "$@"
}
# p1, p2, p3 ARGS...: that phase with the test file's $PLAN and $LOGS
p1() { phase 1 "$@" --plan "$PLAN" --logs-dir "$LOGS"; }
p2() { phase 2 "$@" --plan "$PLAN" --logs-dir "$LOGS"; }
p3() { phase 3 "$@" --plan "$PLAN" --logs-dir "$LOGS"; }

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

# must CMD...: a setup step the assertions after it rely on (a phase run that prepares a
# scenario, a data generation, a file written or edited). On failure the test file stops
# here, recorded as failed: the command, its exit status and the tail of its output are
# printed, the current case fails (or, outside a case, the file), and the cases after it
# do not run. The output of a step that succeeds is dropped. Not inside $(...): there it
# would stop only the subshell (the case still fails).
must() {
    local out=$TEST_TMP/.must.$BASHPID rc tail
    "$@" >"$out" 2>&1; rc=$?
    tail=$(tail -15 "$out"); rm -f "$out"
    [ "$rc" -eq 0 ] || setup_failed "$* (exit $rc)" "its output (tail):" "$tail"
}
# must_write FILE CMD...: a setup step that writes FILE: CMD's standard output goes to FILE
# (`must CMD > FILE` would write nothing there: must keeps CMD's output aside)
must_write() {
    local file=$1 err=$TEST_TMP/.must_write.$BASHPID rc; shift
    "$@" >"$file" 2>"$err"; rc=$?
    [ "$rc" -eq 0 ] || setup_failed "$* > $file (exit $rc)" "its stderr (tail):" "$(tail -15 "$err")"
    rm -f "$err"
}
# setup_failed WHAT [DETAIL...]: stop the test file at a setup step that did not do its job
setup_failed() {
    _t_fail "setup step failed: $1" "${@:2}"
    echo "# $_T_FILE: stopped at a failed setup step; the cases after it did not run" >&2
    _T_STOPPED=1; exit 1
}
# must_dirs VAR...: for each VAR, sets $VAR to $TEST_TMP/<var in lower case> and creates it
# (DATA: $TEST_TMP/data, LOGS: $TEST_TMP/logs)
must_dirs() {
    local v
    for v in "$@"; do printf -v "$v" '%s' "$TEST_TMP/${v,,}"; must mkdir -p "${!v}"; done
}
# fresh_dir DIR: DIR emptied (made if missing), so what a run writes there can be counted
fresh_dir() { must rm -rf "$1"; must mkdir -p "$1"; }
# edit_file IN OUT SED_EXPR...: OUT is IN with the sed expressions applied in turn; each must
# change something, so that an edit no longer matching its file (a plan reworded) stops the
# test instead of leaving it to test the unedited file
edit_file() {
    local in=$1 out=$2 e tmp=$TEST_TMP/.edit.$BASHPID; shift 2
    must cp "$in" "$tmp"
    for e in "$@"; do
        must_write "$tmp.next" sed -e "$e" -- "$tmp"
        cmp -s "$tmp" "$tmp.next" && setup_failed "edit_file: sed '$e' changed nothing in $in"
        must mv "$tmp.next" "$tmp"
    done
    must mv "$tmp" "$out"
}

# gen_app DB USERS SEED OUT [gen-data options...]: a fresh database DB holding the legacy
# application's schema and USERS generated users, the same for the same SEED, with their
# Firebase and Clerk exports, mapping.csv and expected.csv written under OUT (scripts/gen-data)
gen_app() {
    local db=$1 users=$2 seed=$3 out=$4; shift 4
    must new_db "$db"
    must "$ROOT/scripts/gen-data" -d "$db" --users "$users" --out "$out" --seed "$seed" "$@"
}
# db_state DB: what a rollback must give back: the schema fingerprint and every table's checksum
db_state() { echo "$(schema_fingerprint "$1")"; echo "$(table_checksums "$1")"; }
# col_type DB TABLE COLUMN: the column's type as format_type() shows it (empty: no such column)
col_type() { q "$1" "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$2'::regclass and attname = '$3' and not attisdropped"; }

# schema_fingerprint, schema_dump, table_checksums: see scripts/lib/dbstate.sh
source "$ROOT/scripts/lib/dbstate.sh"
dbstate_psql() { _t_psql "$@"; }
dbstate_fail() { _t_fail "$@"; }
