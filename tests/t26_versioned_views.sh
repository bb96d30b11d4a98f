# t26_versioned_views.sh -- the versioned schemas of views of both jobs: from phase1 on a
# before and an after schema (column lists and types, security_invoker, defaults, grants),
# reads and writes through them with search_path, prepared statements kept across the swap
# and its rollback, finalize refused while a session holds a before view, status, and
# phase1 rollback leaving no trace.
source "$(dirname "$0")/lib.sh"

UPLAN=$ROOT/plans/string-to-uuid.json
CPLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$UPLAN" --logs-dir "$LOGS" -d "$db"; }
c() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$CPLAN" --logs-dir "$LOGS" -d "$db"; }
UB=string_to_uuid_before UA=string_to_uuid_after
CB=clerk_to_firebase_before CA=clerk_to_firebase_after
# cols DB VIEW: the view's columns and types, in order
cols() { q "$1" "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum) from pg_attribute where attrelid = '$2'::regclass and attnum > 0 and not attisdropped"; }
# as_app DB SCHEMA SQL: SQL as the application's role with the schema as its search_path
as_app() { q "$1" "set role t26_app; set search_path = $2; $3"; }
app_role() {
    q "$1" "do \$\$ begin create role t26_app; exception when duplicate_object then null; end \$\$;
      grant select, insert, update, delete on public.users, public.journal_entries, public.tags, public.reminders to t26_app" >/dev/null
}
# holder DB VIEW: a session (application_name t26_holder) holding a lock on VIEW until killed
holder() {
    PGAPPNAME=t26_holder psql -X -q -d "$1" -c "begin; select count(*) from $2; select pg_sleep(60)" >/dev/null 2>&1 &
    wait_for_sql "$1" "select count(*) from pg_locks l join pg_stat_activity a using (pid) where a.application_name = 't26_holder' and l.relation = '$2'::regclass" 1
}
unhold() { q "$1" "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 't26_holder'" >/dev/null; wait 2>/dev/null; }

# Two psql sessions kept open across the phases (their prepared statements with them), one
# per application version: each on its own search_path (a prepared statement is parsed again
# when search_path changes). Commands go through a FIFO, output to a file; sync_sessions N
# waits until both have run everything sent before.
session_open() {   # session_open DB FD NAME
    must mkfifo "$TEST_TMP/$3.in"
    psql -X -A -t -q -d "$1" <"$TEST_TMP/$3.in" >"$TEST_TMP/$3.out" 2>&1 &
    SESSION_PIDS+=($!)
    eval "exec $2>\"\$TEST_TMP/$3.in\""
}
SESSION_PIDS=()
sync_sessions() {
    local s end=$((SECONDS + 30))
    printf '%s\n' "\\echo SYNC $1" >&7; printf '%s\n' "\\echo SYNC $1" >&8
    for s in old new; do
        until grep -q "^SYNC $1\$" "$TEST_TMP/$s.out"; do
            [ "$SECONDS" -ge "$end" ] && { _t_fail "the long-lived session $s did not answer (sync $1)"; return 1; }
            sleep 0.1
        done
    done
}
session_close() { exec 7>&- 8>&-; wait "${SESSION_PIDS[@]}"; }

test_case "uuid job: phase1 creates the before and after schemas as plain column lists with the table's defaults and grants"
gen_app uv 200 t26 "$DATA"
app_role uv
start=$(schema_fingerprint uv)
assert_exit 0 "phase1 apply" -- u 1 uv apply
assert_eq "id character varying(36), clerk_user_id character varying(64), email character varying(255), name text, created_at timestamp with time zone, updated_at timestamp with time zone" \
  "$(cols uv $UB.users)" "before users: id is text, no shadow"
assert_eq "id uuid, clerk_user_id character varying(64), email character varying(255), name text, created_at timestamp with time zone, updated_at timestamp with time zone" \
  "$(cols uv $UA.users)" "after users: id is uuid (the shadow under the final name), in the same place"
assert_eq "id character varying(36), user_id character varying(36), name text" "$(cols uv $UB.tags)" "before tags: user_id text"
assert_eq "id character varying(36), user_id uuid, name text" "$(cols uv $UA.tags)" "after tags: user_id uuid"
assert_eq "4|4" "$(q uv "select count(*) filter (where n.nspname = '$UB'), count(*) filter (where n.nspname = '$UA') from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'v'")" "a view per table in each schema"
assert_eq "{security_invoker=true}|{security_invoker=true}" "$(q uv "select (select reloptions from pg_class where oid = '$UB.users'::regclass), (select reloptions from pg_class where oid = '$UA.tags'::regclass)")" "security_invoker"
assert_contains "$(q uv "select pg_get_viewdef('$UA.users'::regclass)" | tr -s ' \n' ' ')" "SELECT users.id_uuid AS id, users.clerk_user_id," "after view reads the shadow under the final name"
assert_eq "created_at now()
id (gen_random_uuid())::text" "$(q uv "select a.attname || ' ' || pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum where d.adrelid = '$UB.users'::regclass order by 1")" "the table's defaults on the before view's columns"
assert_eq "created_at now()" "$(q uv "select a.attname || ' ' || pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum where d.adrelid = '$UA.users'::regclass order by 1")" "the after view's id reads the shadow, which has no default (the table's applies)"
assert_eq "t|t|t|t|t|f" "$(q uv "select has_table_privilege('t26_app', '$UB.users', 'SELECT'), has_table_privilege('t26_app', '$UA.users', 'INSERT'), has_table_privilege('t26_app', '$UA.tags', 'DELETE'), has_schema_privilege('t26_app', '$UB', 'USAGE'), has_schema_privilege('t26_app', '$UA', 'USAGE'), has_table_privilege('t26_app', '$UA.users', 'TRUNCATE')")" "grants copied from the tables, USAGE on the schemas"
assert_eq "2|2" "$(q uv "select count(*) filter (where kind = 'versioned_schema' and name in ('$UB', '$UA')), count(*) filter (where kind = 'versioned_schema') from migration_backup.phasemig_objects where plan = 'string-to-uuid'")" "both schemas registered, plan-scoped"
n=$(q uv "select count(*) from public.users")
assert_eq "$n|$n" "$(as_app uv $UB "select count(*) from users")|$(as_app uv $UA "select count(*) from users")" "reads through each schema with search_path, as the application's role"
assert_exit 0 "status" -- u 1 uv status
assert_contains "$LAST_OUT" "schemas:  $UB, $UA" "status names the schemas"

test_case "uuid job before the swap: the old version writes through the before schema with text keys"
k=$(q uv "select gen_random_uuid()::text")
assert_eq "$k" "$(as_app uv $UB "insert into users (id, email) values ('$k', 'b@x') returning id")" "insert with a text key, RETURNING"
assert_eq "$k" "$(q uv "select id_uuid::text from public.users where id = '$k'")" "the table's trigger filled the shadow"
t=$(as_app uv $UB "insert into tags (user_id, name) values ('$k', 'n1') returning id")
assert_eq "n2" "$(as_app uv $UB "insert into tags (id, user_id, name) values ('$t', '$k', 'n1') on conflict (id) do update set name = 'n2' returning name")" "ON CONFLICT through the before view"
assert_eq "1" "$(as_app uv $UB "with u as (update users set name = 'renamed' where id = '$k' returning 1) select count(*) from u")" "update by text key"
assert_eq "renamed|$k" "$(q uv "select u.name, t.user_id_uuid from public.users u join public.tags t on t.user_id = u.id where u.id = '$k'")" "the rows in the tables, the child's shadow filled"
assert_eq "1" "$(as_app uv $UB "with d as (delete from tags where id = '$t' returning 1) select count(*) from d")" "delete through the before view"
assert_exit 0 "phase2 apply" -- u 2 uv apply
assert_eq "renamed" "$(as_app uv $UA "select name from users where id = '$k'::uuid")" "the after view finds the row by uuid"
assert_eq "1" "$(as_app uv $UA "with u as (update users set email = 'a@x' where id = '$k'::uuid returning 1) select count(*) from u")" "update of another column through the after view, by uuid"

test_case "uuid job before the swap: the new version inserts through the after schema with uuids alone; the text key follows"
k3=$(q uv "select gen_random_uuid()")
assert_eq "$k3" "$(as_app uv $UA "insert into users (id, email) values ('$k3', 'x3@x') returning id")" "insert with only a uuid key, RETURNING"
assert_eq "$k3|$k3" "$(q uv "select id, id_uuid from public.users where email = 'x3@x'")" "the table's text key is the uuid's text (two-way trigger), not its default"
t3=$(as_app uv $UA "insert into tags (user_id, name) values ('$k3', 't3') returning id")
assert_eq "$k3|$k3" "$(q uv "select user_id, user_id_uuid from public.tags where id = '$t3'")" "a child inserted by uuid gets its text reference"
assert_eq "x3@x" "$(as_app uv $UB "select u.email from users u join tags t on t.user_id = u.id where t.id = '$t3'")" "the old version joins the new version's rows by text"

test_case "uuid job: prepared statements on each view keep working across the swap and its rollback"
session_open uv 7 old
session_open uv 8 new
old() { printf '%s\n' "$@" >&7; }
new() { printf '%s\n' "$@" >&8; }
old "set search_path = $UB;" "prepare b(text) as select * from users where id = \$1;"
new "set search_path = $UA;" "prepare a(uuid) as select * from users where id = \$1;"
both() { old "execute b('$k');"; new "execute a('$k');"; }
both
sync_sessions 1
# before the swap the new version's lookups and upserts by uuid: phase2 indexed the shadows
assert_contains "$(q uv "set enable_seqscan = off; explain (costs off) select * from $UA.users where id = '$k'")" "Index Scan" "before the swap the after view's lookup by uuid uses phase2's index on the shadow"
assert_contains "$(q uv "set enable_seqscan = off; explain (costs off) select * from $UA.tags where user_id = '$k'")" "Index Scan" "and a child's lookup by uuid too"
assert_eq "renamed" "$(as_app uv $UA "insert into users (id, email) values ('$k', 'o@x') on conflict (id) do update set email = excluded.email returning name")" "an upsert on the key through the after view finds its arbiter (the shadow's unique index)"
assert_eq "o@x" "$(q uv "select email from public.users where id = '$k'")" "and updated the row"
assert_exit 0 "phase3 apply" -- u 3 uv apply --yes
assert_eq "uuid" "$(col_type uv public.users id)" "swapped"
both
sync_sessions 2
assert_contains "$(q uv "select pg_get_viewdef('$UB.users'::regclass)" | tr -s ' \n' ' ')" "SELECT users.id_legacy AS id, users.clerk_user_id," "after the swap the before view reads the legacy column under the old name"
assert_contains "$(q uv "select pg_get_viewdef('$UA.users'::regclass)" | tr -s ' \n' ' ')" "SELECT users.id, users.clerk_user_id," "and the after view the uuid column"
assert_eq "character varying(36)|uuid" "$(q uv "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$UB.users'::regclass and attname = 'id'")|$(q uv "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$UA.users'::regclass and attname = 'id'")" "result types unchanged"
assert_eq "renamed" "$(as_app uv $UB "prepare p(text) as select name from users where id = \$1; execute p('$k')")" "the old version binds the key as text after the swap"
assert_contains "$(q uv "set enable_seqscan = off; explain (costs off) select * from $UB.users where id = '$k'")" "Index Scan" "its lookup by text key has an index after the swap (the key's, built before it)"
# what the runbook says of the new version's lookups: an index from the swap on, none before it
# (the shadows' indexes are built by phase3 apply), and the view adds nothing to the table's plan
plan_of() { q uv "set enable_seqscan = off; explain (costs off) $1" | sed 's/ (cost.*//'; }
assert_contains "$(plan_of "select * from $UA.users where id = '$k'")" "Index Scan" "after the swap the after view's lookup by uuid has an index"
assert_eq "$(plan_of "select * from public.users where id = '$k'")" "$(plan_of "select * from $UA.users where id = '$k'")" "and the same plan as on the table"
assert_eq "$(plan_of "select * from public.tags where user_id = '$k'")" "$(plan_of "select * from $UA.tags where user_id = '$k'")" "a child's lookup by uuid: the same plan through the view as on the table"
assert_exit 0 "phase3 rollback" -- u 3 uv rollback
both
sync_sessions 3
assert_exit 0 "phase3 apply again" -- u 3 uv apply --yes
both
sync_sessions 4
session_close
out=$(cat "$TEST_TMP/old.out" "$TEST_TMP/new.out")
assert_not_contains "$out" "ERROR" "no statement of the long-lived session failed"
assert_eq "8" "$(grep -c "^$k|" <<<"$out")" "each execute found the row (4 times 2)"

test_case "uuid job after the swap: the new version writes through the after schema with uuids"
k2=$(q uv "select gen_random_uuid()")
assert_eq "$k2" "$(as_app uv $UA "insert into users (id, email) values ('$k2', 'n@x') returning id")" "insert with a uuid, RETURNING"
assert_eq "$k2" "$(q uv "select id_legacy from public.users where id = '$k2'")" "the table's trigger filled the legacy column"
assert_eq "1" "$(as_app uv $UA "with i as (insert into journal_entries (user_id, title) values ('$k2', 't') returning 1) select count(*) from i")" "child inserted by uuid"
assert_eq "v2" "$(as_app uv $UA "insert into users (id, email) values ('$k2', 'n@x') on conflict (id) do update set name = 'v2' returning name")" "ON CONFLICT on the uuid key through the after view"
newid=$(as_app uv $UA "insert into users (email) values ('d@x') returning id")
assert_eq "$newid" "$(q uv "select id_legacy from public.users where id = '$newid'")" "a key from the table's default, through the view"
assert_eq "1" "$(as_app uv $UB "with u as (update users set name = 'old' where id = '$k2' returning 1) select count(*) from u")" "the old version still updates by its text key"
assert_eq "1" "$(as_app uv $UA "with d as (delete from users where id = '$newid' returning 1) select count(*) from d")" "delete through the after view"
k4=$(q uv "select gen_random_uuid()")
assert_eq "$k4" "$(as_app uv $UB "insert into users (id, email) values ('$k4', 'o4@x') returning id")" "after the swap the old version inserts with a text key alone"
assert_eq "$k4|$k4" "$(q uv "select id, id_legacy from public.users where email = 'o4@x'")" "the uuid key follows the text (two-way trigger)"
assert_eq "1" "$(as_app uv $UB "with i as (insert into journal_entries (user_id, title) values ('$k4', 'old') returning 1) select count(*) from i")" "the old version's child, by text key"
assert_eq "old" "$(as_app uv $UA "select j.title from journal_entries j join users u on u.id = j.user_id where u.email = 'o4@x'")" "the new version reads it by uuid"

test_case "uuid job: finalize refuses while a session holds a before view, then drops the before schema"
holder uv "$UB.users"
assert_exit 3 "finalize refused" -- u 3 uv finalize --yes
assert_contains "$LAST_ERR" "schema \"$UB\" is still in use" "names the schema"
assert_contains "$LAST_ERR" "application_name 't26_holder'" "names the session"
assert_eq "1" "$(q uv "select count(*) from pg_namespace where nspname = '$UB'")" "the before schema is still there"
assert_eq "varchar" "$(q uv "select udt_name from information_schema.columns where table_schema = 'public' and table_name = 'users' and column_name = 'id_legacy'")" "the legacy column too"
unhold uv
assert_exit 0 "finalize" -- u 3 uv finalize --yes
assert_eq "0|1" "$(q uv "select count(*) filter (where nspname = '$UB'), count(*) filter (where nspname = '$UA') from pg_namespace")" "the before schema is gone, the after one stays"
assert_exit 0 "status" -- u 3 uv status --json
assert_eq "false|true" "$(psql -X -A -t -q -d uv -v j="$LAST_OUT" <<<"select (:'j'::jsonb)->'phases'->2->'schemas_now'->>'$UB', (:'j'::jsonb)->'phases'->2->'schemas_now'->>'$UA'")" "status shows which schemas are there"
assert_exit 0 "phase3 rollback after finalize" -- u 3 uv rollback
assert_eq "id character varying(36), clerk_user_id character varying(64), email character varying(255), name text, created_at timestamp with time zone, updated_at timestamp with time zone" \
  "$(cols uv $UB.users)" "the before schema is back as it was"
assert_eq "old" "$(as_app uv $UB "select name from users where id = '$k2'")" "and reads the restored keys"
for n in 2 1; do assert_exit 0 "phase$n rollback" -- u $n uv rollback; done
assert_eq "$start" "$(schema_fingerprint uv)" "after phase1 rollback the schema fingerprint equals the start"
assert_eq "0|0" "$(q uv "select count(*) from pg_namespace where nspname in ('$UB', '$UA')")|$(q uv "select count(*) from migration_backup.phasemig_objects")" "no schema, nothing registered"

test_case "a schema of the plan's name that is not phasemig's is refused"
q uv "create schema $UA" >/dev/null
assert_exit 2 "phase1 refused" -- u 1 uv apply
assert_contains "$LAST_ERR" "schema \"$UA\" exists and is not phasemig's" "says which"
assert_eq "0" "$(q uv "select count(*) from pg_attribute where attrelid = 'public.users'::regclass and attname = 'id_uuid'")" "nothing created"
q uv "drop schema $UA" >/dev/null
edit_file "$UPLAN" "$TEST_TMP/named.json" 's/"operations"/"versions": {"before": "app_v1", "after": "app_v2"},\n  "operations"/'
assert_exit 0 "phase1 apply with named schemas" -- phase 1 apply --plan "$TEST_TMP/named.json" --logs-dir "$LOGS" -d uv
assert_eq "app_v1|app_v2" "$(q uv "select string_agg(nspname, '|' order by nspname) from pg_namespace where nspname like 'app_v%'")" "the plan's names"
assert_exit 0 "phase1 rollback" -- phase 1 rollback --plan "$TEST_TMP/named.json" --logs-dir "$LOGS" -d uv
assert_eq "$start" "$(schema_fingerprint uv)" "no trace"

test_case "Clerk job: before without the new columns, after without clerk_user_id; the drop takes the before schema"
gen_app cv 200 t26 "$DATA"
app_role cv
cstart=$(schema_fingerprint cv)
assert_exit 0 "phase1 apply" -- c 1 cv apply
assert_eq "id character varying(36), clerk_user_id character varying(64), email character varying(255), name text, created_at timestamp with time zone, updated_at timestamp with time zone" \
  "$(cols cv $CB.users)" "before: the columns the application knows today"
assert_eq "id character varying(36), email character varying(255), name text, created_at timestamp with time zone, updated_at timestamp with time zone, firebase_uid character varying(128), display_name character varying(255), photo_url text, email_verified boolean, phone_number character varying(32), last_sign_in_at timestamp with time zone" \
  "$(cols cv $CA.users)" "after: the new columns, without clerk_user_id"
assert_eq "1" "$(q cv "select count(*) from pg_class where relnamespace = '$CB'::regnamespace")" "the Clerk job's views: its table only"
assert_eq "c1" "$(as_app cv $CB "insert into users (clerk_user_id, email) values ('user_t26', 't26@x') returning 'c1'")" "the old version inserts through the before view"
assert_exit 0 "phase2 apply" -- c 2 cv apply --mapping "$DATA/firebase-export.json" --generate-missing
assert_eq "1" "$(as_app cv $CA "with u as (update users set display_name = 'D' where email = 't26@x' returning 1) select count(*) from u")" "the new version updates its columns through the after view"
assert_exit 0 "phase3 check" -- c 3 cv check
holder cv "$CB.users"
assert_exit 3 "phase3 apply refused while the before view is held" -- c 3 cv apply --yes
assert_contains "$LAST_ERR" "schema \"$CB\" is still in use" "names the schema"
assert_contains "$LAST_ERR" "application_name 't26_holder'" "names the session"
assert_eq "1" "$(q cv "select count(*) from pg_attribute where attrelid = 'public.users'::regclass and attname = 'clerk_user_id' and not attisdropped")" "nothing dropped"
unhold cv
assert_exit 0 "phase3 apply" -- c 3 cv apply --yes
assert_eq "0|1" "$(q cv "select count(*) filter (where nspname = '$CB'), count(*) filter (where nspname = '$CA') from pg_namespace")" "clerk_user_id dropped with the before schema; the after schema stays"
assert_eq "D" "$(as_app cv $CA "select display_name from users where email = 't26@x'")" "the after view reads on"
assert_exit 0 "status" -- c 3 cv status
assert_contains "$LAST_OUT" "schemas:  $CA (" "status: phase3 offers the after schema only"
assert_exit 0 "phase3 rollback" -- c 3 cv rollback
assert_eq "id character varying(36), clerk_user_id character varying(64), email character varying(255), name text, created_at timestamp with time zone, updated_at timestamp with time zone" \
  "$(cols cv $CB.users)" "the before schema back, its columns in their order"
assert_eq "user_t26" "$(as_app cv $CB "select clerk_user_id from users where email = 't26@x'")" "reading the restored values"
assert_exit 0 "phase2 rollback" -- c 2 cv rollback
# the display name the new version wrote through the after view is the application's: the drop says so
assert_exit 3 "phase1 rollback refuses to drop the new version's write" -- c 1 cv rollback
assert_contains "$LAST_ERR" "public.users.display_name: 1 row holds a value the application wrote" "counted"
assert_exit 0 "phase1 rollback" -- c 1 cv rollback --discard-application-writes
assert_eq "$cstart" "$(schema_fingerprint cv)" "after phase1 rollback the schema fingerprint equals the start"
