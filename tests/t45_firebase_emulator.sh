# t45_firebase_emulator.sh -- the Clerk to Firebase job against Firebase's own Auth emulator
# (firebase-tools and firebase-admin from npm under build/node: scripts/install-firebase;
# tests/lib/firebase_emulator.sh starts it offline, project demo-phasemig, and stops it on exit).
# What each case proves, with the database and the emulator's accounts as the oracle:
# a. The mapping reader reads Firebase's own export: users made in the emulator by the Admin SDK
#    (Firebase picks their uids; some with a Clerk id in their custom claims, the others found by
#    an email the database writes in another case; passwords, one phone, names, photos, sign-ins),
#    exported by firebase-tools' own exporter; the whole job (phase1 apply, phase2 apply --mapping
#    on that file, phase3 check, apply) leaves each row the uid createUser returned for it, and the
#    profile columns the values the user was made with.
# b. Users phasemig generates import with 0 errors: phase2 apply --generate-missing with a Clerk
#    export carrying bcrypt digests; each import file migration_log's import_files lists, printed
#    by phase2 with the same command, imported by that command run as the operator runs it (the
#    Admin SDK's importUsers in place of `firebase auth:import`) into a project with no account;
#    read back, the accounts are exactly the files' users (uid, email, emailVerified, displayName, photoUrl, phoneNumber, disabled,
#    customAttributes, providerUserInfo, passwordHash) and exactly the rows given a generated uid,
#    each with the email of its row and the Clerk export's digest, name and phone for its Clerk id.
# c. The checks can fail: records Firebase refuses (a phone not E.164, an invalid email) are
#    reported by index and make the checker exit 1 (the emulator's own accounts:batchCreate,
#    without the SDK's checks, refuses them too); hash flags auth:import refuses are refused; the
#    comparison reports a doctored file (a name, a hash, a missing and an extra user); the SQL
#    checks of a and b report rows given a wrong value. And what Firebase does with the fields the
#    issue lists: a uid over 128 characters, a photo URL that is not one, claims over 1,000
#    characters, a second user with one email refused by index; a 300-character display name
#    accepted (the emulator does not check that limit); an email stored lower-cased.
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/lib/firebase_emulator.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
FB=$ROOT/tests/apps/firebase
must_dirs DATA LOGS WORK

test_case "install-firebase installs firebase-tools 13 and firebase-admin 13 under build/node, silent the second time"
must "$ROOT/scripts/install-firebase"
assert_exit 0 "install-firebase again" -- "$ROOT/scripts/install-firebase"
assert_eq "" "$LAST_OUT$LAST_ERR" "nothing to do, nothing said"
assert_contains "$(cat "$ROOT/build/node/node_modules/firebase-tools/package.json")" '"version": "13.' "firebase-tools 13"
assert_contains "$(cat "$ROOT/build/node/node_modules/firebase-admin/package.json")" '"version": "13.' "firebase-admin 13"

test_case "the Auth emulator starts offline with no login, on the ports of this file's slot"
t0=$SECONDS
emulator_start
echo "# the emulator answered after $((SECONDS - t0)) s on $EMU_HOST" >&2
assert_contains "$(curl -s "http://$EMU_HOST/")" '"ready": true' "the emulator answers"
assert_eq "0" "$(emu_node -e 'require("'"$FB"'/emulator.js").allAccounts().then((u) => console.log(u.length))')" "an empty project"

# ---------------------------------------------------------------- a. a real export
# uid_mismatches DB TABLE: rows whose firebase_uid is not TABLE's uid for their id, and rows of
# TABLE with no user (the comparison of case a, run on a doctored copy in case c)
uid_mismatches() {
    q "$1" "select count(*) from public.$2 x full join public.users u on u.id = x.id
            where u.firebase_uid is distinct from x.uid"
}

test_case "a. the whole job on the emulator's own export: each row gets the uid Firebase gave its user"
gen_app real 60 t45 "$DATA/real"
# The users to make, one per row (SQL, so the database says what was made for each of its rows):
# a quarter without a Clerk id in their claims, found by email, which the database then holds in
# upper case; passwords for half, signed in once for a quarter; one phone in ten; two users more
# that the database does not have.
must q real "create table public.spec as
  select id as key, email, n, case when n % 4 <> 0 then clerk_user_id end as clerk_user_id,
         case when n % 2 = 0 then 'password-' || n end as password, n % 4 = 2 as \"signIn\",
         case when n % 3 <> 0 then name end as \"displayName\",
         case when n % 5 = 1 then 'https://img.example.com/' || n || '.png' end as \"photoUrl\",
         n % 2 = 1 as \"emailVerified\",
         case when n % 10 = 3 then '+1555' || lpad(n::text, 8, '0') end as \"phoneNumber\"
  from (select *, row_number() over (order by id) as n from public.users) u
  union all select 'extra' || n, 'extra' || n || '@elsewhere.example.org', 1000 + n, null, null, false,
         null, null, false, null from generate_series(1, 2) n"
must_write "$WORK/spec.json" q real "select json_agg(s) from public.spec s"
must emu_node "$FB/export_users.js" create "$WORK/spec.json" "$WORK/created.json"
must emu_node "$FB/export_users.js" export "$WORK/export.json"
must q real "update public.users u set email = upper(u.email) from public.spec s where s.key = u.id and s.clerk_user_id is null"
must q real "create table public.made as select key as id, \"localId\" as uid
  from jsonb_to_recordset(pg_read_file('$WORK/created.json')::jsonb) as x(key text, \"localId\" text)
  where key not like 'extra%'"
assert_eq "62" "$(grep -c '"localId"' "$WORK/export.json")" "the export has every user made (60 and 2 more)"
assert_eq "15|60" "$(q real "select count(*) filter (where clerk_user_id is null), count(*) from public.spec where key not like 'extra%'")" \
  "15 of the 60 to be found by email"
assert_eq "0" "$(q real "select count(*) from public.made where uid !~ '^[A-Za-z0-9]{28}\$'")" "uids Firebase picked: 28 letters and digits"
assert_exit 0 "phase1 apply" -- p1 apply -d real
assert_exit 0 "phase2 apply --mapping (the emulator's export)" -- p2 apply -d real --mapping "$WORK/export.json"
assert_not_contains "$LAST_ERR" "warning" "the export read without a warning"
assert_exit 0 "phase3 check" -- p3 check -d real
assert_exit 0 "phase3 apply" -- p3 apply -d real
assert_eq "0" "$(uid_mismatches real made)" "every row's firebase_uid is the localId createUser returned for its user"
assert_eq "60|60" "$(q real "select count(*), count(distinct firebase_uid) from public.users")" "60 rows, 60 distinct uids"
# the profile columns as the users were made; the last sign-in as the emulator exported it
psql -X -q -d real -v ON_ERROR_STOP=1 >/dev/null <<SQL || _t_fail "could not read the export in SQL"
\\set export \`cat "$WORK/export.json"\`
create table public.fb as select e->>'localId' as uid, to_timestamp((e->>'lastSignedInAt')::bigint / 1000.0) as ls
  from jsonb_array_elements((:'export')::jsonb->'users') e;
SQL
assert_eq "0" "$(q real "select count(*) from public.users u join public.spec s on s.key = u.id join public.fb on fb.uid = u.firebase_uid
  where (u.display_name, u.photo_url, u.email_verified, u.phone_number, u.last_sign_in_at)
    is distinct from (s.\"displayName\", s.\"photoUrl\", s.\"emailVerified\", s.\"phoneNumber\", fb.ls)")" \
  "display name, photo, email verified, phone and last sign-in of every row as Firebase has them"
assert_eq "15|6|t|t|t" "$(q real "select count(*) filter (where s.clerk_user_id is null), count(*) filter (where u.phone_number is not null),
  bool_or(u.display_name is null) and bool_or(u.display_name is not null), bool_or(u.photo_url is not null),
  bool_or(u.email_verified) and bool_or(not u.email_verified) from public.users u join public.spec s on s.key = u.id")" \
  "(the data has each kind: found by email, phones, names and none, photos, verified and not)"

# ---------------------------------------------------------------- b. generated users import
# gen_mismatches DB ACCOUNTS_TABLE: the rows given a generated uid against the accounts read back
# (each such row one account of its uid and email, and no other account), and each account's name,
# phone and password digest against the Clerk export's row for its Clerk id
gen_mismatches() {
    q "$1" "select (select count(*) from public.gen g full join public.$2 a on a.uid = g.firebase_uid
                    where g.firebase_uid is null or a.uid is null or a.email is distinct from g.email)
         + (select count(*) from public.$2 a left join public.clerk c on c.id = a.clerk_id
            where c.id is null
               or a.name is distinct from nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), '')
               or a.phone is distinct from c.primary_phone_number
               or a.digest is distinct from case when c.password_hasher = 'bcrypt' then c.password_digest end)"
}

test_case "b. users phase2 generates import into Firebase with 0 errors, read back exactly as phasemig wrote them"
gen_app gen 300 t45 "$DATA/gen" --missing-pct 20
assert_exit 0 "phase1 apply" -- p1 apply -d gen
assert_exit 0 "phase2 apply --generate-missing --clerk-export" -- p2 apply -d gen --mapping "$DATA/gen/firebase-export.json" \
  --generate-missing --clerk-export "$DATA/gen/clerk-export.csv"
# the files and their commands as phase2 logged them (migration_log's import_files), each printed as
# it is recorded, each imported into an empty project by running its command (emu_import_logged)
printed=$LAST_ERR
must q gen "create table public.gen as select id, email, clerk_user_id, firebase_uid from public.users u
  where firebase_uid not in (select e->>'localId' from jsonb_array_elements(pg_read_file('$DATA/gen/firebase-export.json')::jsonb->'users') e)"
generated=$(q gen "select count(*) from public.gen")
assert_ne "0" "$generated" "some users were generated"
while IFS=$'\t' read -r grp users cmd file; do
    assert_contains "$printed" "hint: import them with: $cmd
" "phase2 printed the $grp file's command as migration_log keeps it"
    assert_eq "$users" "$(grep -c '"localId"' "$file")" "the $grp file has the users import_files counts"
done < <(_t_psql gen -F $'\t' -c "$_emu_files_sql")
t0=$SECONDS
results=$(emu_import_logged gen "$WORK/b")
echo "# importUsers and the read back of $generated users: $((SECONDS - t0)) s" >&2
assert_eq "bcrypt 0 $generated" "$results" "one file (gen-data's digests are bcrypt), imported by its command: exit 0, every generated user"
assert_eq "imported: $generated succeeded, 0 failed" "$(cat "$WORK/b/bcrypt.err")" "the import's result: every user, no error"
assert_exit 0 "every account as in the import files" -- node "$FB/compare_accounts.js" "$WORK/b/expected.json" "$WORK/b/accounts.json"
assert_eq "compared $generated expected users with $generated accounts: 0 differences" "$LAST_OUT" "the comparison's count"
# the BCRYPT file and its command's arguments (as the shell splits them) for the controls of case c
eval "import_cmd=($(cat "$WORK/b/bcrypt.cmd"))"
import_file=${import_cmd[2]}
import_cmd=("$import_file" "${import_cmd[@]:3}")
assert_eq "--hash-algo=BCRYPT" "${import_cmd[*]:1}" "BCRYPT takes no rounds from the file (its digests carry them)"
cp "$WORK/b/accounts.json" "$WORK/accounts.json"
must q gen "create table public.clerk (id text, first_name text, last_name text, username text, primary_email_address text,
  primary_phone_number text, verified_email_addresses text, unverified_email_addresses text, verified_phone_numbers text,
  unverified_phone_numbers text, totp_secret text, password_digest text, password_hasher text)"
must q gen "\\copy public.clerk from '$DATA/gen/clerk-export.csv' csv header"
# accounts_table DB FILE TABLE: the accounts of FILE as rows (the digest decoded from base64)
accounts_table() {
    must q "$1" "create table public.$3 as select a->>'localId' as uid, a->>'email' as email, a->>'displayName' as name,
      a->>'phoneNumber' as phone, convert_from(decode(a->>'passwordHash', 'base64'), 'UTF8') as digest,
      (a->>'customAttributes')::jsonb->>'clerk_user_id' as clerk_id
      from jsonb_array_elements(pg_read_file('$2')::jsonb->'users') a"
}
accounts_table gen "$WORK/accounts.json" acc
assert_eq "0" "$(gen_mismatches gen acc)" \
  "the accounts are the rows given a generated uid (uid, email) with the Clerk export's name, phone and digest"
assert_ne "0" "$(q gen "select count(*) from public.acc where digest like '\$2a\$10\$%'")" "(bcrypt digests among them)"
assert_ne "0" "$(q gen "select count(*) from public.acc where digest is null")" "(and users without a password)"
assert_ne "0" "$(q gen "select count(*) from public.acc where phone is not null")" "(and phones)"

# ---------------------------------------------------------------- c. controls
test_case "c. records Firebase refuses are reported by index, and the checker exits 1"
emulator_reset
# the import file with its second record's phone not E.164 and its fourth record's email invalid
must_write "$WORK/bad-import.json" jq '.users[1].phoneNumber = "555-0100" | .users[3].email = "not-an-email"' "$import_file"
assert_exit 1 "import_check.js on records Firebase refuses" -- \
  emu_node "$FB/import_check.js" "$WORK/bad-import.json" "${import_cmd[@]:1}" --out "$WORK/bad-accounts.json"
assert_contains "$LAST_ERR" "imported: $((generated - 2)) succeeded, 2 failed" "the counts"
assert_contains "$LAST_ERR" "error: index 1 (localId $(jq -r '.users[1].localId' "$import_file")): auth/invalid-phone-number" "the phone, by index and localId"
assert_contains "$LAST_ERR" "error: index 3 (localId $(jq -r '.users[3].localId' "$import_file")): auth/invalid-email" "the email, by index and localId"
assert_exit 1 "the comparison sees the two missing accounts" -- node "$FB/compare_accounts.js" "$WORK/bad-import.json" "$WORK/bad-accounts.json"
assert_contains "$LAST_OUT" "$(jq -r '.users[1].localId' "$import_file"): no such account in the emulator" "a refused user has no account"
# the emulator itself refuses them too, not only the SDK's own checks: the two records sent as
# they are to its accounts:batchCreate (uploadAccount, what firebase auth:import calls)
must_write "$WORK/bad-upload.json" jq '{users: [.users[1], .users[3]] | map(del(.passwordHash, .customAttributes))}' "$WORK/bad-import.json"
emulator_reset
assert_eq '[{"index":0,"message":"phone number format is invalid"},{"index":1,"message":"email is invalid"}]' \
  "$(curl -s -X POST -H 'Authorization: Bearer owner' -H 'Content-Type: application/json' --data @"$WORK/bad-upload.json" \
    "http://$EMU_HOST/identitytoolkit.googleapis.com/v1/projects/$EMU_PROJECT/accounts:batchCreate" | jq -c .error)" \
  "the emulator's own refusals, per record"
emulator_reset
assert_exit 2 "a flag firebase auth:import refuses (SCRYPT without its key)" -- \
  emu_node "$FB/import_check.js" "$import_file" --hash-algo=SCRYPT --rounds=8 --mem-cost=14
assert_contains "$LAST_ERR" "Must provide hash key(base64 encoded) for hash algorithm SCRYPT" "firebase-tools' own message"
assert_exit 1 "hashes without --hash-algo: the SDK refuses the call" -- emu_node "$FB/import_check.js" "$import_file" --out "$WORK/nohash.json"
assert_contains "$LAST_ERR" "imported: 0 succeeded" "nothing imported"

test_case "c. what Firebase refuses of the fields the issue lists (uid, photo URL, claims size, duplicate emails), and what it changes"
emulator_reset
must_write "$WORK/edge.json" jq -n '{users: [
  {localId: "MIXED0000000000000000000001", email: "Mixed.Case@Example.COM"},
  {localId: "LONGNAME00000000000000000001", email: "ln@example.com", displayName: ("n" * 300)},
  {localId: ("u" * 129), email: "lu@example.com"},
  {localId: "PHOTO0000000000000000000001", email: "ph@example.com", photoUrl: "not a url"},
  {localId: "CLAIMS000000000000000000001", email: "cl@example.com", customAttributes: ({x: ("c" * 1100)} | tojson)},
  {localId: "DUPE00000000000000000000001", email: "dup@example.com"},
  {localId: "DUPE00000000000000000000002", email: "dup@example.com"}]}'
assert_exit 1 "import_check.js on the edge records" -- emu_node "$FB/import_check.js" "$WORK/edge.json" --out "$WORK/edge-accounts.json"
assert_contains "$LAST_ERR" "imported: 3 succeeded, 4 failed" "four refused"
assert_contains "$LAST_ERR" "error: index 2 (localId $(printf 'u%.0s' $(seq 129))): auth/invalid-uid" "a uid over 128 characters"
assert_contains "$LAST_ERR" "error: index 3 (localId PHOTO0000000000000000000001): auth/invalid-photo-url" "a photo URL that is not a URL"
assert_contains "$LAST_ERR" "error: index 4 (localId CLAIMS000000000000000000001): auth/claims-too-large" "claims over 1000 characters"
assert_contains "$LAST_ERR" "error: index 6 (localId DUPE00000000000000000000002): auth/invalid-user-import" "a second user with the same email"
# accepted, but not as written: neither the SDK nor the emulator enforces the 256-character
# display name; the emulator stores the email lower-cased (a comparison with the file says so)
assert_eq "300" "$(jq -r '.users[] | select(.localId == "LONGNAME00000000000000000001") | .displayName | length' "$WORK/edge-accounts.json")" \
  "a 300-character display name is imported (the emulator does not check the limit)"
assert_eq "mixed.case@example.com" "$(jq -r '.users[] | select(.localId == "MIXED0000000000000000000001") | .email' "$WORK/edge-accounts.json")" \
  "an email is stored lower-cased"

test_case "c. the comparisons report a doctored value"
h1=$(jq -r '[.users | to_entries[] | select(.key >= 3 and .value.passwordHash)][0].value.localId' "$import_file")
must_write "$WORK/doctored.json" jq --arg h "$h1" '(.users[0].displayName) = "Somebody Else"
  | (.users[] | select(.localId == $h) | .passwordHash) = "JDJhJDEwJHdyb25n"
  | del(.users[2]) | .users += [{"localId": "NOSUCHUSER0000000000000000000", "email": "x@example.com"}]' "$import_file"
assert_exit 1 "compare_accounts.js on a doctored copy" -- node "$FB/compare_accounts.js" "$WORK/doctored.json" "$WORK/accounts.json"
assert_contains "$LAST_OUT" "localId $(jq -r '.users[0].localId' "$import_file"): displayName: expected \"Somebody Else\", got" "a name"
assert_contains "$LAST_OUT" "localId $h1: passwordHash: differs" "a hash, without its value"
assert_not_contains "$LAST_OUT" "JDJhJDEw" "no hash printed"
assert_contains "$LAST_OUT" "localId $(jq -r '.users[2].localId' "$import_file"): an account not in" "an account the file does not have"
assert_contains "$LAST_OUT" "localId NOSUCHUSER0000000000000000000: no such account in the emulator" "a user the emulator does not have"
assert_contains "$LAST_OUT" ": 4 differences" "four differences"
# case a's check on a copy with two uids swapped, case b's on accounts with one digest changed
must q real "create table public.made_bad as select * from public.made;
  with p as (select min(id) as a, max(id) as b from public.made)
  update public.made_bad m set uid = (select uid from public.made where id = case when m.id = p.a then p.b else p.a end)
  from p where m.id in (p.a, p.b)"
assert_eq "2" "$(uid_mismatches real made_bad)" "case a's check: two rows with a wrong uid"
must q gen "create table public.acc_bad as select * from public.acc;
  update public.acc_bad set digest = digest || 'x' where uid = '$h1'"
assert_eq "1" "$(gen_mismatches gen acc_bad)" "case b's check: one account with a wrong digest"
must q gen "delete from public.acc_bad where uid <> '$h1'; update public.acc_bad set digest = left(digest, -1)"
assert_eq "$((generated - 1))" "$(gen_mismatches gen acc_bad)" "case b's check: the generated rows without an account"

test_case "the emulator stops with its whole process group, its ports free again"
emu_pgid=$_EMU_PID
emulator_stop
assert_exit 1 "no process left in its group" -- kill -0 -- "-$emu_pgid"
for p in "$EMU_AUTH_PORT" "$EMU_HUB_PORT" "$EMU_LOG_PORT"; do _emu_port_free "$p" || _t_fail "port $p still taken"; done
