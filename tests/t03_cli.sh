# t03_cli.sh -- the command line as an operator meets it: -h is --help; an option that none
# of the plan's operations reads is refused (exit 2) before anything is opened; the line that
# starts a run names its program once ("phase2: apply: plan ...").
source "$(dirname "$0")/lib.sh"

CLERK=$ROOT/plans/clerk-to-firebase.json
UUID=$ROOT/plans/string-to-uuid.json
must_dirs LOGS

test_case "-h prints the help, as --help does, and exits 0"
for n in 1 2 3; do
    assert_exit 0 "phase$n -h" -- phase "$n" -h
    assert_eq "$(phase "$n" --help)" "$LAST_OUT" "phase$n -h against --help"
    assert_contains "$LAST_OUT" "-h, -?, --help" "the help lists -h"
done

test_case "an option none of the plan's operations reads is refused before connecting (exit 2, not 1)"
# host=/nonexistent: a run that tried to connect would exit 1 with libpq's message
for args in "2 apply --plan $UUID --mapping x.json" "2 apply --plan $UUID --generate-missing" \
            "2 apply --plan $UUID --clerk-export c.csv" "2 apply --plan $CLERK --on-invalid=regenerate" \
            "2 apply --plan $CLERK --on-invalid=stop"; do
    # shellcheck disable=SC2086
    assert_exit 2 "phase$args" -- phase $args --logs-dir "$LOGS" -d host=/nonexistent
    assert_contains "$LAST_ERR" "does not apply to plan" "phase$args: says why"
    assert_not_contains "$LAST_ERR" "could not connect" "phase$args: refused before connecting"
done
PLAIN=$TEST_TMP/plain.json
must_write "$PLAIN" printf '%s\n' '{"name": "plain", "table": "users", "key": "id",' \
    '"operations": [{"op": "add_column", "column": "nickname", "type": "text"}]}'
assert_exit 2 "phase1 rollback --discard-generated-uids on a plan that generates nothing" -- \
    phase 1 rollback --plan "$PLAIN" --logs-dir "$LOGS" -d host=/nonexistent --discard-generated-uids
assert_contains "$LAST_ERR" 'option "--discard-generated-uids" does not apply to plan "plain"' "names the option and the plan"

test_case "options the plan's operations read still reach them (they fail on the connection, exit 1)"
for args in "2 apply --plan $CLERK --mapping x.json --generate-missing" "2 apply --plan $UUID --on-invalid=regenerate" \
            "1 rollback --plan $UUID --discard-generated-uids" "1 rollback --plan $CLERK --discard-generated-uids"; do
    # shellcheck disable=SC2086
    assert_exit 1 "phase$args" -- phase $args --logs-dir "$LOGS" -d host=/nonexistent
    assert_contains "$LAST_ERR" "could not connect" "phase$args: went on to connect"
done

test_case "a run's first line names its program once: phase2: apply: plan \"...\", run <id>"
assert_exit 1 "phase2 apply" -- phase 2 apply --plan "$CLERK" --logs-dir "$LOGS" -d host=/nonexistent --mapping x.json
first=$(head -n 1 <<<"$LAST_ERR")
[[ $first =~ ^phase2:\ apply:\ plan\ \"clerk-to-firebase\",\ run\ [0-9a-f-]{36}$ ]] \
    || _t_fail "first line: '$first'"
assert_not_contains "$LAST_ERR" "phase2: phase2" "the program named twice"
