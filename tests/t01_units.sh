# t01_units.sh -- the C unit tests of tests/unit/*.c (functions that need no database):
# each of their cases becomes a case here; a missing binary, a crash or fewer cases than
# they have fail.
source "$(dirname "$0")/lib.sh"

exe=$ROOT/build/unit-tests
[ "$(cat "$ROOT/build/mode" 2>/dev/null)" = sanitize ] && exe=$ROOT/build/san/unit-tests
# one begin( call per case, its name perhaps on the next line, in any of tests/unit/*.c
expected=$(cat "$ROOT"/tests/unit/*.c | grep -c '^	begin(')

test_case "the unit tests are built and every case ran"
out=""; rc=0
if [ -x "$exe" ]; then out=$("$exe" 2>&1) || rc=$?; else _t_fail "$exe is missing: make check builds it"; fi
ran=$(grep -cE '^(ok|FAIL)	' <<<"$out" || true)
assert_eq "$expected" "$ran" "cases reported ($out)"
failed=$(grep -c '^FAIL	' <<<"$out" || true)
if ! { [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]; } && ! { [ "$rc" -eq 1 ] && [ "$failed" -gt 0 ]; }; then
    _t_fail "exit status $rc does not match $failed failed cases (a crash?): $(tail -3 <<<"$out")"
fi

while IFS=$'\t' read -r status name why; do
    case $status in ok|FAIL) ;; *) continue ;; esac
    test_case "unit: $name"
    [ "$status" = ok ] || _t_fail "$why"
done <<<"$out"
