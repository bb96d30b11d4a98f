# t13_secrets.sh -- no password in any output: a connection string libpq cannot parse is
# refused without quoting it, and a connection error masks the password (and the pieces of a
# URI's user info libpq may misparse), on stdout, stderr and in the run's log.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
LOGS=$TEST_TMP/logs
PARSE_ERROR="could not be parsed; it is not shown because it may hold a password"

# assert_no_secret SECRET...: none of them in the last run's stdout, stderr or under $LOGS
assert_no_secret() {
    local s found
    for s in "$@"; do
        assert_not_contains "$LAST_OUT" "$s" "stdout shows a secret"
        assert_not_contains "$LAST_ERR" "$s" "stderr shows a secret"
        [ -d "$LOGS" ] || _t_fail "no $LOGS to search: the check would be vacuous"
        found=$(grep -rlF -- "$s" "$LOGS" 2>/dev/null)
        [ -z "$found" ] || _t_fail "'$s' found in $found"
    done
}
# fails_without_secret CONNINFO EXPECTED... -- SECRET...: phase1 status and apply given
# CONNINFO exit 1, their stderr holds each EXPECTED, and no SECRET is shown (assert_no_secret)
fails_without_secret() {
    local conninfo=$1 sub e expected=(); shift
    while [ "$1" != -- ]; do expected+=("$1"); shift; done; shift
    for sub in status apply; do
        fresh_dir "$LOGS"
        assert_exit 1 "phase1 $sub" -- phase 1 "$sub" -d "$conninfo" --plan "$PLAN" --logs-dir "$LOGS"
        for e in "${expected[@]}"; do assert_contains "$LAST_ERR" "$e" "phase1 $sub: says why"; done
        assert_no_secret "$@"
    done
}
# refuses_unparsable CONNINFO SECRET...: status and apply exit 1, say why, show no secret
refuses_unparsable() {
    local conninfo=$1; shift
    fails_without_secret "$conninfo" "phase1: error: the connection string given with -d $PARSE_ERROR" \
        "phase1: hint: " -- "$@"
    assert_contains "$(cat "$LOGS"/*.log 2>/dev/null)" "$PARSE_ERROR" "apply's run log has the error"
}

test_case "a URI with a bad %-escape in the password is refused without quoting it"
refuses_unparsable 'postgresql://u:Pct%zzSecret@/db' 'Pct%zzSecret' 'zzSecret' 'Secret'

test_case "a URI with an unclosed [ is refused without quoting it"
refuses_unparsable 'postgresql://u:Bracket3cret@[::1' 'Bracket3cret' '[::1'

test_case "a key=value string with a blank in an unquoted password is refused without quoting it"
refuses_unparsable 'host=127.0.0.1 password=Space Secret' 'Space' 'Secret'

test_case "DATABASE_URL that cannot be parsed is refused without quoting it"
fresh_dir "$LOGS"
# DATABASE_URL is used only when no PG* variable chooses the server, the database or the user
DATABASE_URL='postgresql://u:EnvPct%zzSecret@/db' \
    assert_exit 1 "phase1 apply" -- env -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER \
    "$BIN/phase1" apply --plan "$PLAN" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" "the connection string in DATABASE_URL $PARSE_ERROR"
assert_no_secret 'EnvPct%zzSecret' 'zzSecret'

test_case "an '@' or '/' in a URI's password: no piece of it in the connection error"
# libpq reads user "u", password "pa", host "ss", database "word@localhost/db"
fails_without_secret 'postgresql://u:pa@ss/word@localhost/db' "could not connect to the database:" -- \
    'pa@ss/word' 'pa@ss' 'ss/word' 'word' '"ss"' '"pa"'

test_case "a well-formed URI with a password: the error names host and port, not the password"
fails_without_secret 'postgresql://u:Wr0ngSecret@127.0.0.1:1/x' 'connection to server at "127.0.0.1", port 1 failed' -- \
    'Wr0ngSecret'

test_case "a run that reached the server names its database, never the password: start line, status, hook event"
new_db t13_target
fresh_dir "$LOGS"
assert_exit 2 "phase1 apply (no table: bad input, after the start line)" -- phase 1 apply --plan "$PLAN" \
    --logs-dir "$LOGS" -d "host=$PGHOST port=$PGPORT dbname=t13_target user=$PGUSER password='Tg7 Secret'" \
    --hook "cat > '$LOGS/event.json'"
assert_contains "$LAST_ERR" "database \"t13_target\" on socket $PGHOST port $PGPORT as user \"$PGUSER\"" "the start line"
assert_contains "$(cat "$LOGS/event.json")" '"database":{"host":"'"$PGHOST"'","port":"'"$PGPORT"'","name":"t13_target"' \
    "the hook event"
assert_no_secret 'Tg7 Secret' 'Secret'
assert_not_contains "$(cat "$LOGS/event.json")" "Secret" "no password in the hook event"

test_case "a key=value string reaching the server: the server's reason, not the password"
fresh_dir "$LOGS"
assert_exit 1 "phase1 apply" -- phase 1 apply --plan "$PLAN" --logs-dir "$LOGS" \
    -d "host=$PGHOST port=$PGPORT dbname=t13_no_such_db password='Kv Secret/x@y'"
assert_contains "$LAST_ERR" 'database "t13_no_such_db" does not exist' "the server's reason"
assert_contains "$LAST_ERR" "$PGPORT" "the port"
assert_no_secret 'Kv Secret/x@y' 'Secret'

test_case "a connection string in a misspelt option, a stray argument or an option's value: its password masked"
# phasemig prints these usage errors before it connects; each quotes the argument, so each
# must mask a password in it as -d's connection error does
for arg in '--dbnme=postgresql://u:OptUriSecret@localhost/db' 'postgresql://u:OptUriSecret@localhost/db' \
    '--dbnme=host=localhost password=OptKvSecret' 'password=OptKvSecret' '--batch-size=password=OptKvSecret' \
    '--dbnme=dbnme=x password=OptKvSecret' 'host=x password=ab'; do
    fresh_dir "$LOGS"
    assert_exit 2 "phase2 apply $arg" -- phase 2 apply --plan "$PLAN" --logs-dir "$LOGS" "$arg"
    assert_contains "$LAST_ERR" 'Try "phase2 --help"' "a usage error: $arg"
    assert_no_secret 'OptUriSecret' 'OptKvSecret' '=ab'
done
assert_exit 2 "phase2 --dbnme=URI" -- phase 2 apply --plan "$PLAN" '--dbnme=postgresql://u:OptUriSecret@localhost/db'
assert_contains "$LAST_ERR" 'unrecognized option "--dbnme=postgresql://u:********@localhost/db"' "the option, masked"
assert_exit 2 "phase2 URI without -d" -- phase 2 apply --plan "$PLAN" 'postgresql://u:OptUriSecret@localhost/db'
assert_contains "$LAST_ERR" 'too many command-line arguments (first is "postgresql://u:********@localhost/db")' \
    "the argument, masked"
assert_exit 2 "phase2 key=value without -d" -- phase 2 apply --plan "$PLAN" 'host=x password=OptKvSecret'
assert_contains "$LAST_ERR" 'too many command-line arguments (first is "host=x password=********")' \
    "key=value, masked"
