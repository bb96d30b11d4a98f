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
        found=$(grep -rlF -- "$s" "$LOGS" 2>/dev/null)
        [ -z "$found" ] || _t_fail "'$s' found in $found"
    done
}
# refuses_unparsable CONNINFO SECRET...: status and apply exit 1, say why, show no secret
refuses_unparsable() {
    local conninfo=$1 sub; shift
    for sub in status apply; do
        rm -rf "$LOGS"; mkdir -p "$LOGS"
        assert_exit 1 "phase1 $sub" -- phase 1 "$sub" -d "$conninfo" --plan "$PLAN" --logs-dir "$LOGS"
        assert_contains "$LAST_ERR" "phase1: error: the connection string given with -d $PARSE_ERROR"
        assert_contains "$LAST_ERR" "phase1: hint: " "a hint on quoting and %-encoding"
        assert_no_secret "$@"
    done
    assert_contains "$(cat "$LOGS"/*.log 2>/dev/null)" "$PARSE_ERROR" "apply's run log has the error"
}

test_case "a URI with a bad %-escape in the password is refused without quoting it"
refuses_unparsable 'postgresql://u:Pct%zzSecret@/db' 'Pct%zzSecret' 'zzSecret' 'Secret'

test_case "a URI with an unclosed [ is refused without quoting it"
refuses_unparsable 'postgresql://u:Bracket3cret@[::1' 'Bracket3cret' '[::1'

test_case "a key=value string with a blank in an unquoted password is refused without quoting it"
refuses_unparsable 'host=127.0.0.1 password=Space Secret' 'Space' 'Secret'

test_case "DATABASE_URL that cannot be parsed is refused without quoting it"
rm -rf "$LOGS"; mkdir -p "$LOGS"
DATABASE_URL='postgresql://u:EnvPct%zzSecret@/db' \
    assert_exit 1 "phase1 apply" -- phase 1 apply --plan "$PLAN" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" "the connection string in DATABASE_URL $PARSE_ERROR"
assert_no_secret 'EnvPct%zzSecret' 'zzSecret'

test_case "an '@' or '/' in a URI's password: no piece of it in the connection error"
for sub in status apply; do
    rm -rf "$LOGS"; mkdir -p "$LOGS"
    # libpq reads user "u", password "pa", host "ss", database "word@localhost/db"
    assert_exit 1 "phase1 $sub" -- phase 1 "$sub" -d 'postgresql://u:pa@ss/word@localhost/db' \
        --plan "$PLAN" --logs-dir "$LOGS"
    assert_contains "$LAST_ERR" "could not connect to the database:" "libpq's reason is kept"
    assert_no_secret 'pa@ss/word' 'pa@ss' 'ss/word' 'word' '"ss"' '"pa"'
done

test_case "a well-formed URI with a password: the error names host and port, not the password"
for sub in status apply; do
    rm -rf "$LOGS"; mkdir -p "$LOGS"
    assert_exit 1 "phase1 $sub" -- phase 1 "$sub" -d 'postgresql://u:Wr0ngSecret@127.0.0.1:1/x' \
        --plan "$PLAN" --logs-dir "$LOGS"
    assert_contains "$LAST_ERR" 'connection to server at "127.0.0.1", port 1 failed' "host and port shown"
    assert_no_secret 'Wr0ngSecret'
done

test_case "a key=value string reaching the server: the server's reason, not the password"
rm -rf "$LOGS"; mkdir -p "$LOGS"
assert_exit 1 "phase1 apply" -- phase 1 apply --plan "$PLAN" --logs-dir "$LOGS" \
    -d "host=$PGHOST port=$PGPORT dbname=t13_no_such_db password='Kv Secret/x@y'"
assert_contains "$LAST_ERR" 'database "t13_no_such_db" does not exist' "the server's reason"
assert_contains "$LAST_ERR" "$PGPORT" "the port"
assert_no_secret 'Kv Secret/x@y' 'Secret'
