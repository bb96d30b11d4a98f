# t17_hostile_input.sh -- input and surroundings an operator does not control: a client
# encoding set to LATIN1 (by PGCLIENTENCODING, a role's or a database's setting, or the
# connection string) never changes a byte of the export's UTF-8; a database whose encoding
# cannot hold the export is refused naming the user and the field; a mapping, Clerk export or
# plan that is not a regular file or is over the size limit is refused before connecting; a
# signal stops a long read at once; a catalog question that fails is a failure (exit 1), not
# an unknown type (exit 2); a CSV the server refuses is named with its line; a byte order mark
# is accepted; a closed stdout never sends the dry run's SQL into the database socket; a
# non-owner is told whose phasemig's state is instead of to drop it.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS
# t2 ARGS...: phase2 as p2 runs it, stopped after 60 s: a run that would hang without the fix fails the case instead
t2() { timeout -k 5 60 "$BIN/phase2" "$@" --plan "$PLAN" --logs-dir "$LOGS"; }

# log_rows DB: migration_log's rows, to show that a refused run added none
log_rows() { psql -X -A -t -q -d "$1" -c "select count(*) from migration_log" 2>/dev/null || echo none; }
running_rows() { q "$1" "select count(*) from migration_log where status = 'running'"; }

gen_app enc 300 t17 "$DATA"
must p1 apply -d enc
# the export, kept in the database to compare with, byte for byte, on the server
must q enc "create table t17_export (doc jsonb)"
load_export() { _t_psql enc -v doc="$(<"$DATA/firebase-export.json")" <<<"insert into t17_export values (:'doc'::jsonb)"; }
must load_export

# names_as_exported: "mismatches|non-ASCII names stored" for the users phase2 matched
names_as_exported() {
    q enc "select count(*) filter (where u.display_name is distinct from e.v->>'displayName'),
                  count(*) filter (where u.display_name ~ '[^\x01-\x7f]')
           from public.users u join (select jsonb_array_elements(doc->'users') v from t17_export) e
             on u.firebase_uid = e.v->>'localId'"
}
# filled_exactly WAY CMD...: phase2 apply (CMD runs it) stores the export's names byte for byte; rolled back after
filled_exactly() {
    local way=$1 got; shift
    assert_exit 0 "phase2 apply with $way" -- "$@"
    q postgres "alter role postgres reset client_encoding; alter database enc reset client_encoding" >/dev/null
    got=$(names_as_exported)
    assert_eq "0" "${got%|*}" "$way: no display name differs from the export"
    [ "${got#*|}" -gt 10 ] || _t_fail "$way: only ${got#*|} non-ASCII names to compare: the check would be vacuous"
    assert_exit 0 "phase2 rollback" -- p2 rollback -d enc
    assert_eq "0" "$(q enc "select count(display_name) from public.users")" "$way: rolled back"
}
on_exit 'psql -X -q -d postgres -c "alter role postgres reset client_encoding" >/dev/null 2>&1'

# encoded_app DB ENCODING: a fresh database DB of ENCODING holding the legacy schema, users user_1
# to user_20, and phase1 applied
encoded_app() {
    must q postgres "drop database if exists $1"
    must q postgres "create database $1 encoding '$2' lc_collate 'C' lc_ctype 'C' template template0"
    must "$ROOT/scripts/gen-data" -d "$1" --users 1 --schema-only
    must q "$1" "insert into public.users (id, clerk_user_id, email, name)
        select gen_random_uuid()::text, 'user_' || i, 'u' || i || '@example.com', 'User ' || i from generate_series(1, 20) i"
    must p1 apply -d "$1"
}

test_case "PGCLIENTENCODING=LATIN1: phase2 stores the export's UTF-8 names byte for byte"
filled_exactly "PGCLIENTENCODING=LATIN1" env PGCLIENTENCODING=LATIN1 "$BIN/phase2" apply -d enc \
    --mapping "$DATA/firebase-export.json" --plan "$PLAN" --logs-dir "$LOGS"

test_case "a role's client_encoding = LATIN1: phase2 stores the export's UTF-8 names byte for byte"
must q postgres "alter role postgres set client_encoding = 'LATIN1'"
filled_exactly "ALTER ROLE ... SET client_encoding" p2 apply -d enc --mapping "$DATA/firebase-export.json"

test_case "a database's client_encoding = LATIN1: phase2 stores the export's UTF-8 names byte for byte"
must q postgres "alter database enc set client_encoding = 'LATIN1'"
filled_exactly "ALTER DATABASE ... SET client_encoding" p2 apply -d enc --mapping "$DATA/firebase-export.json"

test_case "a connection string's options='-c client_encoding=LATIN1': phase2 stores the names byte for byte"
filled_exactly "options in -d" p2 apply -d "dbname=enc options='-c client_encoding=LATIN1'" \
    --mapping "$DATA/firebase-export.json"

test_case "a LATIN1 database and a name it cannot hold: phase2 refuses (exit 3) naming the user and the field; nothing changed"
encoded_app t17_latin LATIN1
# user 7's display name is Japanese, user 3's French (LATIN1 holds that one)
must_write "$TEST_TMP/latin.json" _t_psql t17_latin -c "select '{\"users\": [' || string_agg(jsonb_build_object(
    'localId', 'uid' || lpad(i::text, 25, '0'), 'email', email, 'displayName', 'Name ' || i,
    'customAttributes', jsonb_build_object('clerk_user_id', clerk_user_id)::text)::text, E',\n' order by i) || ']}'
    from (select *, substr(clerk_user_id, 6)::int as i from public.users) u"
must sed -i -e 's/"Name 7"/"山田太郎 7"/' -e 's/"Name 3"/"Amélie 3"/' "$TEST_TMP/latin.json"
before=$(db_state t17_latin)
rows=$(log_rows t17_latin)
assert_exit 3 "phase2 apply" -- t2 apply -d t17_latin --mapping "$TEST_TMP/latin.json"
assert_contains "$LAST_ERR" 'user localId "uid0000000000000000000000007" (element 7)' "names the user"
assert_contains "$LAST_ERR" 'the field "displayName"' "names the field"
assert_contains "$LAST_ERR" "encoding LATIN1 cannot hold" "names the database's encoding"
assert_contains "$LAST_ERR" "nothing was changed" "says nothing changed"
assert_eq "$before" "$(db_state t17_latin)" "schema and rows unchanged"
assert_eq "refused" "$(q t17_latin "select status from migration_log where phase = 2 order by id desc limit 1")" "audited as refused"
assert_eq "0" "$(running_rows t17_latin)" "no row left running"
# without the Japanese name the same export goes in, the French one as LATIN1 holds it
must sed -i -e 's/"山田太郎 7"/"Name 7"/' "$TEST_TMP/latin.json"
assert_exit 0 "phase2 apply without it" -- t2 apply -d t17_latin --mapping "$TEST_TMP/latin.json"
assert_eq "Amélie 3" "$(PGCLIENTENCODING=UTF8 q t17_latin "select display_name from public.users where clerk_user_id = 'user_3'")" \
    "a LATIN1 character stored as that character"

test_case "a SQL_ASCII database: phase2 stores the export's UTF-8 bytes as they are (no conversion to refuse)"
encoded_app t17_ascii SQL_ASCII
must_write "$TEST_TMP/ascii.json" sed -e 's/"Name 7"/"山田太郎 7"/' -e 's/"Name 3"/"Amélie 3"/' "$TEST_TMP/latin.json"
assert_exit 0 "phase2 apply" -- t2 apply -d t17_ascii --mapping "$TEST_TMP/ascii.json"
assert_eq "$(printf '%s' '山田太郎 7' | od -An -tx1 | tr -d ' \n')" \
    "$(q t17_ascii "select encode(display_name::bytea, 'hex') from public.users where clerk_user_id = 'user_7'")" \
    "the Japanese name's UTF-8 bytes, unchanged"
assert_eq "$(printf '%s' 'Amélie 3' | od -An -tx1 | tr -d ' \n')" \
    "$(q t17_ascii "select encode(display_name::bytea, 'hex') from public.users where clerk_user_id = 'user_3'")" \
    "the French name's UTF-8 bytes, unchanged"
assert_eq "20" "$(q t17_ascii "select count(*) from public.users where display_name is not null")" "every user filled"

test_case "--mapping /dev/zero, a FIFO or a directory; --clerk-export or --plan a FIFO: refused at once (exit 2), nothing recorded"
mkfifo "$TEST_TMP/fifo"
rows=$(log_rows enc)
for m in /dev/zero "$TEST_TMP/fifo" "$TEST_TMP"; do
    assert_exit 2 "--mapping $m" -- t2 apply -d enc --mapping "$m"
    assert_contains "$LAST_ERR" "mapping file \"$m\" is " "names the file"
    assert_contains "$LAST_ERR" "not a regular file" "says why"
done
assert_contains "$LAST_ERR" "a directory" "says what it is"
assert_exit 2 "--clerk-export FIFO" -- t2 apply -d enc --mapping "$DATA/firebase-export.json" --generate-missing \
    --clerk-export "$TEST_TMP/fifo"
assert_contains "$LAST_ERR" "Clerk export \"$TEST_TMP/fifo\" is a FIFO (named pipe), not a regular file" "names the Clerk export"
assert_exit 2 "--plan FIFO" -- timeout -k 5 60 "$BIN/phase2" status -d enc --plan "$TEST_TMP/fifo"
assert_contains "$LAST_ERR" "plan \"$TEST_TMP/fifo\" is a FIFO (named pipe), not a regular file" "names the plan"
assert_eq "$rows" "$(log_rows enc)" "no migration_log row: refused before connecting"
assert_eq "0" "$(running_rows enc)" "no row running"

test_case "a mapping over PHASEMIG_MAX_INPUT_SIZE is refused (exit 2) naming the limit; a bad limit is refused"
rows=$(log_rows enc)
PHASEMIG_MAX_INPUT_SIZE=100K assert_exit 2 "over 100K" -- t2 apply -d enc --mapping "$DATA/firebase-export.json"
assert_contains "$LAST_ERR" "more than the limit of 102400 bytes; nothing was read" "names the limit"
assert_contains "$LAST_ERR" "PHASEMIG_MAX_INPUT_SIZE" "says how to raise it"
PHASEMIG_MAX_INPUT_SIZE=lots assert_exit 2 "a bad limit" -- t2 apply -d enc --mapping "$DATA/firebase-export.json"
assert_contains "$LAST_ERR" 'PHASEMIG_MAX_INPUT_SIZE must be a size in bytes' "says what it must be"
assert_eq "$rows" "$(log_rows enc)" "no migration_log row: refused before connecting"
PHASEMIG_MAX_INPUT_SIZE=1G assert_exit 0 "under 1G" -- t2 apply -d enc --mapping "$DATA/firebase-export.json"
must p2 rollback -d enc

test_case "SIGTERM while phase2 reads a large export: it stops at once (exit 1), recorded interrupted, no row running"
# 100 copies of 10,000 users (260 MB): reading all of it takes many seconds
python3 - "$TEST_TMP/chunk" <<'PY' || setup_failed "python3 could not write the chunk"
import sys
u = ('{"localId":"uid%09d","email":"user%d@example.com","emailVerified":true,"displayName":"Am\\u00e9lie %d",'
     '"phoneNumber":"+15550000000","lastSignedInAt":"1700000000000","createdAt":"1600000000000",'
     '"customAttributes":"{\\"clerk_user_id\\":\\"user_%d\\"}"}')
open(sys.argv[1], 'w').write(',\n'.join(u % (i, i, i, i) for i in range(10000)))
PY
{ printf '{"users": [\n'; cat "$TEST_TMP/chunk"; for i in $(seq 99); do printf ',\n'; cat "$TEST_TMP/chunk"; done; printf ']}\n'; } >"$TEST_TMP/big.json"
"$BIN/phase2" apply -d enc --mapping "$TEST_TMP/big.json" --plan "$PLAN" --logs-dir "$LOGS" >"$TEST_TMP/big.out" 2>&1 &
pid=$!
wait_for_sql enc "select count(*) > 0 from migration_log where phase = 2 and status = 'running'" t
sleep 0.5
kill -TERM "$pid"
start=$SECONDS
wait "$pid"; rc=$?
took=$((SECONDS - start))
assert_eq 1 "$rc" "exit 1"
[ "$took" -le 5 ] || _t_fail "took $took s to stop after SIGTERM: the read went on"
assert_contains "$(<"$TEST_TMP/big.out")" "stopped by SIGTERM" "says it was stopped"
assert_eq "0" "$(running_rows enc)" "no row left running"
assert_eq "interrupted" "$(q enc "select status from migration_log where phase = 2 order by id desc limit 1")" "recorded as interrupted"
rm -f "$TEST_TMP/big.json" "$TEST_TMP/chunk"

test_case "a catalog question that fails (permission denied for to_regtype) is a failure (exit 1, the server's message), not an unknown type (exit 2)"
# Binding the plan asks to_regtype() about each add_column's type.  A query that fails
# (here, deterministically: EXECUTE on to_regtype revoked in this database; in the field, a
# server restart) must be told from the answer "no such type".
gen_app bind 20 t17 "$TEST_TMP/bind"
q postgres "drop role if exists t17_reader; create role t17_reader login" >/dev/null
must q bind "revoke execute on function pg_catalog.to_regtype(text) from public"
before=$(db_state bind)
assert_exit 1 "phase1 status as a role that may not call to_regtype" -- p1 status -d "dbname=bind user=t17_reader"
assert_contains "$LAST_ERR" "permission denied for function to_regtype" "the server's message"
assert_not_contains "$LAST_ERR" "is not a type known to the database" "not read as an unknown type"
assert_exit 1 "phase1 apply likewise" -- p1 apply -d "dbname=bind user=t17_reader"
assert_not_contains "$LAST_ERR" "is not a type known to the database" "apply: not read as an unknown type"
assert_eq "$before" "$(db_state bind)" "nothing changed"
# a real answer stays bad input
edit_file "$PLAN" "$TEST_TMP/badtype.json" 's/"type": "varchar(255)"/"type": "no_such_type"/'
assert_exit 2 "an unknown type is bad input" -- phase 1 status -d bind --plan "$TEST_TMP/badtype.json"
assert_contains "$LAST_ERR" '"no_such_type" is not a type known to the database' "names the type"

test_case "a mapping CSV with a NUL byte, a short row or an unterminated quote: exit 2 naming the file and the line"
must p2 rollback -d enc
before=$(db_state enc)
printf 'clerk_user_id,firebase_uid\nuser_a,uid_a\nuser_b,uid_b\nuser_c\n' >"$TEST_TMP/short.csv"
assert_exit 2 "a short row" -- t2 apply -d enc --mapping "$TEST_TMP/short.csv"
assert_contains "$LAST_ERR" "mapping file \"$TEST_TMP/short.csv\", line 4: missing data for column \"firebase_uid\"" "file and line"
printf 'clerk_user_id,firebase_uid\nuser_a,uid_a\nuser_b,ui\0d_b\n' >"$TEST_TMP/nul.csv"
assert_exit 2 "a NUL byte" -- t2 apply -d enc --mapping "$TEST_TMP/nul.csv"
assert_contains "$LAST_ERR" "mapping file \"$TEST_TMP/nul.csv\", line 3: invalid byte sequence" "file and line"
printf 'clerk_user_id,firebase_uid\nuser_a,uid_a\nuser_b,"uid_b\nuser_c,uid_c\n' >"$TEST_TMP/quote.csv"
assert_exit 2 "an unterminated quote" -- t2 apply -d enc --mapping "$TEST_TMP/quote.csv"
assert_contains "$LAST_ERR" "mapping file \"$TEST_TMP/quote.csv\", line " "file and line"
assert_contains "$LAST_ERR" "unterminated CSV quoted field" "the reason"
printf '%s\n' 'id,first_name,last_name,username,primary_email_address,primary_phone_number,verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,totp_secret,password_digest,password_hasher' \
    'user_a,A,B,,a@example.com,,,,,,,,' 'user_b,A' >"$TEST_TMP/clerk.csv"
assert_exit 2 "a short Clerk row" -- t2 apply -d enc --mapping "$DATA/firebase-export.json" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.csv"
assert_contains "$LAST_ERR" "Clerk export \"$TEST_TMP/clerk.csv\", line 3: missing data for column" "file and line"
assert_eq "$before" "$(db_state enc)" "nothing changed"
assert_eq "0" "$(running_rows enc)" "no row running"

test_case "an export (and a CSV) starting with a UTF-8 byte order mark is read as without it"
{ printf '\xef\xbb\xbf'; cat "$DATA/firebase-export.json"; } >"$TEST_TMP/bom.json"
assert_exit 0 "phase2 apply, export with a BOM" -- t2 apply -d enc --mapping "$TEST_TMP/bom.json"
got=$(names_as_exported)
assert_eq "0" "${got%|*}" "filled as from the file without the BOM"
assert_ne "0" "$(q enc "select count(firebase_uid) from public.users")" "rows filled"
must p2 rollback -d enc
{ printf '\xef\xbb\xbf'; cat "$DATA/mapping.csv"; } >"$TEST_TMP/bom.csv"
assert_exit 0 "phase2 apply, CSV with a BOM" -- t2 apply -d enc --mapping "$TEST_TMP/bom.csv"
assert_ne "0" "$(q enc "select count(firebase_uid) from public.users")" "rows filled"
must p2 rollback -d enc

test_case "phase1 apply --dry-run with stdout closed: no SQL reaches the database socket, nothing changed"
gen_app closed 20 t17 "$TEST_TMP/closed"
before=$(db_state closed)
bad_before=$(grep -c 'invalid frontend message' "$PGHOST/server.log")
"$BIN/phase1" apply --dry-run -d closed --plan "$PLAN" --logs-dir "$LOGS" >&- 2>"$TEST_TMP/closed.err"
rc=$?
assert_eq 0 "$rc" "the dry run succeeds (its output goes nowhere)"
assert_not_contains "$(<"$TEST_TMP/closed.err")" "server closed the connection" "the connection stays whole"
assert_eq "$bad_before" "$(grep -c 'invalid frontend message' "$PGHOST/server.log")" "no 'invalid frontend message' in the server log"
assert_eq "$before" "$(db_state closed)" "nothing changed"

test_case "a role that does not own the table runs status, throttle or apply: told whose the state is and to run as it, not to drop it"
gen_app owned 20 t17 "$TEST_TMP/owned"
q postgres "drop role if exists t17_owner; drop role if exists t17_other; create role t17_owner login; create role t17_other login" >/dev/null
must q owned "grant create on database owned to t17_owner; grant create on schema public to t17_owner;
    alter table public.users owner to t17_owner; alter table public.journal_entries owner to t17_owner;
    alter table public.tags owner to t17_owner; alter table public.reminders owner to t17_owner"
must p1 apply -d "dbname=owned user=t17_owner"
before=$(db_state owned)
for sub in status throttle apply; do
    assert_exit 3 "phase2 $sub as another role" -- p2 "$sub" -d "dbname=owned user=t17_other"
    assert_contains "$LAST_ERR" "phasemig's state (migration_log, schema migration_backup) belongs to role \"t17_owner\", the owner of the plan's table" "$sub: says whose"
    assert_contains "$LAST_ERR" "run phasemig as \"t17_owner\"" "$sub: says to run as it"
    assert_not_contains "$LAST_ERR" "drop them" "$sub: does not say to drop it"
done
assert_eq "$before" "$(db_state owned)" "nothing changed"
