# t47_firebase_import_kinds.sh -- what phase2 writes for each Clerk hasher and sign-in method, imported
# into Firebase's own Auth emulator by the commands phase2 logged (tests/lib/firebase_emulator.sh's
# emu_import_logged: each command of migration_log's import_files run as the operator's shell runs
# it, `firebase auth:import` being tests/apps/firebase/import_check.js). Oracle: the database (the
# generated uids, migration_log, the Clerk export loaded in SQL) and the accounts read back from the
# emulator; each check has a control that shows it catches a wrong value.
# a. Every hasher kind t46 makes (bcrypt, scrypt with --firebase-scrypt-params, pbkdf2-sha256 with
#    rounds, pbkdf2-sha1, md5, sha256; argon2id and phpass, which Firebase cannot verify): each file
#    imports with 0 errors under its own command's flags (SCRYPT's key read from the params file by
#    the command); read back, each account's passwordHash and salt are the file's and what the
#    Clerk digest means; the reset list's users exist with no password; the files' users, and no
#    other account, are the generated users, each exactly once.
# b. Clerk's JSON export: a Google account signs in (the emulator's accounts:signInWithIdp with an
#    unsigned id_token) as the uid phasemig gave its user, not as a new one; banned users are
#    disabled, verified phones are the accounts' phone numbers.
# c. What the import pre-flight refuses (a phone not E.164, an email not an address, a photo URL
#    that is not one, two emails differing in case only) is what the emulator refuses at import:
#    phase2 refuses them before writing; the same values in records imported straight are refused
#    by the emulator, by index, and a uid over 128 characters too. One difference, shown: the
#    emulator takes "+0..." phone numbers, which E.164 (and the pre-flight) does not. With --skip-invalid-values, the email kept is written as Firebase
#    stores it (lower-cased).
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/lib/firebase_emulator.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
FB=$ROOT/tests/apps/firebase
must_dirs DATA LOGS WORK
GEN='migration_backup."clerk-to-firebase:generated"'

# The digests of the password "password" in each of Clerk's forms (as t46), and what Firebase reads.
source "$ROOT/tests/lib/clerk_digests.sh"

# clerk_csv DB FILE: Clerk's dashboard CSV of every user of DB, the I'th (by id) with the hasher of
# kind I % 9: bcrypt, scrypt_firebase, pbkdf2_sha256, pbkdf2_sha1, md5, sha256, argon2id, phpass, none.
clerk_csv() {
    _t_psql "$1" -v bc="$BCRYPT" -v sc="$SCRYPT_HASH\$$SCRYPT_SALT" -v p256="$PBKDF2_256" -v p1="$PBKDF2_1" \
        -v md5="$MD5" -v sha="$SHA256" -v ar="$ARGON2" -v ph="$PHPASS" >/dev/null <<'SQL'
create table public.kinds as select clerk_user_id as id, email, (row_number() over (order by id) - 1) % 9 as kind
  from public.users;
create table public.clerk as select k.id, 'First' as first_name, 'Last ' || k.kind as last_name, null as username,
  k.email as primary_email_address, '+1555' || lpad((row_number() over (order by k.id))::text, 8, '0') as primary_phone_number,
  k.email as verified_email_addresses, null as unverified_email_addresses, null as verified_phone_numbers,
  null as unverified_phone_numbers, null as totp_secret,
  (array[:'bc', :'sc', :'p256', :'p1', :'md5', :'sha', :'ar', :'ph', null])[k.kind + 1] as password_digest,
  (array['bcrypt', 'scrypt_firebase', 'pbkdf2_sha256', 'pbkdf2_sha1', 'md5', 'sha256', 'argon2id', 'phpass', null])[k.kind + 1]
    as password_hasher
  from public.kinds k;
SQL
    _t_psql "$1" -c "\\copy public.clerk to '$2' csv header"
    q "$1" "drop table public.clerk" >/dev/null
}
# clerk_json DB FILE: Clerk's JSON export of every user of DB (as t46's), the I'th (by id, from 1)
# with: a verified phone when I is even (unverified otherwise); a Google account when I % 3 = 0;
# banned when I % 5 = 0.
clerk_json() {
    q "$1" "create table public.cj as select clerk_user_id as id, email, row_number() over (order by id) as i from public.users" >/dev/null
    q "$1" "select jsonb_pretty(jsonb_agg(jsonb_build_object('id', id, 'first_name', 'First', 'last_name', 'L' || i,
      'primary_email_address_id', 'idn_e' || i,
      'email_addresses', jsonb_build_array(jsonb_build_object('id', 'idn_e' || i, 'email_address', email,
        'verification', jsonb_build_object('status', 'verified'))),
      'primary_phone_number_id', 'idn_p' || i,
      'phone_numbers', jsonb_build_array(jsonb_build_object('id', 'idn_p' || i, 'phone_number', '+1555' || lpad(i::text, 8, '0'),
        'verification', jsonb_build_object('status', case when i % 2 = 0 then 'verified' else 'unverified' end))),
      'external_accounts', case when i % 3 = 0 then jsonb_build_array(jsonb_build_object('provider', 'oauth_google',
          'provider_user_id', 'g' || i, 'email_address', email)) else '[]'::jsonb end,
      'image_url', 'https://img.clerk.com/u' || i, 'has_image', true, 'banned', i % 5 = 0,
      'password_enabled', false, 'created_at', 1700000000000) order by i)) from public.cj" >"$2"
}
# mapping_of_last10 DB FILE: a mapping of the last 10 users of DB (by id); the others get generated uids
mapping_of_last10() {
    _t_psql "$1" -c "\\copy (select clerk_user_id, 'MAPPED' || lpad(id::text, 22, '0') as firebase_uid from (select clerk_user_id,
      row_number() over (order by id) as id from public.users) u where id > (select count(*) - 10 from public.users)) to '$2' csv header"
}
# load_accounts DB FILE TABLE: the accounts of FILE (emu_import_logged's accounts.json) as rows of TABLE
load_accounts() {
    must q "$1" "drop table if exists public.$3; create table public.$3 as select a->>'localId' as uid, a
      from jsonb_array_elements(pg_read_file('$2')::jsonb->'users') a"
}
# once DB TABLE: the generated users against the accounts: "missing|twice|extra", all 0 when each
# generated user is exactly one account and there is no other
once() {
    q "$1" "select (select count(*) from $GEN g where not exists (select 1 from public.$2 a where a.uid = g.firebase_uid))
      || '|' || (select count(*) from (select uid from public.$2 group by 1 having count(*) > 1) d)
      || '|' || (select count(*) from public.$2 a where not exists (select 1 from $GEN g where g.firebase_uid = a.uid))"
}
# logged_results DB: what emu_import_logged must print when every file imports: "GROUP 0 USERS" per file
logged_results() { q "$1" "select string_agg(x->>'group' || ' 0 ' || (x->>'users'), E'\\n' order by x->>'group') from migration_log m,
  jsonb_array_elements(m.metadata->'import_files') x
  where m.id = (select max(id) from migration_log where phase = 2 and metadata ? 'import_files')"; }

test_case "the Auth emulator starts"
must "$ROOT/scripts/install-firebase"
emulator_start

# ---------------------------------------------------------------- a. every hasher
test_case "a. every hasher kind: each file imported by its own command with 0 errors, hashes and salts read back exactly"
gen_app hash 45 t47 "$DATA/hash"
must p1 apply -d hash
mapping_of_last10 hash "$WORK/m.csv"
clerk_csv hash "$WORK/clerk.csv"
printf '{"base64_signer_key": "%s", "base64_salt_separator": "Bw==", "rounds": 8, "mem_cost": 14}\n' "$SIGNER_KEY" >"$WORK/scrypt.json"
fresh_dir "$LOGS"
assert_exit 0 "phase2 apply with every hasher" -- p2 apply -d hash --mapping "$WORK/m.csv" --generate-missing \
    --clerk-export "$WORK/clerk.csv" --firebase-scrypt-params "$WORK/scrypt.json"
printed=$LAST_ERR
assert_eq "bcrypt md5 password-reset pbkdf2-sha1-4096 pbkdf2-sha256-10000 scrypt sha256" \
    "$(q hash "select string_agg(x->>'group', ' ' order by x->>'group') from migration_log m, jsonb_array_elements(m.metadata->'import_files') x
      where m.id = (select max(id) from migration_log where phase = 2 and metadata ? 'import_files')")" "six files, one per algorithm, and the users to reset"
while IFS=$'\t' read -r grp _ cmd _; do
    assert_contains "$printed" "hint: import them with: $cmd
" "the $grp command printed as logged"
done < <(_t_psql hash -F $'\t' -c "$_emu_files_sql")
assert_contains "$(q hash "select x->>'command' from migration_log m, jsonb_array_elements(m.metadata->'import_files') x
  where m.id = (select max(id) from migration_log where phase = 2 and metadata ? 'import_files') and x->>'group' = 'scrypt'")" \
    "--hash-key=\"\$(node -p" "(the SCRYPT command reads its key from the file when it runs)"
results=$(emu_import_logged hash "$WORK/a")
assert_eq "$(logged_results hash)" "$results" "each file imported by its command: exit 0, as many users as import_files says"
counts=()
for f in "$WORK"/a/*.err; do
    n=$(jq '.users | length' "${f%.err}.json")
    assert_eq "imported: $n succeeded, 0 failed" "$(cat "$f")" "$(basename "$f" .err): 0 errors"
    counts+=("$(basename "$f" .err) $n")
done
echo "# imported with 0 errors, users per file: $(IFS=,; echo "${counts[*]}" | sed 's/,/, /g')"
assert_exit 0 "every account as in the files (passwordHash and salt byte for byte)" -- \
    node "$FB/compare_accounts.js" "$WORK/a/expected.json" "$WORK/a/accounts.json"
load_accounts hash "$WORK/a/accounts.json" acc
assert_eq "0|0|0" "$(once hash acc)" "the accounts are the generated users, each exactly once, and nothing else"
assert_eq "35" "$(q hash "select count(*) from public.acc")" "35 users without a match"
# each account's hash and salt as the Clerk digest of its user means them (the oracle is the
# digest, not the file)
hash_mismatches() {
    q hash "select count(*) from public.$1 a join public.kinds k on k.id = (a.a->>'customAttributes')::jsonb->>'clerk_user_id'
      where (a.a->>'passwordHash', a.a->>'salt') is distinct from
        (case k.kind when 0 then '$(printf %s "$BCRYPT" | base64 -w0)' when 1 then '$SCRYPT_HASH'
           when 2 then 'aGFzaGhhc2hoYXNoaGFzaA==' when 3 then '$(hex_b64 0c60c80f961f0e71f3a9b524af6012062fe037a6)'
           when 4 then '$(hex_b64 "$MD5")' when 5 then '$(hex_b64 "$SHA256")' end,
         case k.kind when 1 then '$SCRYPT_SALT' when 2 then 'c2FsdHNhbHQ=' when 3 then '$(printf saltsalt | base64 -w0)' end)"
}
assert_eq "0" "$(hash_mismatches acc)" "every account's passwordHash and salt are what its Clerk digest means"
assert_eq "6" "$(q hash "select count(distinct a->>'passwordHash') from public.acc where a ? 'passwordHash'")" "(six kinds of hash among them)"
# the reset list's users: accounts, with no password
run_id=$(q hash "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
q hash "create table public.reset (uid text, email text, hasher text, reason text)" >/dev/null
_t_psql hash -c "\\copy public.reset from '$LOGS/$run_id-password-reset.csv' csv header" >/dev/null
reset_mismatches() {
    q hash "select count(*) from public.reset r left join public.$1 a on a.uid = r.uid
      where a.uid is null or a.a ? 'passwordHash' or a.a ? 'salt' or a.a->>'email' is distinct from r.email"
}
assert_eq "8|0" "$(q hash "select count(*) from public.reset")|$(reset_mismatches acc)" \
    "the reset list's 8 users (argon2id, phpass) are accounts with their email and no password"
# controls: a salt changed, a reset user with a password, an account twice, a stray account
must_write "$WORK/a/doctored.json" jq '(.users[] | select(.salt == "c2FsdHNhbHQ=") | .salt) |= "eA==" ' "$WORK/a/accounts.json"
assert_exit 1 "control: compare_accounts sees a changed salt" -- node "$FB/compare_accounts.js" "$WORK/a/expected.json" "$WORK/a/doctored.json"
assert_contains "$LAST_OUT" ": salt: differs" "(the salt named, never its value)"
load_accounts hash "$WORK/a/doctored.json" acc_bad
assert_ne "0" "$(hash_mismatches acc_bad)" "control: the digest check sees the changed salt"
must q hash "update public.acc_bad set a = a || jsonb_build_object('passwordHash', 'eA==') where uid = (select min(uid) from public.reset)"
assert_eq "1" "$(reset_mismatches acc_bad)" "control: a reset user with a password is seen"
must q hash "insert into public.acc_bad select * from public.acc limit 1; insert into public.acc_bad values ('STRAY', '{}')"
assert_eq "0|1|1" "$(once hash acc_bad)" "control: an account twice and a stray account are seen"

# ---------------------------------------------------------------- b. social, banned, phone
test_case "b. a Google account signs in as the uid phasemig gave its user; banned is disabled, a verified phone the phone number"
gen_app social 30 t47 "$DATA/social"
must p1 apply -d social
mapping_of_last10 social "$WORK/m.csv"
clerk_json social "$WORK/clerk.json"
fresh_dir "$LOGS"
assert_exit 0 "phase2 apply with the JSON export" -- p2 apply -d social --mapping "$WORK/m.csv" --generate-missing \
    --clerk-export "$WORK/clerk.json"
results=$(emu_import_logged social "$WORK/b")
assert_eq "bcrypt 0 20" "$results" "one file (no digest in this export), imported with exit 0"
assert_eq "imported: 20 succeeded, 0 failed" "$(cat "$WORK/b/bcrypt.err")" "0 errors"
assert_exit 0 "every account as in the file" -- node "$FB/compare_accounts.js" "$WORK/b/expected.json" "$WORK/b/accounts.json"
load_accounts social "$WORK/b/accounts.json" acc
assert_eq "0|0|0" "$(once social acc)" "the accounts are the generated users"
# disabled and phone against the Clerk export's rules, by the database's Clerk id of each uid
profile_mismatches() {
    q social "select count(*) from public.$1 a join $GEN g on g.firebase_uid = a.uid join public.cj c on c.id = g.clerk_user_id
      where coalesce((a.a->>'disabled')::boolean, false) <> (c.i % 5 = 0)
         or a.a->>'phoneNumber' is distinct from case when c.i % 2 = 0 then '+1555' || lpad(c.i::text, 8, '0') end"
}
assert_eq "0" "$(profile_mismatches acc)" "banned users disabled, the others not; verified phones read back, unverified ones absent"
assert_eq "4|10" "$(q social "select count(*) filter (where (a->>'disabled')::boolean), count(*) filter (where a ? 'phoneNumber') from public.acc")" \
    "(4 disabled, 10 phones among the 20)"
echo "# social accounts read back: $(q social "select string_agg(n || ' ' || p, ', ' order by p) from (select p->>'providerId' p, count(*) n
  from public.acc a, jsonb_array_elements(a.a->'providerUserInfo') p where p->>'providerId' not in ('password', 'phone') group by 1) x")"
must q social "create table public.acc_bad as select * from public.acc;
  update public.acc_bad set a = a || '{\"disabled\": false}' where uid = (select min(uid) from public.acc where (a->>'disabled')::boolean);
  update public.acc_bad set a = a - 'phoneNumber' where uid = (select min(uid) from public.acc where a ? 'phoneNumber' and not coalesce((a->>'disabled')::boolean, false))"
assert_eq "2" "$(profile_mismatches acc_bad)" "control: a banned user not disabled and a lost phone are seen"
# signInWithIdp: the emulator takes an unsigned id_token as strict JSON; the account found by
# (google.com, sub) is the one phasemig made, not a new one
sign_in_google() {   # sign_in_google SUB EMAIL: the emulator's answer, compact
    local token
    token=$(jq -rn --arg sub "$1" --arg email "$2" '{sub: $sub, email: $email, email_verified: true} | tojson | @uri')
    curl -s -X POST -H 'Content-Type: application/json' \
        "http://$EMU_HOST/identitytoolkit.googleapis.com/v1/accounts:signInWithIdp?key=fake-api-key" \
        --data "$(jq -cn --arg pb "id_token=$token&providerId=google.com" \
            '{postBody: $pb, requestUri: "http://localhost", returnSecureToken: true, returnIdpCredential: true}')" |
        jq -c '{localId, isNewUser: (.isNewUser // false), error: .error.message}'
}
read -r sub email uid <<<"$(q social "select 'g' || c.i, c.email, g.firebase_uid from public.cj c join $GEN g on g.clerk_user_id = c.id
  where c.i % 3 = 0 order by c.i limit 1" | tr '|' ' ')"
[ -n "$uid" ] || setup_failed "no generated user with a Google account"
assert_eq "{\"localId\":\"$uid\",\"isNewUser\":false,\"error\":null}" "$(sign_in_google "$sub" "$email")" \
    "Google sub $sub signs in as the uid phasemig generated for its user"
assert_eq "0" "$(q social "select count(*) from public.cj c join $GEN g on g.clerk_user_id = c.id where c.i % 3 = 0
  and not exists (select 1 from public.acc a, jsonb_array_elements(a.a->'providerUserInfo') p where a.uid = g.firebase_uid
    and p->>'providerId' = 'google.com' and p->>'rawId' = 'g' || c.i)")" "every generated Google user's account has its google.com sub"
# control: a sub no imported user has is a new user with a new uid
out=$(sign_in_google "g-nobody" "nobody@elsewhere.example.org")
assert_eq "true|null" "$(jq -r '"\(.isNewUser)|\(.error)"' <<<"$out")" "control: an unknown sub is a new user"
assert_eq "0" "$(q social "select count(*) from public.acc where uid = '$(jq -r .localId <<<"$out")'")" "control: with a uid of none of the imported users"

# ---------------------------------------------------------------- c. pre-flight = emulator
test_case "c. what the pre-flight refuses is what the emulator refuses: phase2 writes nothing, the emulator refuses the same values by index"
gen_app bad 30 t47 "$DATA/bad"
must p1 apply -d bad
mapping_of_last10 bad "$WORK/m.csv"
clerk_json bad "$WORK/clerk.json"
ids=($(q bad "select clerk_user_id from public.users order by id limit 6"))
# the first five users (all generated): a phone not E.164, without its + (user 2), a photo URL that is not one
# (user 3), an email that is not an address (user 4), two emails differing only in case (users 5
# and 6: the one the pre-flight keeps, the lower Clerk id, in upper case)
must sed -i 's/"phone_number": "+155500000002"/"phone_number": "555-0100"/; s#"image_url": "https://img.clerk.com/u3"#"image_url": "img.clerk.com/u3"#' "$WORK/clerk.json"
must q bad "update public.users set email = 'no-at-sign.example.com' where clerk_user_id = '${ids[3]}';
  update public.users set email = case when clerk_user_id = least('${ids[4]}', '${ids[5]}') then 'A@x.com' else 'a@x.com' end
    where clerk_user_id in ('${ids[4]}', '${ids[5]}')"
fresh_dir "$LOGS"
before=$(db_state bad)
assert_exit 3 "phase2 apply refuses" -- p2 apply -d bad --mapping "$WORK/m.csv" --generate-missing --clerk-export "$WORK/clerk.json"
read -r keeps loses <<<"$(q bad "select min(x) || ' ' || max(x) from unnest(array['${ids[4]}', '${ids[5]}']) x")"
for check in "clerk_user_id '${ids[1]}': not + and 2 to 15 digits" "clerk_user_id '${ids[2]}': not an http(s) URL" \
    "clerk_user_id '${ids[3]}': not an email address" "clerk_user_id '$loses': another user of the import files has this email"; do
    assert_contains "$LAST_ERR" "$check" "named: $check"
done
assert_not_contains "$LAST_ERR" "clerk_user_id '$keeps': another" "the first of the twins is not the duplicate"
assert_eq "$before" "$(db_state bad)" "nothing written"
assert_eq "0" "$(find "$LOGS" -name '*-firebase-import-*.json' | wc -l)" "no import file"
# the same values, straight to the emulator: one record each, and two good records (the control
# that the import itself works); a 129-character uid too (phase2's are 28 characters). And where
# the two differ: a + followed by a 0, which E.164 has no country code for, the pre-flight refuses
# (t46) and the emulator takes (its check is a + and digits); the pre-flight keeps to E.164.
must_write "$WORK/c-bad.json" jq -n --arg e4 no-at-sign.example.com '{users: [
  {localId: "GOOD00000000000000000000001", email: "good@example.com"},
  {localId: "PHONE0000000000000000000001", email: "p@example.com", phoneNumber: "555-0100"},
  {localId: "PHOTO0000000000000000000001", email: "f@example.com", photoUrl: "img.clerk.com/u3"},
  {localId: "EMAIL0000000000000000000001", email: $e4},
  {localId: "TWIN00000000000000000000001", email: "A@x.com"},
  {localId: "TWIN00000000000000000000002", email: "a@x.com"},
  {localId: ("u" * 129), email: "lu@example.com"},
  {localId: "GOOD00000000000000000000002", email: "good2@example.com", phoneNumber: "+15550000002"},
  {localId: "ZERO00000000000000000000001", email: "z@example.com", phoneNumber: "+0155500000002"}]}'
emulator_reset
assert_exit 1 "import_check.js on the values phase2 refused" -- emu_node "$FB/import_check.js" "$WORK/c-bad.json" --out "$WORK/c-acc.json"
assert_contains "$LAST_ERR" "imported: 4 succeeded, 5 failed" "the two good records, the first twin and the +0 phone imported, five refused"
for e in "index 1 (localId PHONE0000000000000000000001): auth/invalid-phone-number" \
    "index 2 (localId PHOTO0000000000000000000001): auth/invalid-photo-url" \
    "index 3 (localId EMAIL0000000000000000000001): auth/invalid-email" \
    "index 5 (localId TWIN00000000000000000000002): auth/invalid-user-import" \
    "index 6 (localId $(printf 'u%.0s' $(seq 129))): auth/invalid-uid"; do
    assert_contains "$LAST_ERR" "error: $e" "the emulator refuses: $e"
done
assert_eq "GOOD00000000000000000000001 GOOD00000000000000000000002 TWIN00000000000000000000001 ZERO00000000000000000000001" \
    "$(jq -r '[.users[].localId] | sort | join(" ")' "$WORK/c-acc.json")" "control: the good records are accounts (and the +0 phone)"

test_case "c. --skip-invalid-values: the kept twin's email written as Firebase stores it, and read back the same"
assert_exit 0 "phase2 apply --skip-invalid-values" -- p2 apply -d bad --mapping "$WORK/m.csv" --generate-missing \
    --clerk-export "$WORK/clerk.json" --skip-invalid-values
results=$(emu_import_logged bad "$WORK/c")
assert_eq "bcrypt 0 20" "$results" "imported with exit 0"
assert_eq "imported: 20 succeeded, 0 failed" "$(cat "$WORK/c/bcrypt.err")" "0 errors: nothing the emulator refuses is left"
assert_exit 0 "every account as in the file (the email compared exactly)" -- \
    node "$FB/compare_accounts.js" "$WORK/c/expected.json" "$WORK/c/accounts.json"
load_accounts bad "$WORK/c/accounts.json" acc
assert_eq "a@x.com|" "$(q bad "select string_agg(a->>'email', ',') filter (where g.clerk_user_id = '$keeps') || '|'
  || coalesce(string_agg(a->>'email', ',') filter (where g.clerk_user_id = '$loses'), '')
  from public.acc join $GEN g on g.firebase_uid = uid")" "the first twin has the email, lower-cased; the second none"
assert_eq "A@x.com" "$(q bad "select email from public.users where clerk_user_id = '$keeps'")" "the database's email as it was"
must_write "$WORK/c/upper.json" jq '(.users[] | select(.email == "a@x.com") | .email) |= "A@x.com"' "$WORK/c/expected.json"
assert_exit 1 "control: a file with the email as the database has it differs from the account" -- \
    node "$FB/compare_accounts.js" "$WORK/c/upper.json" "$WORK/c/accounts.json"
assert_contains "$LAST_OUT" 'email: expected "A@x.com", got "a@x.com"' "the emulator lower-cases what the file would not"

test_case "the emulator stops"
emulator_stop
