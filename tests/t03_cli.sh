# t03_cli.sh -- the command line as an operator meets it: -h is --help; an option that none
# of the plan's operations reads is refused (exit 2) before anything is opened; the line that
# starts a run names its program once ("phase2: apply: plan ..."); --log-format=json writes
# JSON lines (checked by the server's json parser); the text run log's stamps have a zone.
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

test_case "a run's first line names its program once, the plan file and the database: phase2: apply: plan \"...\" (FILE), run <id>, <database>"
assert_exit 1 "phase2 apply" -- phase 2 apply --plan "$CLERK" --logs-dir "$LOGS" -d host=/nonexistent --mapping x.json
first=$(head -n 1 <<<"$LAST_ERR")
[[ $first =~ ^phase2:\ apply:\ plan\ \"clerk-to-firebase\"\ \((.*)\),\ run\ [0-9a-f-]{36},\ no\ database\ reached$ ]] && [ "${BASH_REMATCH[1]}" = "$CLERK" ] \
    || _t_fail "first line: '$first'"
assert_eq "phase2: logs: $LOGS" "$(sed -n 2p <<<"$LAST_ERR")" "then the logs directory"
assert_contains "$(sed -n 3p <<<"$LAST_ERR")" "error: could not connect to the database:" "then why"
assert_not_contains "$LAST_ERR" "phase2: phase2" "the program named twice"

test_case "--log-format=json: every line of stderr and of the run log is a JSON object with its context"
must_dirs DATA JLOGS
gen_app jlog 300 t03 "$DATA"
assert_exit 0 "phase1 apply, json" -- phase 1 apply --plan "$CLERK" --logs-dir "$JLOGS" -d jlog --log-format=json
assert_exit 0 "phase2 apply, json" -- phase 2 apply --plan "$CLERK" --logs-dir "$JLOGS" -d jlog --log-format=json \
    --mapping "$DATA/firebase-export.json" --generate-missing --batch-size 50
json_lines=$LAST_ERR
must_write "$TEST_TMP/lines.txt" printf '%s\n' "$json_lines"
must_write "$TEST_TMP/logfile.txt" cat "$JLOGS"/*.log
# the server parses each line: one that is not JSON fails the query
q jlog "create table lines (src text, n serial, line text)" >/dev/null
for f in lines logfile; do
    q jlog "\\copy lines (line) from '$TEST_TMP/$f.txt' with (format csv, quote e'\\x01', delimiter e'\\x02')" >/dev/null
    q jlog "update lines set src = '$f' where src is null" >/dev/null
done
assert_eq "0" "$(q jlog "select count(*) from lines where line not like '{%'")" "lines that are not objects"
assert_eq "0" "$(q jlog "select count(*) from lines where line::json->>'time' !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'")" \
    "times in ISO 8601 UTC"
assert_eq "0" "$(q jlog "select count(*) from lines where line::json->>'level' not in ('info','warning','error','detail','hint','progress','statement')
    or line::json->>'program' !~ '^phase[12]$' or (line::json->>'phase')::int not in (1, 2) or line::json->>'message' is null")" \
    "every line's level, program, phase and message"
assert_ne "0" "$(q jlog "select count(*) from lines where src = 'lines' and line::json->>'step' like 'backfill_from_mapping%'")" \
    "lines inside a step name it"
assert_eq "0 true" "$(q jlog "select count(*) filter (where src = 'lines') || ' ' || (count(*) filter (where src = 'logfile'
    and line::json->>'message' like 'ALTER TABLE \"public\".\"users\" ADD COLUMN%') > 0) from lines where line::json->>'level' = 'statement'")" \
    "the statements run are in the run log only"
assert_ne "0" "$(q jlog "select count(*) from lines where src = 'logfile' and line::json->>'subcommand' = 'apply'
    and line::json->>'run_id' ~ '^[0-9a-f-]{36}$'")" "the run log's lines carry the run"
assert_eq "0" "$(q jlog "select count(*) from lines where line::json->>'level' = 'progress'
    and (line::json->'figures'->>'rows_done') is null")" "progress lines carry their figures"

test_case "the text run log stamps each line with its time zone"
must_dirs TLOGS
assert_exit 2 "phase1 rollback while phase2 is applied: refused, logged" -- \
    phase 1 rollback --plan "$CLERK" --logs-dir "$TLOGS" -d jlog
first=$(head -n 1 "$TLOGS"/*.log)
[[ $first =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ [+-][0-9]{4}\ phase1:\ rollback:\ plan ]] \
    || _t_fail "first line of the run log: '$first'"
