# t46_clerk_auth_methods.sh -- every Clerk hasher and sign-in method carried into the Firebase
# import, or listed for the operator, and every value Firebase would refuse found before any
# write. Oracle: the import files phase2 writes (their exact JSON, read back in SQL), the reset,
# re-enrol and invalid-values lists, the database (generated uids, migration_log) and the logs.
# Each check has a control that shows it catches a wrong value.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS

# The digests of the password "password" in each of Clerk's forms, and what Firebase must read.
source "$ROOT/tests/lib/clerk_digests.sh"
B64_BCRYPT=$(printf %s "$BCRYPT" | base64 -w0)
B64_MD5=$(hex_b64 "$MD5")
B64_SHA256=$(hex_b64 "$SHA256")
B64_SHA1=$(hex_b64 0c60c80f961f0e71f3a9b524af6012062fe037a6)
B64_SALTSALT=$(printf saltsalt | base64 -w0)

# clerk_csv DB FILE: Clerk's dashboard CSV of every user of DB, the I'th (by id) with the hasher
# of kind I % 10: bcrypt, scrypt_firebase, pbkdf2_sha256, pbkdf2_sha256 over Firebase's rounds,
# pbkdf2_sha1, md5, sha256, argon2id, phpass, none.
clerk_csv() {
    _t_psql "$1" -v bc="$BCRYPT" -v sc="$SCRYPT_HASH\$$SCRYPT_SALT" -v p256="$PBKDF2_256" \
        -v p256x="$PBKDF2_256_TOO_MANY" -v p1="$PBKDF2_1" -v md5="$MD5" -v sha="$SHA256" -v ar="$ARGON2" \
        -v ph="$PHPASS" >/dev/null <<'SQL'
create table public.kinds as select clerk_user_id as id, email, (row_number() over (order by id) - 1) % 10 as kind
  from public.users;
create table public.clerk as select k.id, 'First' as first_name, 'Last ' || k.kind as last_name, null as username,
  k.email as primary_email_address, '+1555' || lpad((row_number() over (order by k.id))::text, 8, '0') as primary_phone_number,
  k.email as verified_email_addresses, null as unverified_email_addresses, null as verified_phone_numbers,
  null as unverified_phone_numbers, null as totp_secret,
  (array[:'bc', :'sc', :'p256', :'p256x', :'p1', :'md5', :'sha', :'ar', :'ph', null])[k.kind + 1] as password_digest,
  (array['bcrypt', 'scrypt_firebase', 'pbkdf2_sha256', 'pbkdf2_sha256', 'pbkdf2_sha1', 'md5', 'sha256', 'argon2id',
         'phpass', null])[k.kind + 1] as password_hasher
  from public.kinds k;
SQL
    _t_psql "$1" -c "\\copy public.clerk to '$2' csv header"
    q "$1" "drop table public.clerk" >/dev/null
}

# imported DB: the import files of the logs directory read into public.imported (file group, user)
imported() {
    local f
    q "$1" "drop table if exists public.imported; create table public.imported (grp text, u jsonb)" >/dev/null
    for f in "$LOGS"/*-firebase-import-*.json; do
        _t_psql "$1" -v doc="$(cat "$f")" -v grp="$(basename "$f" .json | sed 's/.*-firebase-import-//')" >/dev/null <<'SQL'
insert into public.imported select :'grp', u from jsonb_array_elements((:'doc')::jsonb -> 'users') u;
SQL
    done
}

# exactly_once DB: the generated users against the files: "missing|twice|extra", all 0 when each is in exactly one
exactly_once() {
    q "$1" "select (select count(*) from migration_backup.\"clerk-to-firebase:generated\" g
        where not exists (select 1 from public.imported i where i.u->>'localId' = g.firebase_uid))
      || '|' || (select count(*) from (select u->>'localId' from public.imported group by 1 having count(*) > 1) d)
      || '|' || (select count(*) from public.imported i where not exists
        (select 1 from migration_backup.\"clerk-to-firebase:generated\" g where g.firebase_uid = i.u->>'localId'))"
}

# mapping_of_last10 DB FILE: a mapping of the last 10 users of DB (by id); the 30 others get generated uids
mapping_of_last10() {
    _t_psql "$1" -c "\\copy (select clerk_user_id, 'MAPPED' || lpad(id::text, 22, '0') as firebase_uid from (select clerk_user_id,
      row_number() over (order by id) as id from public.users) u where id > 30) to '$2' csv header"
}

test_case "every hasher kind: one file per algorithm with its exact command, the others in the reset list; each generated user in exactly one file"
gen_app hash 40 t46 "$DATA"
must p1 apply -d hash
mapping_of_last10 hash "$TEST_TMP/m.csv"
clerk_csv hash "$TEST_TMP/clerk.csv"
printf '{"base64_signer_key": "%s", "base64_salt_separator": "Bw==", "rounds": 8, "mem_cost": 14}\n' "$SIGNER_KEY" >"$TEST_TMP/scrypt.json"
rm -f "$LOGS"/*
assert_exit 0 "phase2 apply with every hasher" -- p2 apply -d hash --mapping "$TEST_TMP/m.csv" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.csv" --firebase-scrypt-params "$TEST_TMP/scrypt.json"
err=$LAST_ERR
run_id=$(q hash "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
assert_eq "bcrypt md5 password-reset pbkdf2-sha1-4096 pbkdf2-sha256-10000 scrypt sha256" \
    "$(ls "$LOGS"/*-firebase-import-*.json | sed 's/.*-firebase-import-//; s/\.json$//' | sort | tr '\n' ' ' | sed 's/ $//')" \
    "one file per algorithm, and one of the users to reset"
imported hash
assert_eq "0|0|0" "$(exactly_once hash)" "each generated user in exactly one file"
assert_eq "30" "$(q hash "select count(*) from public.imported")" "the 30 users without a match"
# control: a user listed in two files is caught
q hash "insert into public.imported select 'md5', u from public.imported limit 1" >/dev/null
assert_eq "0|1|0" "$(exactly_once hash)" "control: a user in two files is seen"
imported hash
# each user in the file of its hasher, with the hash and salt Firebase reads
assert_eq "0" "$(q hash "select count(*) from public.imported i join public.kinds k on k.id = (i.u->>'customAttributes')::jsonb->>'clerk_user_id'
  where (i.grp, i.u->>'passwordHash', i.u->>'salt') is distinct from
    (case k.kind when 0 then 'bcrypt' when 1 then 'scrypt' when 2 then 'pbkdf2-sha256-10000' when 4 then 'pbkdf2-sha1-4096'
       when 5 then 'md5' when 6 then 'sha256' when 3 then 'password-reset' when 7 then 'password-reset'
       when 8 then 'password-reset' else 'bcrypt' end,
     case k.kind when 0 then '$B64_BCRYPT' when 1 then '$SCRYPT_HASH' when 2 then 'aGFzaGhhc2hoYXNoaGFzaA=='
       when 4 then '$B64_SHA1' when 5 then '$B64_MD5' when 6 then '$B64_SHA256' end,
     case k.kind when 1 then '$SCRYPT_SALT' when 2 then 'c2FsdHNhbHQ=' when 4 then '$B64_SALTSALT' end)")" \
    "every user's file, passwordHash and salt as Firebase reads them"
# control: the same query finds a wrong hash
assert_eq "1" "$(q hash "select count(*) from (select grp, u - 'passwordHash' || '{\"passwordHash\": \"eA==\"}' as u
  from public.imported where grp = 'md5' limit 1) i join public.kinds k on k.id = (i.u->>'customAttributes')::jsonb->>'clerk_user_id'
  where i.u->>'passwordHash' is distinct from '$B64_MD5'")" "control: a wrong hash is seen"
assert_eq "1" "$(q hash "select count(*) from public.imported where u->>'passwordHash' = '$B64_MD5'
  and u->>'localId' = (select i.u->>'localId' from public.imported i where grp = 'md5' order by 1 limit 1)")" \
    "the md5 user found by its hash"
# only the keys auth:import accepts
assert_eq "" "$(q hash "select distinct k from public.imported, jsonb_object_keys(u) k where k not in ('localId', 'email',
  'emailVerified', 'passwordHash', 'salt', 'displayName', 'photoUrl', 'createdAt', 'lastSignedInAt', 'providerUserInfo',
  'phoneNumber', 'disabled', 'customAttributes', 'mfaInfo')")" "no key firebase auth:import rejects"
# the exact command of each file, logged and kept in migration_log
f() { echo "$LOGS/$run_id-firebase-import-$1.json"; }
for expect in "'$(f bcrypt)' --hash-algo=BCRYPT" "'$(f md5)' --hash-algo=MD5 --rounds=0" \
    "'$(f sha256)' --hash-algo=SHA256 --rounds=1" "'$(f pbkdf2-sha256-10000)' --hash-algo=PBKDF2_SHA256 --rounds=10000" \
    "'$(f pbkdf2-sha1-4096)' --hash-algo=PBKDF_SHA1 --rounds=4096" \
    "'$(f password-reset)'" \
    "'$(f scrypt)' --hash-algo=SCRYPT --hash-key=\"\$(node -p 'require(process.argv[1]).base64_signer_key || \"\"' '$TEST_TMP/scrypt.json')\" --salt-separator=\"\$(node -p 'require(process.argv[1]).base64_salt_separator || \"\"' '$TEST_TMP/scrypt.json')\" --rounds=8 --mem-cost=14"; do
    assert_contains "$err" "hint: import them with: firebase auth:import $expect
" "the command: $expect"
done
assert_eq "7|$(f scrypt)|3" "$(q hash "select jsonb_array_length(metadata->'import_files'),
  (select x->>'file' from jsonb_array_elements(metadata->'import_files') x where x->>'group' = 'scrypt'),
  (select x->>'users' from jsonb_array_elements(metadata->'import_files') x where x->>'group' = 'scrypt')
  from migration_log where phase = 2 and operation like 'backfill%' order by id desc limit 1")" "the files, their users and commands in migration_log"
assert_contains "$(q hash "select metadata->'import_files' from migration_log where phase = 2 and operation like 'backfill%' order by id desc limit 1")" \
    "--hash-algo=PBKDF_SHA1 --rounds=4096" "the commands in migration_log"
# the scrypt command run as a shell would: the secrets come from the file (node reads it)
key=$(eval "node -p 'require(process.argv[1]).base64_signer_key || \"\"' '$TEST_TMP/scrypt.json'")
assert_eq "$SIGNER_KEY" "$key" "the command's --hash-key reads the signer key from the file"
# the reset list: the users whose hasher Firebase cannot verify, with the hasher and why; never the digest
reset=$LOGS/$run_id-password-reset.csv
assert_eq "localId,email,hasher,reason" "$(head -1 "$reset")" "the reset list's header"
assert_eq "$(q hash "select count(*) from public.kinds k join migration_backup.\"clerk-to-firebase:generated\" g on g.clerk_user_id = k.id
  where k.kind in (3, 7, 8)")" "$(($(wc -l <"$reset") - 1))" "the reset list has the argon2id, phpass and over-round pbkdf2 users"
q hash "create table public.reset (uid text, email text, hasher text, reason text)" >/dev/null
_t_psql hash -c "\\copy public.reset from '$reset' csv header" >/dev/null
assert_eq "0" "$(q hash "select count(*) from public.reset r join migration_backup.\"clerk-to-firebase:generated\" g on g.firebase_uid = r.uid
  join public.kinds k on k.id = g.clerk_user_id
  where (r.hasher, k.kind) not in (('argon2id', 7), ('phpass', 8), ('pbkdf2_sha256', 3)) or r.email is distinct from k.email")" \
    "each with its hasher and email"
q hash "update public.reset set hasher = 'bcrypt' where uid = (select min(uid) from public.reset)" >/dev/null
assert_eq "1" "$(q hash "select count(*) from public.reset r join migration_backup.\"clerk-to-firebase:generated\" g on g.firebase_uid = r.uid
  join public.kinds k on k.id = g.clerk_user_id
  where (r.hasher, k.kind) not in (('argon2id', 7), ('phpass', 8), ('pbkdf2_sha256', 3)) or r.email is distinct from k.email")" \
    "control: a wrong hasher in the list is seen"
assert_contains "$(cat "$reset")" "600000 rounds: Firebase takes at most 120000" "why the pbkdf2 user is there"
# the files and the reset list partition the users: the reset list is exactly the password-reset file, with no hash
reset_vs_file() {
    q hash "select count(*) from public.reset r full join (select * from public.imported where grp = 'password-reset') i
      on i.u->>'localId' = r.uid where r.uid is null or i.u is null or i.u ? 'passwordHash' or i.u ? 'salt'"
}
assert_eq "0" "$(reset_vs_file)" "the reset users, and only they, are in the password-reset file, without a password"
q hash "delete from public.reset where uid = (select min(uid) from public.reset)" >/dev/null
assert_eq "1" "$(reset_vs_file)" "control: a user of the file missing from the list is seen"
assert_eq "9" "$(q hash "select metadata->>'password_reset' from migration_log where phase = 2 and operation like 'backfill%'
  order by id desc limit 1")" "the count in the summary"
assert_contains "$err" "9 users are imported without a password Firebase can verify and need a password reset; listed in $reset" \
    "the count in the log"
# no digest in any log or list (the import files carry them, base64, and nothing else does)
for d in SECRETDIGEST "$MD5" "$SHA256" "$SIGNER_KEY" "$B64_BCRYPT" "$SCRYPT_HASH"; do
    assert_eq "" "$(grep -lF -- "$d" "$LOGS"/*.log "$LOGS"/*.csv; grep -F -- "$d" <<<"$err")" "no digest or key in the logs or on stderr: ${d:0:12}..."
done
assert_ne "" "$(grep -lF -- "$B64_BCRYPT" "$LOGS"/*.json)" "control: the grep finds the digest where it belongs (the import file)"
assert_eq "600" "$(stat -c %a "$reset")" "the reset list is readable by its owner only"

test_case "scrypt_firebase digests without --firebase-scrypt-params: refused before anything is written, naming the users"
gen_app noscrypt 40 t46 "$DATA"
must p1 apply -d noscrypt
mapping_of_last10 noscrypt "$TEST_TMP/m.csv"
clerk_csv noscrypt "$TEST_TMP/clerk.csv"
rm -f "$LOGS"/*
before=$(db_state noscrypt)
assert_exit 3 "phase2 apply without the parameters" -- p2 apply -d noscrypt --mapping "$TEST_TMP/m.csv" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.csv" --skip-invalid-values
assert_contains "$LAST_ERR" "scrypt_firebase digests without --firebase-scrypt-params" "the check named"
first=$(q noscrypt "select min(k.id) from public.kinds k join (select clerk_user_id, row_number() over (order by id) as i
  from public.users) u on u.clerk_user_id = k.id where k.kind = 1 and u.i <= 30")
assert_contains "$LAST_ERR" "clerk_user_id '$first'" "a user named"
assert_eq "$before" "$(db_state noscrypt)" "nothing written"
assert_eq "refused" "$(q noscrypt "select status from migration_log where phase = 2 order by id desc limit 1")" "audited as refused"
assert_eq "0" "$(ls "$LOGS"/*-firebase-import-*.json 2>/dev/null | wc -l)" "no import file"
printf '{"base64_signer_key": "%s", "rounds": 9, "mem_cost": 14}\n' "$SIGNER_KEY" >"$TEST_TMP/bad.json"
assert_exit 2 "a parameter out of Firebase's range" -- p2 apply -d noscrypt --mapping "$TEST_TMP/m.csv" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.csv" --firebase-scrypt-params "$TEST_TMP/bad.json"
assert_contains "$LAST_ERR" "\"rounds\" must be an integer from 1 to 8" "names the key"
assert_not_contains "$LAST_ERR" "$SIGNER_KEY" "never the signer key"
assert_eq "$before" "$(db_state noscrypt)" "still nothing written"

# clerk_json DB FILE: Clerk's JSON export (API/CLI shape) of every user of DB, the I'th (by id,
# from 1) with: a verified phone when I is even; a Google account when I % 3 = 0, a GitHub and a
# Discord one when I % 3 = 1; an uploaded image unless I % 4 = 0; banned when I % 5 = 0; TOTP when
# I % 7 = 0, backup codes when I % 7 is 0 or 1; a password (no digest in this export) when I is odd.
clerk_json() {
    _t_psql "$1" >/dev/null <<'SQL'
create table public.cj as select clerk_user_id as id, email, row_number() over (order by id) as i from public.users;
SQL
    q "$1" "select jsonb_pretty(jsonb_agg(jsonb_build_object('id', id, 'first_name', 'First',
      'last_name', 'L' || i, 'username', null, 'primary_email_address_id', 'idn_e' || i,
      'email_addresses', jsonb_build_array(jsonb_build_object('id', 'idn_e' || i, 'email_address', email,
        'verification', jsonb_build_object('status', 'verified'))),
      'primary_phone_number_id', 'idn_p' || i,
      'phone_numbers', jsonb_build_array(jsonb_build_object('id', 'idn_p' || i, 'phone_number', '+1555' || lpad(i::text, 8, '0'),
        'verification', jsonb_build_object('status', case when i % 2 = 0 then 'verified' else 'unverified' end))),
      'external_accounts', case i % 3 when 0 then jsonb_build_array(jsonb_build_object('provider', 'oauth_google',
          'provider_user_id', 'g' || i, 'email_address', email, 'first_name', 'First', 'last_name', 'L' || i,
          'image_url', 'https://img.example.com/g' || i))
        when 1 then jsonb_build_array(jsonb_build_object('provider', 'oauth_github', 'provider_user_id', 'gh' || i,
          'email_address', email), jsonb_build_object('provider', 'oauth_discord', 'provider_user_id', 'd' || i))
        else '[]'::jsonb end,
      'image_url', 'https://img.clerk.com/u' || i, 'has_image', i % 4 <> 0, 'banned', i % 5 = 0,
      'totp_enabled', i % 7 = 0, 'backup_code_enabled', i % 7 in (0, 1), 'two_factor_enabled', i % 7 in (0, 1),
      'password_enabled', i % 2 = 1, 'public_metadata', jsonb_build_object('plan', 'pro'), 'private_metadata', '{}'::jsonb,
      'created_at', 1700000000000, 'last_sign_in_at', null) order by i)) from public.cj" >"$2"
}

test_case "Clerk's JSON export: social accounts as providerUserInfo, banned as disabled, the verified phone, the re-enrol list"
gen_app json 40 t46 "$DATA"
must p1 apply -d json
mapping_of_last10 json "$TEST_TMP/m.csv"
clerk_json json "$TEST_TMP/clerk.json"
rm -f "$LOGS"/*
assert_exit 0 "phase2 apply with the JSON export" -- p2 apply -d json --mapping "$TEST_TMP/m.csv" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.json"
err=$LAST_ERR
run_id=$(q json "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
assert_contains "$err" "social accounts of the Clerk export are of providers Firebase does not import" "the Discord accounts are said"
imported json
assert_eq "0|0|0" "$(exactly_once json)" "each generated user in exactly one file"
# the expected record of each user, built here from the rules above, against the file's exactly
expected_sql="select c.id, jsonb_strip_nulls(jsonb_build_object('localId', g.firebase_uid, 'email', c.email,
    'displayName', 'First L' || c.i, 'photoUrl', case when c.i % 4 <> 0 then 'https://img.clerk.com/u' || c.i end,
    'phoneNumber', case when c.i % 2 = 0 then '+1555' || lpad(c.i::text, 8, '0') end,
    'disabled', case when c.i % 5 = 0 then true end,
    'customAttributes', jsonb_build_object('clerk_user_id', c.id)::text,
    'providerUserInfo', case c.i % 3 when 0 then jsonb_build_array(jsonb_build_object('providerId', 'google.com',
        'rawId', 'g' || c.i, 'email', c.email, 'displayName', 'First L' || c.i, 'photoUrl', 'https://img.example.com/g' || c.i))
      when 1 then jsonb_build_array(jsonb_build_object('providerId', 'github.com', 'rawId', 'gh' || c.i, 'email', c.email)) end)) as u
  from public.cj c join migration_backup.\"clerk-to-firebase:generated\" g on g.clerk_user_id = c.id"
assert_eq "30|0" "$(q json "select count(*), count(*) filter (where i.u is distinct from e.u
    || jsonb_build_object('customAttributes', i.u->>'customAttributes'))
  from ($expected_sql) e left join public.imported i on i.u->>'localId' = e.u->>'localId'")" \
    "every user's record exactly as expected (customAttributes compared as JSON below)"
assert_eq "0" "$(q json "select count(*) from ($expected_sql) e join public.imported i on i.u->>'localId' = e.u->>'localId'
  where (i.u->>'customAttributes')::jsonb is distinct from (e.u->>'customAttributes')::jsonb")" "customAttributes: the Clerk id only"
# control: a record with one value changed is seen
assert_eq "1" "$(q json "select count(*) from ($expected_sql) e join (select u || '{\"disabled\": true}' as u from public.imported
  where not u ? 'disabled' limit 1) i on i.u->>'localId' = e.u->>'localId' where i.u is distinct from e.u
    || jsonb_build_object('customAttributes', i.u->>'customAttributes')")" "control: a user wrongly disabled is seen"
assert_ne "0" "$(q json "select count(*) from public.imported where u->'providerUserInfo'->0->>'providerId' = 'google.com'")" \
    "the data has Google accounts"
assert_ne "0" "$(q json "select count(*) from public.imported where (u->>'disabled')::boolean")" "and banned users"
# the re-enrol list: TOTP or backup codes
mfa=$LOGS/$run_id-mfa-reenrol.csv
q json "create table public.mfa (uid text, email text, factors text)" >/dev/null
_t_psql json -c "\\copy public.mfa from '$mfa' csv header" >/dev/null
assert_eq "localId,email,second_factors" "$(head -1 "$mfa")" "the re-enrol list's header"
assert_eq "0|0" "$(q json "select (select count(*) from public.cj c join migration_backup.\"clerk-to-firebase:generated\" g
    on g.clerk_user_id = c.id left join public.mfa m on m.uid = g.firebase_uid
    where m.factors is distinct from case c.i % 7 when 0 then 'totp, backup_code' when 1 then 'backup_code' end)
  || '|' || (select count(*) from public.mfa m where not exists
    (select 1 from migration_backup.\"clerk-to-firebase:generated\" g where g.firebase_uid = m.uid))")" \
    "exactly the users with TOTP or backup codes, with their factors"
# a password without its digest (this export has none): imported without one and listed for a reset
q json "create table public.reset (uid text, email text, hasher text, reason text)" >/dev/null
_t_psql json -c "\\copy public.reset from '$LOGS/$run_id-password-reset.csv' csv header" >/dev/null
assert_eq "0" "$(q json "select count(*) from public.cj c join migration_backup.\"clerk-to-firebase:generated\" g
    on g.clerk_user_id = c.id where (c.i % 2 = 1) <> exists (select 1 from public.reset r where r.uid = g.firebase_uid
    and r.reason = 'the export has no password digest')")" "the users with a password, and only they, are in the reset list"

test_case "values Firebase would refuse: exit 3 before any write naming each user; --skip-invalid-values leaves the field out and lists it"
gen_app bad 40 t46 "$DATA"
must p1 apply -d bad
mapping_of_last10 bad "$TEST_TMP/m.csv"
clerk_json bad "$TEST_TMP/clerk.json"
# the first six users (all generated): a phone not E.164, a photo URL that is not one, a 300-character name,
# an email Firebase cannot parse, and twice the same email
ids=($(q bad "select clerk_user_id from public.users order by id limit 6"))
sed -i "s/\"phone_number\": \"+155500000002\"/\"phone_number\": \"+0155500000002\"/; s#\"image_url\": \"https://img.clerk.com/u3\"#\"image_url\": \"img.clerk.com/u3\"#" "$TEST_TMP/clerk.json"
sed -i "s/\"last_name\": \"L6\"/\"last_name\": \"$(printf 'x%.0s' {1..300})\"/" "$TEST_TMP/clerk.json"
q bad "update public.users set email = 'no-at-sign.example.com' where clerk_user_id = '${ids[3]}';
  update public.users set email = 'Twin@Example.com' where clerk_user_id = '${ids[4]}';
  update public.users set email = ' twin@example.com' where clerk_user_id = '${ids[5]}'" >/dev/null
rm -f "$LOGS"/*
before=$(db_state bad)
assert_exit 3 "phase2 apply refuses" -- p2 apply -d bad --mapping "$TEST_TMP/m.csv" --generate-missing --clerk-export "$TEST_TMP/clerk.json"
for check in "phone number not E.164\" failed for the import file's \"phoneNumber\": 1 found" \
    "photo URL not a URL\" failed for the import file's \"photoUrl\": 1 found" \
    "display name over 256 characters\" failed for the import file's \"displayName\"" \
    "email not valid\" failed for the import file's \"email\": 1 found" \
    "email shared with another account\" failed for the import file's \"email\": 1 found" \
    "clerk_user_id '${ids[1]}': not + and 2 to 15 digits" "clerk_user_id '${ids[2]}': not an http(s) URL" \
    "clerk_user_id '$(q bad "select max(x) from unnest(array['${ids[4]}', '${ids[5]}']) x")': another user of the import files has this email" \
    "clerk_user_id '${ids[3]}': not an email address"; do
    assert_contains "$LAST_ERR" "$check" "named: $check"
done
assert_contains "$LAST_ERR" "nothing was changed" "says nothing changed"
assert_eq "$before" "$(db_state bad)" "nothing written"
assert_eq "refused|5" "$(q bad "select status, jsonb_array_length(metadata->'invalid_values') from migration_log where phase = 2
  and operation like 'backfill%' order by id desc limit 1")" "refused, the five findings kept in migration_log"
assert_eq "0" "$(ls "$LOGS"/*-firebase-import-*.json 2>/dev/null | wc -l)" "no import file"
assert_exit 0 "with --skip-invalid-values" -- p2 apply -d bad --mapping "$TEST_TMP/m.csv" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.json" --skip-invalid-values
imported bad
absent() { q bad "select count(*) from public.imported i join migration_backup.\"clerk-to-firebase:generated\" g
  on g.firebase_uid = i.u->>'localId' where g.clerk_user_id = '$1' and i.u ? '$2'"; }
# of the twins, the one with the lower Clerk id keeps the email (compared as the database compares)
read -r keeps loses <<<"$(q bad "select min(x) || ' ' || max(x) from unnest(array['${ids[4]}', '${ids[5]}']) x")"
assert_eq "0 0 0 0 0 1" "$(absent "${ids[1]}" phoneNumber) $(absent "${ids[2]}" photoUrl) $(absent "${ids[5]}" displayName) \
$(absent "${ids[3]}" email) $(absent "$loses" email) $(absent "$keeps" email)" \
    "each bad field left out of its user's record (the first of the twins keeps the email)"
assert_eq "1" "$(absent "${ids[3]}" phoneNumber)" "control: a user with a good phone keeps it"
list=$(ls "$LOGS"/*-invalid-values.csv)
assert_eq "5" "$(($(wc -l <"$list") - 1))" "five values listed"
assert_contains "$(cat "$list")" ",,phoneNumber,import file,phone number not E.164,${ids[1]}" "listed by Clerk id (no uid yet), field and why"
assert_not_contains "$(cat "$list")" "+0155500000002" "never the value"
assert_eq "0|0|0" "$(exactly_once bad)" "each generated user still in exactly one file"

# claims_plan FILE CLAIMS_JSON: the shipped plan with CLAIMS_JSON as its backfill's custom_claims
claims_plan() {
    must_write "$1" jq --argjson c "$2" '(.operations[] | select(.op == "backfill_from_mapping")) += {custom_claims: $c}' \
        "$ROOT/plans/clerk-to-firebase.json"
}

test_case "custom_claims: Clerk metadata the plan maps carried into customAttributes, the 1,000-byte limit in bytes found before any write (exit 3 naming the user; --skip-invalid-values leaves the claims out and lists them); the rest of the metadata stays out"
SHIPPED=$PLAN
PLAN=$TEST_TMP/claims-plan.json
claims_plan "$PLAN" '{"role": "public_metadata.role", "tier": "private_metadata.billing.tier"}'
gen_app claims 40 t46 "$DATA"
must p1 apply -d claims
mapping_of_last10 claims "$TEST_TMP/m.csv"
clerk_json claims "$TEST_TMP/clerk0.json"
# user I (by id, from 1): role admin when I is odd, member otherwise; a tier I in private_metadata.billing unless
# I % 3 = 0; a note in private_metadata the plan does not map. User 3 (no tier): a role that makes its
# customAttributes exactly 1,000 bytes; user 6 (no tier): 1,000 characters but 1,001 bytes (a final é).
idlen=$(q claims "select length(clerk_user_id) from public.users order by id limit 1")
fill=$((1000 - 30 - idlen))
must_write "$TEST_TMP/clerk.json" jq --argjson n "$fill" 'to_entries | map((.key + 1) as $i | .value
  | .public_metadata = {plan: "pro", role: (if $i == 3 then "a" * $n elif $i == 6 then ("a" * ($n - 1)) + "é"
      elif $i % 2 == 1 then "admin" else "member" end)}
  | .private_metadata = ({note: "UNMAPPEDNOTE"} + (if $i % 3 == 0 then {} else {billing: {tier: $i}} end)))' "$TEST_TMP/clerk0.json"
ids=($(q claims "select clerk_user_id from public.users order by id limit 6"))
rm -f "$LOGS"/*
before=$(db_state claims)
assert_exit 3 "phase2 apply refuses the user over 1,000 bytes" -- p2 apply -d claims --mapping "$TEST_TMP/m.csv" \
    --generate-missing --clerk-export "$TEST_TMP/clerk.json"
assert_contains "$LAST_ERR" "customAttributes over 1,000 bytes\" failed for the import file's \"customAttributes\": 1 found" "the check, one user"
assert_contains "$LAST_ERR" "clerk_user_id '${ids[5]}': 1001 bytes with the plan's custom_claims" "the user named, its size in bytes"
assert_not_contains "$LAST_ERR" "'${ids[2]}'" "the user at exactly 1,000 bytes passes"
assert_not_contains "$LAST_ERR" "aaaaaaaaaa" "never the claim's value"
assert_eq "$before" "$(db_state claims)" "nothing written"
assert_eq "0" "$(ls "$LOGS"/*-firebase-import-*.json 2>/dev/null | wc -l)" "no import file"
# with --log-format=json and a hook: the import commands on the JSON lines and in the end event (below)
EVENTS=$TEST_TMP/events.jsonl
: >"$EVENTS"
assert_exit 0 "with --skip-invalid-values, --log-format=json and a hook" -- p2 apply -d claims --mapping "$TEST_TMP/m.csv" \
    --generate-missing --clerk-export "$TEST_TMP/clerk.json" --skip-invalid-values --log-format=json --hook "cat >> '$EVENTS'"
err=$LAST_ERR
imported claims
q claims "create table public.meta as select c.key::int as i, k.clerk_user_id as id, c.value as u
  from jsonb_array_elements((\$j\$$(cat "$TEST_TMP/clerk.json")\$j\$)::jsonb) with ordinality c(value, key)
  join public.users k on k.clerk_user_id = c.value->>'id'" >/dev/null
claims_expected="select g.firebase_uid, case when m.i = 6 then jsonb_build_object('clerk_user_id', m.id)
    else jsonb_strip_nulls(jsonb_build_object('clerk_user_id', m.id, 'role', m.u->'public_metadata'->'role',
      'tier', m.u->'private_metadata'->'billing'->'tier')) end as attrs
  from public.meta m join migration_backup.\"clerk-to-firebase:generated\" g on g.clerk_user_id = m.id"
assert_eq "30|0" "$(q claims "select count(*), count(*) filter (where (i.u->>'customAttributes')::jsonb is distinct from e.attrs)
  from ($claims_expected) e left join public.imported i on i.u->>'localId' = e.firebase_uid")" \
    "every generated user's customAttributes: its Clerk id and the claims the plan maps that it has"
assert_eq "1" "$(q claims "select count(*) from ($claims_expected) e join (select u || jsonb_build_object('customAttributes',
    ((u->>'customAttributes')::jsonb || '{\"tier\": 99}')::text) as u from public.imported
    where u->>'customAttributes' like '%\"tier\"%' limit 1) i on i.u->>'localId' = e.firebase_uid
  where (i.u->>'customAttributes')::jsonb is distinct from e.attrs")" "control: a wrong claim is seen"
assert_eq "{\"clerk_user_id\":\"${ids[0]}\",\"role\":\"admin\",\"tier\":1}" "$(q claims "select i.u->>'customAttributes'
  from public.imported i join migration_backup.\"clerk-to-firebase:generated\" g on g.firebase_uid = i.u->>'localId'
  where g.clerk_user_id = '${ids[0]}'")" "the text as Firebase reads it: one line, keys sorted"
assert_eq "1000" "$(q claims "select octet_length(i.u->>'customAttributes') from public.imported i
  join migration_backup.\"clerk-to-firebase:generated\" g on g.firebase_uid = i.u->>'localId' where g.clerk_user_id = '${ids[2]}'")" \
    "the user at the limit is imported with its claims: exactly 1,000 bytes"
list=$(ls "$LOGS"/*-invalid-values.csv)
assert_eq "1" "$(grep -c ",customAttributes,import file,\"customAttributes over 1,000 bytes\",${ids[5]}$" "$list")" \
    "the user over the limit listed, by Clerk id"
assert_eq "" "$(grep -l -e UNMAPPEDNOTE -e 'plan\\":\\"pro' "$LOGS"/*.json)" "metadata the plan does not map stays out of the files"
assert_ne "" "$(grep -l '\\"role\\":\\"member\\"' "$LOGS"/*.json)" "control: the same grep finds a mapped value"

test_case "the import commands in --log-format=json's lines, the phase's migration_log row and the hook's end event"
run_id=$(q claims "select run_id from migration_log where phase = 2 and operation = 'apply' and status = 'done'")
step_files=$(q claims "select metadata->'import_files' from migration_log where run_id = '$run_id' and operation like 'backfill%'")
assert_ne "" "$step_files" "the step's import_files"
assert_eq "t" "$(q claims "select metadata->'import_files' = \$s\$$step_files\$s\$::jsonb from migration_log
  where run_id = '$run_id' and phase = 2 and operation = 'apply'")" "the phase's row has the same import_files"
# each "import them with" line of stderr carries its file, group, users and command as figures
q claims "create table public.lines as select l::jsonb as j from regexp_split_to_table(\$e\$$err\$e\$, E'\\n') l where l <> ''" >/dev/null
assert_eq "t|$(q claims "select jsonb_array_length(\$s\$$step_files\$s\$::jsonb)")" "$(q claims "select
  coalesce(jsonb_agg(j->'figures' order by j->'figures'->>'group') = (select jsonb_agg(x order by x->>'group')
    from jsonb_array_elements(\$s\$$step_files\$s\$::jsonb) x), false), count(*)
  from public.lines where j->>'level' = 'hint' and j->>'message' like 'import them with: firebase auth:import %'")" \
    "every import command's JSON line: figures as in migration_log, one per file"
assert_eq "0" "$(q claims "select count(*) from public.lines where j->>'level' = 'hint' and j->>'message' like 'import them with:%'
  and j->>'message' <> 'import them with: ' || (j->'figures'->>'command')")" "the message and its figures name the same command"
# the hook's end event: the import files with their commands, as migration_log has them
end_event=$(grep '"event":"end"' "$EVENTS")
assert_eq "done|t" "$(q claims "select (\$e\$$end_event\$e\$::jsonb)->>'status', (\$e\$$end_event\$e\$::jsonb)->'figures'->'import_files'
  = \$s\$$step_files\$s\$::jsonb")" "the end event's figures.import_files"
assert_eq "f" "$(q claims "select (\$e\$$end_event\$e\$::jsonb)->'figures'->'import_files'
  = jsonb_set(\$s\$$step_files\$s\$::jsonb, '{0,command}', '\"firebase auth:import x\"')")" "control: a different command is seen"
assert_contains "$end_event" "--hash-algo=BCRYPT" "the command in the event"

test_case "custom_claims refused: a reserved claim at plan load (exit 2, nothing created); Clerk's dashboard CSV, which has no metadata (exit 2)"
claims_plan "$TEST_TMP/bad-plan.json" '{"role": "public_metadata.role", "aud": "public_metadata.audience"}'
gen_app claimsbad 40 t46 "$DATA"
before=$(db_state claimsbad)
assert_exit 2 "phase1 apply with a reserved claim" -- phase 1 apply -d claimsbad --plan "$TEST_TMP/bad-plan.json" --logs-dir "$LOGS"
assert_contains "$LAST_ERR" "custom_claims.\"aud\": a reserved claim" "names the claim"
assert_contains "$LAST_ERR" "bad-plan.json" "and the plan's file"
assert_eq "$before" "$(db_state claimsbad)" "nothing created"
claims_plan "$TEST_TMP/bad-plan.json" '{"email": "email_addresses"}'
assert_exit 2 "a claim from outside the metadata" -- phase 2 plan --plan "$TEST_TMP/bad-plan.json"
assert_contains "$LAST_ERR" "custom_claims.\"email\": the path must start with public_metadata, private_metadata or unsafe_metadata" "says where a path starts"
must p1 apply -d claimsbad
mapping_of_last10 claimsbad "$TEST_TMP/m.csv"
clerk_csv claimsbad "$TEST_TMP/clerk.csv"
before=$(db_state claimsbad)
assert_exit 2 "the dashboard CSV with custom_claims" -- p2 apply -d claimsbad --mapping "$TEST_TMP/m.csv" --generate-missing \
    --clerk-export "$TEST_TMP/clerk.csv" --firebase-scrypt-params "$TEST_TMP/scrypt.json"
assert_contains "$LAST_ERR" "the plan maps custom_claims from Clerk's metadata, which the dashboard CSV" "says why"
assert_eq "$before" "$(db_state claimsbad)" "nothing written"
PLAN=$SHIPPED
