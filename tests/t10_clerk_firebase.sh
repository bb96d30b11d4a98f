# t10_clerk_firebase.sh -- the Clerk to Firebase job end to end on the real server: the
# whole sequence and its rollback, re-runs, refusals (NULLs, duplicates, dependent views),
# and rows the application writes between phase1 and phase3.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS
# fresh_app DB [USERS]: the legacy app schema with generated users (same seed every time)
fresh_app() { gen_app "$1" "${2:-600}" t10 "$DATA"; }

test_case "whole sequence fills firebase_uid as the export says, then rollback 3,2,1 gives back the start"
fresh_app seq
start=$(db_state seq)
assert_exit 0 "phase1 apply" -- p1 apply -d seq
after1=$(db_state seq)
assert_eq "6" "$(q seq "select count(*) from pg_attribute where attrelid = 'public.users'::regclass and attname in
  ('firebase_uid','display_name','photo_url','email_verified','phone_number','last_sign_in_at') and not attnotnull")" \
  "six nullable columns added"
assert_eq "t" "$(q seq "select indisvalid from pg_index where indexrelid = 'public.users_firebase_uid_idx'::regclass")" \
  "index built and valid"
assert_exit 0 "phase2 apply" -- p2 apply -d seq --mapping "$DATA/firebase-export.json" --generate-missing \
  --clerk-export "$DATA/clerk-export.csv" --batch-size 100
q seq "create table public.expected (id text, clerk text, uid text)" >/dev/null
must q seq "\\copy public.expected from '$DATA/expected.csv' csv header"
assert_eq "0" "$(q seq "select count(*) from public.expected e join public.users u on u.id = e.id
  where e.uid is not null and u.firebase_uid is distinct from e.uid")" "every exported user got the uid of the export"
assert_eq "0" "$(q seq "select count(*) from public.users where firebase_uid is null")" "missing users got generated uids"
assert_eq "0" "$(q seq "select count(*) from public.expected e join public.users u on u.id = e.id
  where e.uid is null and u.firebase_uid !~ '^[A-Za-z0-9]{28}\$'")" "generated uids are 28 letters and digits"
imported=$(cat "$LOGS"/*-firebase-import-*.json)
assert_eq "$(q seq "select count(*) from public.expected where uid is null")" \
  "$(grep -c '"localId"' <<<"$imported")" "import file has exactly the users given new uids"
assert_contains "$imported" '"passwordHash": "JDJhJDEw' "bcrypt digests from the Clerk export, base64 (\$2a\$10...)"
psql -X -q -d seq -v ON_ERROR_STOP=1 >/dev/null <<SQL || _t_fail "could not read the export in SQL"
\\set export \`cat "$DATA/firebase-export.json"\`
create table public.fb as select e->>'localId' as uid, e->>'displayName' as dn, (e->>'emailVerified')::boolean as ev,
  e->>'photoUrl' as pu, e->>'phoneNumber' as ph, to_timestamp((e->>'lastSignedInAt')::bigint / 1000.0) as ls
  from jsonb_array_elements((:'export')::jsonb->'users') e;
SQL
assert_eq "$(q seq "select count(*) from public.expected where uid is not null")|0" \
  "$(q seq "select count(*), count(*) filter (where (u.display_name, u.email_verified, u.photo_url, u.phone_number,
    u.last_sign_in_at) is distinct from (fb.dn, fb.ev, fb.pu, fb.ph, fb.ls))
    from public.users u join public.fb on fb.uid = u.firebase_uid")" \
  "profile columns of every exported user equal the export"
assert_exit 0 "phase2 status" -- p2 status -d seq
assert_contains "$(sed -n '/^phase2: applied$/,/^$/p' <<<"$LAST_OUT" | grep -v '^  last run: ')" "phase2: applied
  backfill_from_mapping firebase_uid: 600 of 600 rows scanned (100.0%), done; 600 changed in all (1 run), 0 without a match" \
  "status: rows scanned, filled, unmatched"
assert_exit 0 "phase1 status --json" -- p1 status -d seq --json
assert_eq "true|false|done|600" "$(psql -X -A -t -q -d seq -v j="$LAST_OUT" <<<"select (:'j'::jsonb)->'phases'->1->>'applied',
  (:'j'::jsonb)->'phases'->2->>'applied', (:'j'::jsonb)->'phases'->1->'last_run'->>'status',
  (:'j'::jsonb)->'phases'->1->'operations'->0->>'rows_changed'")" "status --json: the same as an object"
q seq "drop table public.fb" >/dev/null
q seq "drop table public.expected" >/dev/null
after2=$(db_state seq)
assert_exit 0 "phase3 check" -- p3 check -d seq
assert_exit 0 "phase3 apply" -- p3 apply -d seq
assert_eq "t|" "$(q seq "select attnotnull, '' from pg_attribute where attrelid = 'public.users'::regclass and attname = 'firebase_uid'")" "firebase_uid NOT NULL"
assert_eq "UNIQUE (firebase_uid)" "$(q seq "select pg_get_constraintdef(oid) from pg_constraint where conname = 'users_firebase_uid_key'")" "unique constraint"
assert_eq "" "$(q seq "select attname from pg_attribute where attrelid = 'public.users'::regclass and attname = 'clerk_user_id' and not attisdropped")" "clerk_user_id dropped"
assert_eq "0" "$(q seq "select count(*) from pg_trigger where tgrelid = 'public.users'::regclass and not tgisinternal")" "sync trigger removed"
assert_eq "$(q seq "select count(*) from public.users")" \
  "$(q seq "select count(*) from migration_backup.\"clerk-to-firebase:drop:clerk_user_id\" where value is not null")" \
  "every clerk_user_id kept in migration_backup"
assert_eq "apply|done
apply|done
apply|done" "$(q seq "select operation, status from migration_log where operation = 'apply' order by phase")" "migration_log: each phase applied"
assert_eq "0" "$(q seq "select count(*) from migration_log where db_user is null or tool_version is null or run_id is null or finished_at is null")" "migration_log rows complete"
assert_exit 0 "phase3 rollback" -- p3 rollback -d seq
assert_eq "$after2" "$(db_state seq)" "after phase3 rollback: schema and every table as after phase2"
assert_exit 0 "phase2 rollback" -- p2 rollback -d seq
assert_eq "$after1" "$(db_state seq)" "after phase2 rollback: schema and every table as after phase1"
assert_exit 0 "phase1 rollback" -- p1 rollback -d seq
assert_eq "$start" "$(db_state seq)" "schema and every table as at the start"
assert_eq "rollback drop_column clerk_user_id|600
rollback backfill_from_mapping firebase_uid|600" "$(q seq "select operation, rows_done from migration_log
  where operation like 'rollback %' and rows_done > 0 order by id")" "rollbacks record the rows they restored"
assert_eq "0" "$(q seq "select count(*) from migration_log where phase = 3 and operation <> 'apply' and metadata ? 'findings'
  and operation not in ('check')")" "phase3 apply keeps its findings on its own row, not on a step's"
assert_eq "0" "$(q seq "select count(*) from migration_backup.phasemig_objects")" "nothing of phasemig left registered"
assert_eq "clerk-to-firebase:generated
clerk-to-firebase:import_files" "$(q seq "select tablename from pg_tables where schemaname = 'migration_backup'
  and tablename not in ('phasemig_objects', 'phasemig_control') order by 1")" "backup tables removed, but for the generated uids and their import files (kept for the next apply)"

test_case "each subcommand run twice is a no-op the second time (a rollback again: exit 2, nothing to roll back)"
fresh_app twice
for step in "p1 apply" "p2 apply --mapping $DATA/mapping.csv --generate-missing" "p3 apply" "p3 rollback" "p2 rollback" "p1 rollback"; do
    assert_exit 0 "$step (first)" -- $step -d twice
    after_first=$(db_state twice)
    if [[ $step == *rollback ]]; then
        assert_exit 2 "$step (second)" -- $step -d twice
        assert_contains "$LAST_ERR" "nothing to roll back" "$step again says there is nothing to undo"
    else
        assert_exit 0 "$step (second)" -- $step -d twice
    fi
    assert_eq "$after_first" "$(db_state twice)" "$step again changes nothing"
done

test_case "phase3 refuses with NULLs present: exit 3, counts and sample keys, schema unchanged"
fresh_app nulls
must p1 apply -d nulls
must p2 apply -d nulls --mapping "$DATA/firebase-export.json"
missing=$(q nulls "select count(*) from public.users where firebase_uid is null")
assert_ne 0 "$missing" "some users are not in the export"
ls "$LOGS"/*-unmatched.csv >/dev/null 2>&1 || _t_fail "no unmatched list written"
before=$(db_state nulls)
assert_exit 3 "phase3 check refuses" -- p3 check -d nulls
assert_contains "$LAST_ERR" "hint: give those rows a value" "the refusal says what to do next"
assert_contains "$LAST_ERR" "RUN-ID-unmatched.csv: add them to the mapping, or run phase2 apply --generate-missing" \
    "the unmatched list and --generate-missing"
assert_contains "$LAST_ERR" "\"firebase_uid\": $missing found" "count of NULL uids"
first_key=$(q nulls "select id from public.users where firebase_uid is null order by id limit 1")
assert_contains "$LAST_ERR" "'$first_key'" "a sample key"
assert_exit 3 "phase3 apply refuses" -- p3 apply -d nulls
assert_eq "$before" "$(db_state nulls)" "nothing changed"
assert_eq "refused" "$(q nulls "select status from migration_log where phase = 3 order by id desc limit 1")" "audited as refused"

test_case "phase3 refuses duplicate uids and duplicate emails (compared lower-cased)"
fresh_app dups
must p1 apply -d dups
must p2 apply -d dups --mapping "$DATA/firebase-export.json" --generate-missing
q dups "update public.users set firebase_uid = 'SAMEUID' where id in (select id from public.users order by id limit 2)" >/dev/null
q dups "update public.users set email = upper(e.email) from (select email from public.users order by id desc limit 1) e
        where id = (select id from public.users order by id desc offset 1 limit 1)" >/dev/null
before=$(db_state dups)
assert_exit 3 "phase3 check" -- p3 check -d dups
assert_contains "$LAST_ERR" 'check "duplicate" failed for "public"."users"."firebase_uid": 2 found' "duplicate uids"
assert_contains "$LAST_ERR" "(value 'SAMEUID')" "duplicated value shown"
assert_contains "$LAST_ERR" '"email" (compared lower-cased): 2 found' "duplicate emails"
assert_exit 3 "phase3 apply" -- p3 apply -d dups
assert_eq "$before" "$(db_state dups)" "nothing changed"

test_case "a view on the column to drop stops phase3 before any change, naming it"
fresh_app view
must p1 apply -d view
must p2 apply -d view --mapping "$DATA/mapping.csv" --generate-missing
q view 'create view public."clerk ids" as select id, clerk_user_id from public.users' >/dev/null
before=$(db_state view)
assert_exit 3 "phase3 apply" -- p3 apply -d view
assert_contains "$LAST_ERR" 'view public."clerk ids"' "the view is named"
assert_contains "$LAST_ERR" "hint: save each dependent view's definition (pg_get_viewdef), drop it" "what to do about it"
assert_contains "$LAST_ERR" "after a phase3 rollback, re-create it as it was" "and after a rollback"
assert_eq "$before" "$(db_state view)" "nothing changed"

test_case "rows the application writes between phase1 and phase3 get their uid"
fresh_app live
must p1 apply -d live
must p2 apply -d live --mapping "$DATA/firebase-export.json"
# the application's own role, which cannot read migration_backup, writes through the triggers
q live 'do $$ begin create role phasemig_app; exception when duplicate_object then null; end $$;
  grant usage on schema public to phasemig_app; grant select, insert, update, delete on public.users to phasemig_app' >/dev/null
assert_exit 0 "an unprivileged application role can still insert and update" -- q live "set role phasemig_app;
  insert into public.users (id, clerk_user_id, email) values ('00000000-app', 'user_app', 'app@example.com');
  update public.users set email = 'app2@example.com' where id = '00000000-app'"
# a user in the export that the database did not have yet: the trigger fills it at once
read -r clerk uid <<<"$(awk -F, 'NR > 1 && $3 != "" { print $2, $3; exit }' "$DATA/expected.csv")"
q live "delete from public.users where clerk_user_id = '$clerk'" >/dev/null
q live "insert into public.users (clerk_user_id, email) values ('$clerk', 'new@example.com')" >/dev/null
assert_eq "$uid" "$(q live "select firebase_uid from public.users where clerk_user_id = '$clerk'")" "filled on insert by the trigger"
# a user not in this export: phase3 check catches it; once the export has it, a re-run of phase2 fills it
q live "insert into public.users (id, clerk_user_id, email) values ('00000000-late-1', 'user_late', 'late@example.com')" >/dev/null
assert_exit 3 "phase3 check" -- p3 check -d live
assert_contains "$LAST_ERR" "'00000000-late-1'" "the new row is named"
{ echo "clerk_user_id,firebase_uid"; tail -n +2 "$DATA/mapping.csv"; echo "user_late,LATEUID0000000000000000000001"; } > "$TEST_TMP/late.csv"
assert_exit 0 "phase2 re-run" -- p2 apply -d live --mapping "$TEST_TMP/late.csv" --generate-missing
assert_eq "LATEUID0000000000000000000001" "$(q live "select firebase_uid from public.users where id = '00000000-late-1'")" "filled by the re-run"
# an unknown clerk id gets no guess; changing it to a known one fills the row through the trigger
q live "insert into public.users (id, clerk_user_id, email) values ('00000000-late-2', 'user_unknown', 'l2@example.com')" >/dev/null
assert_eq "" "$(q live "select firebase_uid from public.users where id = '00000000-late-2'")" "no guess for an unknown id"
q live "update public.users set clerk_user_id = null where id = '00000000-late-1'" >/dev/null
q live "update public.users set firebase_uid = null where id = '00000000-late-1'" >/dev/null
q live "update public.users set clerk_user_id = 'user_late' where id = '00000000-late-2'" >/dev/null
assert_eq "LATEUID0000000000000000000001" "$(q live "select firebase_uid from public.users where id = '00000000-late-2'")" "filled on update by the trigger"

test_case "the batches' set-based matching gives every row what the sync trigger's per-row rules give it"
fresh_app sameasrow 2000
assert_exit 0 "phase1 apply" -- p1 apply -d sameasrow
assert_exit 0 "phase2 apply" -- p2 apply -d sameasrow --mapping "$DATA/firebase-export.json" --batch-size 300
cols="firebase_uid, display_name, photo_url, email_verified, phone_number, last_sign_in_at"
by_batches=$(q sameasrow "select md5(string_agg(row($cols)::text, ',' order by id)), count(firebase_uid) from public.users")
# empty the six columns (the trigger fires on the Clerk id and the email only), then have the
# trigger fill every row by its per-row rules
q sameasrow "update public.users set ($cols) = (null, null, null, null, null, null);
  update public.users set clerk_user_id = clerk_user_id, email = email" >/dev/null
assert_eq "$by_batches" "$(q sameasrow "select md5(string_agg(row($cols)::text, ',' order by id)), count(firebase_uid) from public.users")" \
    "same values on every row, by Clerk id and by email alike"
assert_ne "0" "$(q sameasrow "select count(*) from public.users u where firebase_uid is not null and not exists
  (select 1 from migration_backup.\"clerk-to-firebase:source\" s where s.clerk_user_id = u.clerk_user_id)")" \
    "the data has users matched by email only"
