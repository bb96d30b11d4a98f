# t14_mapping_values.sh -- phase2 of the Clerk job checks every export value against its
# target column before any write: a value too long for its varchar, a timestamp out of range
# or a field of the wrong JSON type is refused (exit 3) naming the user and the field, with
# the stored mapping and the table unchanged; an oversized element is bad input (exit 2).
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS

# schema, data, and the stored mapping ("none" before phase1)
state() {
    db_state "$1"
    psql -X -A -t -q -d "$1" -c 'select count(*), md5(coalesce(string_agg(s::text, $$|$$ order by s::text), $$$$))
      from migration_backup."clerk-to-firebase:source" s' 2>/dev/null || echo none
}
# export DB FILE [JSON]: a Firebase export of every user of DB (matched by clerk_user_id);
# JSON (an object, keys and values as they must appear) replaces fields of the first user.
export_users() {
    _t_psql "$1" -v extra="${3:-{\}}" > "$2" <<'SQL'
select '{"users": [' || string_agg(e::text, E',\n' order by i) || ']}' from (
  select i, jsonb_build_object('localId', 'uid' || lpad(i::text, 25, '0'), 'email', email,
    'emailVerified', true, 'displayName', 'Name ' || i, 'phoneNumber', '+1555' || lpad(i::text, 8, '0'),
    'lastSignedInAt', '1700000000000', 'createdAt', '1600000000000',
    'customAttributes', jsonb_build_object('clerk_user_id', clerk_user_id)::text)
    || case when i = 1 then :'extra'::jsonb else '{}' end as e
  from (select *, row_number() over (order by id) as i from public.users) u) x
SQL
}
UID1=uid0000000000000000000000001

gen_app vals 200 t14 "$DATA"
must p1 apply -d vals

# refused FILE FIELD WHAT: exit 3, the user and the field named, nothing changed
refused() {
    local before; before=$(state vals)
    assert_exit 3 "$3 is refused" -- p2 apply -d vals --mapping "$1"
    assert_contains "$LAST_ERR" "do not fit the table; nothing was changed" "$3: says nothing changed"
    assert_contains "$LAST_ERR" "\"$2\"" "$3: field named"
    assert_contains "$LAST_ERR" "localId '$UID1' (element 1)" "$3: user named"
    assert_eq "$before" "$(state vals)" "$3: table and stored mapping unchanged"
    assert_eq "refused" "$(q vals "select status from migration_log where phase = 2 order by id desc limit 1")" "$3: audited as refused"
}

test_case "a 40-character phoneNumber (varchar(32)) is refused before any write"
export_users vals "$TEST_TMP/phone.json" "{\"phoneNumber\": \"+$(printf '1%.0s' {1..39})\"}"
refused "$TEST_TMP/phone.json" phoneNumber "a long phone number"
assert_contains "$LAST_ERR" "value longer than character varying(32)" "the limit named"
assert_contains "$LAST_ERR" "40 characters" "the length named"

test_case "a 300-character displayName (varchar(255)) is refused before any write"
export_users vals "$TEST_TMP/name.json" "{\"displayName\": \"$(printf 'x%.0s' {1..299})'\"}"
refused "$TEST_TMP/name.json" displayName "a long display name"
assert_contains "$LAST_ERR" "300 characters" "the length named"

test_case "an out-of-range or non-numeric lastSignedInAt is refused"
export_users vals "$TEST_TMP/ts.json" '{"lastSignedInAt": "99999999999999999999"}'
refused "$TEST_TMP/ts.json" lastSignedInAt "an out-of-range timestamp"
assert_contains "$LAST_ERR" "out of range" "the reason named"
export_users vals "$TEST_TMP/ts1.json" '{"lastSignedInAt": "9999999999999999"}'
refused "$TEST_TMP/ts1.json" lastSignedInAt "a timestamp past year 9999"
assert_contains "$LAST_ERR" "out of range" "the reason named"
# the reason quotes 40 bytes of the value: here they end inside the "é"
export_users vals "$TEST_TMP/ts3.json" "{\"lastSignedInAt\": \"$(printf 'x%.0s' {1..39})é\"}"
refused "$TEST_TMP/ts3.json" lastSignedInAt "a non-numeric timestamp with a character across byte 40"
assert_contains "$LAST_ERR" "is not epoch milliseconds" "the reason named"
export_users vals "$TEST_TMP/ts2.json" '{"lastSignedInAt": {"ms": 1}}'
refused "$TEST_TMP/ts2.json" lastSignedInAt "a timestamp that is an object"
assert_contains "$LAST_ERR" "an object, not a string of epoch milliseconds" "the JSON type named"

test_case "a non-boolean emailVerified is refused, not stored as NULL"
export_users vals "$TEST_TMP/verified.json" '{"emailVerified": "yes"}'
refused "$TEST_TMP/verified.json" emailVerified "a string emailVerified"
assert_contains "$LAST_ERR" "a string, not a boolean" "the JSON type named"
assert_contains "$(q vals "select metadata::text from migration_log where phase = 2 order by id desc limit 1")" \
    "invalid_values" "findings in the metadata"

test_case "several problems: each listed with its count"
export_users vals "$TEST_TMP/several.json" '{"emailVerified": 1, "phoneNumber": "+123456789012345678901234567890123"}'
refused "$TEST_TMP/several.json" emailVerified "two bad fields"
assert_contains "$LAST_ERR" "\"phoneNumber\" (column \"phone_number\"): 1 found" "second problem listed"

test_case "a user element over 4 MB: exit 2 naming its position, nothing changed"
before=$(state vals)
{ printf '{"users": [\n{"localId": "a", "email": "a@example.com"},\n{"localId": "b", "email": "'
  head -c 5000000 /dev/zero | tr '\0' 'x'; printf '@example.com"}]}'; } > "$TEST_TMP/huge.json"
assert_exit 2 "oversized element" -- p2 apply -d vals --mapping "$TEST_TMP/huge.json"
assert_contains "$LAST_ERR" "element 2 (byte " "position named"
assert_contains "$LAST_ERR" "is larger than 4 MB" "reason named"
assert_eq "$before" "$(state vals)" "nothing changed"

test_case "a valid export passes and fills the columns; a bad one afterwards leaves the stored mapping"
export_users vals "$TEST_TMP/good.json"
assert_exit 0 "valid export" -- p2 apply -d vals --mapping "$TEST_TMP/good.json"
assert_eq "$UID1|+155500000001|t|2023-11-14 22:13:20+00" "$(q vals "set timezone = 'UTC';
  select firebase_uid, phone_number, email_verified, last_sign_in_at from public.users order by id limit 1")" "first user filled"
refused "$TEST_TMP/phone.json" phoneNumber "a long phone number after a good run"

test_case "a column with a hostile name and a type without a length: values are cast-tested"
edit_file "$PLAN" "$TEST_TMP/hostile.json" 's/"phone_number"/"need\\"q(uot"/g' 's/"varchar(32)"/"bigint"/'
grep -q 'need\\"q(uot' "$TEST_TMP/hostile.json" || _t_fail "plan not edited"
gen_app hostile 50 t14h "$DATA"
must phase 1 apply -d hostile --plan "$TEST_TMP/hostile.json" --logs-dir "$LOGS"
export_users hostile "$TEST_TMP/notnum.json" "{\"phoneNumber\": \"+1 555 it's\"}"
before=$(state hostile)
assert_exit 3 "a phone number that is not a bigint" -- \
    phase 2 apply -d hostile --plan "$TEST_TMP/hostile.json" --logs-dir "$LOGS" --mapping "$TEST_TMP/notnum.json"
assert_contains "$LAST_ERR" "value not valid for bigint" "the type named"
assert_contains "$LAST_ERR" "\"phoneNumber\" (column \"need\"q(uot\")" "field and column named"
assert_contains "$LAST_ERR" "localId '$UID1' (element 1): '+1 555 it''s'" "user and value named"
assert_eq "$before" "$(state hostile)" "nothing changed"
export_users hostile "$TEST_TMP/num.json"
assert_exit 0 "numeric phone numbers fit" -- \
    phase 2 apply -d hostile --plan "$TEST_TMP/hostile.json" --logs-dir "$LOGS" --mapping "$TEST_TMP/num.json"
assert_eq "155500000001" "$(q hostile 'select "need""q(uot" from public.users order by id limit 1')" "first user filled"

test_case "--skip-invalid-values: the bad fields are left empty and listed under logs/, every other value is filled"
gen_app skip 40 t14s "$DATA"
must p1 apply -d skip
LONG_PHONE="+$(printf '7%.0s' {1..39})"
export_users skip "$TEST_TMP/skip.json" "{\"phoneNumber\": \"$LONG_PHONE\", \"emailVerified\": \"yes\"}"
assert_exit 2 "the option on rollback" -- p2 rollback -d skip --skip-invalid-values
assert_contains "$LAST_ERR" "accepted by apply only" "says where it belongs"
rm -f "$LOGS"/*-invalid-values.csv
assert_exit 0 "phase2 with --skip-invalid-values" -- p2 apply -d skip --mapping "$TEST_TMP/skip.json" --skip-invalid-values
list=$(ls "$LOGS"/*-invalid-values.csv 2>/dev/null)
assert_eq "1" "$(wc -l <<<"$list" | tr -d ' ')" "one list written"
assert_contains "$LAST_ERR" "2 values of the export are left empty; listed in $list" "the warning names the file"
CLERK1=$(q skip "select clerk_user_id from public.users order by id limit 1")
assert_eq "localId,element,field,column,problem,clerk_user_id
$UID1,1,emailVerified,email_verified,\"a string, not a boolean\",$CLERK1
$UID1,1,phoneNumber,phone_number,value longer than character varying(32),$CLERK1" "$(cat "$list")" "each value listed, by user and field"
assert_eq "600" "$(stat -c %a "$list")" "the list is readable by its owner only"
assert_not_contains "$(cat "$list")" "7777777777" "the value itself is not in the list"
assert_eq "$UID1|Name 1||" "$(q skip "select firebase_uid, display_name, phone_number, email_verified from public.users order by id limit 1")" \
    "the first user: uid and name filled, the two bad fields empty"
assert_eq "0" "$(q skip "select count(*) from (select * from public.users order by id offset 1) u
  where firebase_uid is null or phone_number is null or email_verified is null")" "every other user filled in full"
assert_eq "2" "$(q skip "select metadata->>'invalid_values_skipped' from migration_log where phase = 2 and operation like 'backfill%' order by id desc limit 1")" \
    "the count kept in migration_log"
# the sync trigger reads the same mapping: a row the application inserts again gets no bad value either
q skip "create table public.first as select * from public.users order by id limit 1;
  delete from public.users where id = (select id from public.first)" >/dev/null
assert_exit 0 "the application inserts the first user again" -- q skip "insert into public.users (id, clerk_user_id, email)
  select id, clerk_user_id, email from public.first"
assert_eq "$UID1||" "$(q skip "select firebase_uid, phone_number, email_verified from public.users where id = (select id from public.first)")" \
    "filled by the trigger without the bad values"
