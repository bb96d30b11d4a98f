# t44_drivers.sh -- real application drivers through every step of both jobs. One application,
# written twice (tests/apps/app.js with node-postgres from npm, tests/apps/app.py with psycopg 3
# from Debian), runs as an old version on the plan's before schema (search_path, keys bound as
# typed text) and as a new version on its after schema (uuids), continuously, each on one
# connection with its statements prepared on the server, while phasemig runs phase1 apply,
# phase2 apply, phase3 check, apply, rollback, apply again, finalize, and the way back
# (phase3 rollback after finalize, phase2 and phase1 rollback), on an ORM-style schema
# (tests/apps/schema.sql: quoted CamelCase names, TEXT keys, ON DELETE/UPDATE CASCADE, composite
# indexes leading with "userId"). The old version is retired when the runbook says (before
# finalize; before phase3 apply for the Clerk job, whose drop takes its schema), after the
# refusal it causes is shown once. Oracle: 0 failed statements for every application and step,
# at least T44_MIN_STATEMENTS (100) per application and step, both representations of every row
# consistent after every step, every row each application believes it wrote in the database as
# written, the parameter types and prepare times of their statements, and migration_log.
# A control, the same old version on public (no views), must fail from the swap on. The uuid
# job's phase1 rollback runs under the old version back on public (see there: with it on the
# before schema, the drop of the views deadlocks with it now and then).
source "$(dirname "$0")/lib.sh"

must_dirs LOGS DATA
PY=${T44_PYTHON:-/usr/bin/python3}   # Debian's python3: python3-psycopg installs there
APPS=$ROOT/tests/apps
DWELL=${T44_DWELL:-3}                # seconds the applications run after each step
MIN=${T44_MIN_STATEMENTS:-100}       # statements each running application must run per step
USERS=${T44_USERS:-300}
CTL=$TEST_TMP/ctl OUT=$TEST_TMP/out
must mkdir -p "$CTL" "$OUT"
declare -A APP_PID=() APP_VERSION=() RUNNING=() CONTROL=()
JOB="" DB="" PLAN="" TIMELINE=""

# ---------- the applications ----------
# set_step LABEL: what the applications count their statements under from their next iteration
set_step() { printf '%s\n' "$1" >"$CTL/step.tmp" && mv -f "$CTL/step.tmp" "$CTL/step"; }
# start_app node|py old|new NAME SEARCH_PATH: an application, connected once it is in pg_stat_activity
start_app() {
    local drv=$1 ver=$2 name=$3 sp=$4 cmd
    if [ "$drv" = node ]; then cmd=("$NODE" "$APPS/app.js"); else cmd=("$PY" "$APPS/app.py"); fi
    rm -f "$CTL/stop-$ver"
    PGDATABASE=$DB NODE_PATH=$ROOT/build/node/node_modules "${cmd[@]}" --job "$JOB" --version "$ver" --name "$name" \
        --search-path "$sp" --control "$CTL" --out "$OUT/$name.json" 2>"$OUT/$name.err" &
    APP_PID[$name]=$! APP_VERSION[$name]=$ver RUNNING[$name]=1
    wait_for_sql "$DB" "select count(*) from pg_stat_activity where application_name = '$name'" 1
}
# wait_app NAME: NAME, told to stop, ends after its iteration with its result written
wait_app() {
    local n=$1 rc end=$((SECONDS + 60))
    while kill -0 "${APP_PID[$n]}" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
    kill -0 "${APP_PID[$n]}" 2>/dev/null && { _t_fail "$n did not stop within 60 s: killed"; kill -KILL "${APP_PID[$n]}"; }
    wait "${APP_PID[$n]}"; rc=$?
    [ "$rc" = 0 ] || _t_fail "$n exited with status $rc" "$(tail -5 "$OUT/$n.err")"
    [ -s "$OUT/$n.json" ] || _t_fail "$n left no result in $OUT/$n.json"
    unset "RUNNING[$n]" "CONTROL[$n]"
}
# stop_apps old|new: that version's applications (the controls apart) stop
stop_apps() {
    local v=$1 n
    touch "$CTL/stop-$v"
    for n in "${!RUNNING[@]}"; do
        [ "${APP_VERSION[$n]}" = "$v" ] && [ -z "${CONTROL[$n]:-}" ] && wait_app "$n"
    done
    rm -f "$CTL/stop-$v"
}
stop_app() { kill -TERM "${APP_PID[$1]}"; wait_app "$1"; }   # stop_app NAME (SIGTERM)
kill_apps() { local n; for n in "${!RUNNING[@]}"; do kill -KILL "${APP_PID[$n]}" 2>/dev/null; done; }
on_exit kill_apps
# the applications deployed (the controls, which are meant to fail, apart)
running_apps() { local n; for n in "${!RUNNING[@]}"; do [ -n "${CONTROL[$n]:-}" ] || printf '%s ' "$n"; done; }
# dwell LABEL: the applications run for DWELL seconds, counted under LABEL
dwell() { set_step "$1"; printf '%s\t%s\n' "$1" "$(running_apps)" >>"$TIMELINE"; sleep "$DWELL"; }
# phase_step LABEL EXIT CMD...: CMD must exit EXIT; the applications count what they run meanwhile
# under LABEL, and for DWELL seconds after it under "after LABEL"
phase_step() {
    local label=$1 want=$2 t0=$SECONDS; shift 2
    set_step "$label"
    assert_exit "$want" "$label" -- "$@"
    set_step "after $label"
    printf '%s\t%s\n' "$label" "$(running_apps)" >>"$TIMELINE"
    echo "# $JOB: $label: exit $LAST_RC after $((SECONDS - t0)) s" >&2
    sleep "$DWELL"
}
ph() { local n=$1; shift; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS" -d "$DB"; }

# hold_old NAME...: the old version's applications each keep a transaction open on the before
# schema's views (a report), until release_old. Waits for that transaction itself: any of their
# transactions holds locks on the views, but only for a moment
hold_old() {
    local names; names=$(printf "'%s'," "$@")
    touch "$CTL/hold-old"
    wait_for_sql "$DB" "select count(distinct a.application_name) from pg_stat_activity a join pg_locks l on l.pid = a.pid
        join pg_class c on c.oid = l.relation where c.relnamespace = '$BEFORE'::regnamespace and a.application_name in (${names%,})
        and a.state = 'idle in transaction' and a.query like 'SELECT count(*) FROM \"User\" u JOIN \"Post\"%'" "$#"
}
release_old() { rm -f "$CTL/hold-old"; }

# model_rows NAME [CONDITION]: the users, posts and sessions application NAME believes it wrote
# (its result's "users"), against the tables: users|missing|posts|missing|extra|sessions|missing|extra;
# CONDITION (on u, the table's row, and m.v, the application's) must hold for each user too
model_rows() {
    local name=$1 cond=${2:-true}
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" -v j="$(cat "$OUT/$name.json")" <<SQL
with m as (select e.key as id, e.value as v from jsonb_each((:'j'::jsonb)->'users') e),
     p as (select m.id as uid, x.key as pid, x.value->>0 as slug, x.value->>1 as title from m, jsonb_each(m.v->'posts') x),
     s as (select m.id as uid, x as sid from m, jsonb_array_elements_text(m.v->'sessions') x)
select concat_ws('|',
  (select count(*) from m),
  (select count(*) from m where not exists (select 1 from public."User" u where u."id"::text = m.id
       and u."email" = m.v->>'email' and u."name" = m.v->>'name' and ($cond))),
  (select count(*) from p),
  (select count(*) from p where not exists (select 1 from public."Post" x where x."id" = p.pid
       and x."userId"::text = p.uid and x."slug" = p.slug and x."title" = p.title)),
  (select count(*) from public."Post" x join m on x."userId"::text = m.id) - (select count(*) from p),
  (select count(*) from s),
  (select count(*) from s where not exists (select 1 from public."Session" x where x."id" = s.sid and x."userId"::text = s.uid)),
  (select count(*) from public."Session" x join m on x."userId"::text = m.id) - (select count(*) from s))
SQL
}
# rows_as_written LABEL NAME [CONDITION]: every row NAME wrote is there as written, nothing more
rows_as_written() {
    local r; r=$(model_rows "$2" "${3:-true}")
    IFS='|' read -r users mu posts mp xp sessions ms xs <<<"$r"
    assert_eq "0|0|0|0|0" "$mu|$mp|$xp|$ms|$xs" "$1: $2's rows: missing users|missing posts|extra posts|missing sessions|extra sessions"
    [ "${users:-0}" -gt 0 ] && [ "${posts:-0}" -gt 0 ] || _t_fail "$1: $2 left no rows of its own ($r)"
    echo "# $JOB: $1: $2: $users users, $posts posts, $sessions sessions, each as written" >&2
}
# prepared NAME PATTERN: "parameter types|prepare time" of NAME's first server-side statement whose text has PATTERN
prepared() {
    "$PY" - "$OUT/$1.json" "$2" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["prepared"]:
    if sys.argv[2] in p["statement"]:
        print(f"{p['parameter_types']}|{p['prepare_time']}")
        break
PYEOF
}
# statements_kept LABEL NAME TYPES: NAME's read by key (a join through the foreign key) and, for
# node-postgres, its SQL-level PREPARE, were prepared with these parameter types before the first
# phase3 apply and were still there at the end: the same statements ran across the swap and its rollback
statements_kept() {
    local label=$1 name=$2 types=$3 r pat
    for pat in 'LEFT JOIN "Post" p ON p."userId" = u."id"' 'PREPARE t44_user_by_key'; do
        [[ $name == py-* && $pat == PREPARE* ]] && continue
        r=$(prepared "$name" "$pat")
        assert_eq "$types" "${r%%|*}" "$label: $name: parameter types of: $pat"
        assert_eq "t" "$(q "$DB" "select '${r#*|}'::timestamptz < (select min(started_at) from migration_log where plan = '$PLANNAME' and phase = 3 and operation = 'apply')")" \
            "$label: $name: prepared before the first phase3 apply, and kept: $pat"
    done
}
# counts_ok NAME...: the table of every application's statements per step (printed), none failed,
# each listed for a step ran at least MIN there, and some while each step of OVERLAP (the job's
# steps whose command walks batches for seconds) ran
counts_ok() {
    local files=() n out
    for n in "$@"; do files+=("$OUT/$n.json"); done
    out=$("$PY" "$APPS/counts.py" "$TIMELINE" "$MIN" "$OVERLAP" "${files[@]}" 2>&1)
    sed "s/^/# $JOB: /" <<<"$out" >&2
    assert_eq "" "$(grep '^problem' <<<"$out")" "$JOB: every application and step: 0 failed statements, at least $MIN statements, some during each batch walk"
    for n in "$@"; do
        grep -q FAILED "$OUT/$n.err" && sed "s/^/# /" "$OUT/$n.err" | head -20 >&2
    done
    cp "$TIMELINE" "${files[@]}" "$LOGS/" 2>/dev/null
}
# phase_rows: the phase-level rows of migration_log, in order
phase_rows() {
    q "$DB" "select string_agg(phase || ' ' || operation || ' ' || status, ', ' order by id) from migration_log
             where plan = '$PLANNAME' and operation in ('apply', 'check', 'rollback', 'finalize')"
}

test_case "the drivers: psycopg 3 for Debian's python3 (scripts/install-deps drivers), node-postgres 8 from npm under build/node (scripts/install-node-pg)"
must "$ROOT/scripts/install-deps" drivers
must "$ROOT/scripts/install-node-pg"
NODE=$(command -v node || command -v nodejs)
[ -n "$NODE" ] || setup_failed "no node command after scripts/install-deps drivers"
assert_contains "$("$PY" -c 'import psycopg; print("psycopg", psycopg.__version__)' 2>&1)" "psycopg 3." "psycopg 3 for $PY"
assert_contains "$(NODE_PATH=$ROOT/build/node/node_modules "$NODE" -e 'console.log("pg", require("pg/package.json").version)' 2>&1)" \
    "pg 8." "node-postgres 8 in build/node/node_modules"
assert_exit 0 "install-node-pg again: nothing to do" -- "$ROOT/scripts/install-node-pg"
assert_eq "" "$LAST_OUT$LAST_ERR" "and quiet"

# ==================== string ids to native uuid ====================
JOB=uuid DB=t44u PLANNAME=string-to-uuid PLAN=$TEST_TMP/string-to-uuid.json TIMELINE=$TEST_TMP/timeline-uuid
OVERLAP="phase2 apply|phase3 rollback after finalize|phase2 rollback"
BEFORE=string_to_uuid_before AFTER=string_to_uuid_after
cat >"$PLAN" <<'EOF'
{
  "name": "string-to-uuid",
  "description": "the shipped plan on an ORM's table: \"User\".\"id\" TEXT to uuid, with every foreign key to it",
  "schema": "public",
  "table": "User",
  "key": "id",
  "settings": {"lock_timeout_ms": 1000, "batch_size": 1000, "ddl_attempts": 30},
  "operations": [
    {"op": "convert_to_uuid", "column": "id"}
  ]
}
EOF
: >"$TIMELINE"
# uuid_agree LABEL: both sides of every key and reference agree (the text is the uuid's text), and
# every reference has its parent, in whatever state the tables are (before phase2 a shadow may
# still be empty; after finalize or phase1 rollback there is one side only)
uuid_agree() {
    local label=$1 t u ct cu filled
    if [ -n "$(col_type "$DB" 'public."User"' id_legacy)" ]; then t=id_legacy u=id ct=userId_legacy cu=userId filled=true
    elif [ -n "$(col_type "$DB" 'public."User"' id_uuid)" ]; then
        t=id u=id_uuid ct=userId cu=userId_uuid
        filled=$(q "$DB" "select count(*) > 0 from migration_log where plan = '$PLANNAME' and phase = 2 and operation = 'apply' and status = 'done'
                          and id > coalesce((select max(id) from migration_log where plan = '$PLANNAME' and phase = 2 and operation = 'rollback'), 0)")
        [ "$filled" = t ] && filled=true || filled=false
    else t=id u=id ct=userId cu=userId filled=true
    fi
    assert_eq "0|0|0|0|0|0|0" "$(q "$DB" "select concat_ws('|',
        (select count(*) from public.\"User\" where (\"$u\" is not null or $filled) and \"$t\"::text is distinct from \"$u\"::text),
        (select count(*) from public.\"Post\" where (\"$cu\" is not null or $filled) and \"$ct\"::text is distinct from \"$cu\"::text),
        (select count(*) from public.\"Session\" where (\"$cu\" is not null or $filled) and \"$ct\"::text is distinct from \"$cu\"::text),
        (select count(*) from public.\"Post\" x join public.\"User\" u on u.\"$t\" = x.\"$ct\" where $filled and x.\"$cu\" is distinct from u.\"$u\"),
        (select count(*) from public.\"Session\" x join public.\"User\" u on u.\"$t\" = x.\"$ct\" where $filled and x.\"$cu\" is distinct from u.\"$u\"),
        (select count(*) from public.\"Post\" x where not exists (select 1 from public.\"User\" u where u.\"id\" = x.\"userId\")),
        (select count(*) from public.\"Session\" x where x.\"userId\" is not null and not exists (select 1 from public.\"User\" u where u.\"id\" = x.\"userId\")))")" \
        "$label: users' text key = uuid::text | posts' | sessions' | posts' uuid = parent's | sessions' | posts without a parent | sessions without one"
}

test_case "uuid job: the old version (before schema, typed text keys) and the new one (after schema, uuids), node-postgres and psycopg, running without a pause through phase1, phase2, phase3 check, apply, rollback and apply again"
T0=$SECONDS
must new_db "$DB"
must psql -X -q -v ON_ERROR_STOP=1 -v users="$USERS" -d "$DB" -f "$APPS/schema.sql"
start=$(schema_fingerprint "$DB")
# the old version is deployed once, before phase1, with its schema first: until phase1 creates
# it, its names resolve to public
set_step "before phase1"
start_app node old node-old "$BEFORE,public"
start_app py old py-old "$BEFORE,public"
# the control: the same old version on public, as it ran before the views existed
start_app node old node-public public; CONTROL[node-public]=1
start_app py old py-public public; CONTROL[py-public]=1
dwell "before phase1"
phase_step "phase1 apply" 0 ph 1 apply
uuid_agree "after phase1"
phase_step "phase2 apply" 0 ph 2 apply --batch-size 25 --sleep-ms 40
uuid_agree "after phase2"
set_step "new version deployed"
start_app node new node-new "$AFTER"
start_app py new py-new "$AFTER"
dwell "new version deployed"
phase_step "phase3 check" 0 ph 3 check
phase_step "phase3 apply" 0 ph 3 apply
assert_eq "uuid" "$(col_type "$DB" 'public."User"' id)" "swapped"
uuid_agree "after phase3 apply"
stop_app node-public
stop_app py-public
phase_step "phase3 rollback" 0 ph 3 rollback --batch-size 25 --sleep-ms 40
assert_eq "text" "$(col_type "$DB" 'public."User"' id)" "swapped back"
uuid_agree "after phase3 rollback"
phase_step "phase3 apply again" 0 ph 3 apply
uuid_agree "after phase3 apply again"

test_case "uuid job: finalize refuses while the old version's sessions hold the before views, naming them; the old version retired, finalize"
hold_old node-old py-old
assert_exit 3 "finalize refused" -- ph 3 finalize
assert_contains "$LAST_ERR" "schema \"$BEFORE\" is still in use" "names the schema"
assert_contains "$LAST_ERR" "(application_name 'node-old')" "names the node-postgres session"
assert_contains "$LAST_ERR" "(application_name 'py-old')" "names the psycopg session"
assert_eq "text" "$(col_type "$DB" 'public."User"' id_legacy)" "nothing dropped"
release_old
stop_apps old
uuid_agree "the old version retired"
for n in node-old py-old; do
    rows_as_written "before finalize" "$n"
    statements_kept "before finalize" "$n" "{text}"
done
phase_step "phase3 finalize" 0 ph 3 finalize
assert_eq "" "$(col_type "$DB" 'public."User"' id_legacy)" "the legacy key dropped"
assert_eq "0" "$(q "$DB" "select count(*) from pg_namespace where nspname = '$BEFORE'")" "the before schema dropped"
uuid_agree "after finalize"

test_case "uuid job, the way back: phase3 rollback after finalize under the new version; the old version deployed again, the new one retired; phase2 rollback under it; phase1 rollback under the old version back on public"
phase_step "phase3 rollback after finalize" 0 ph 3 rollback --batch-size 25 --sleep-ms 40
uuid_agree "after phase3 rollback after finalize"
set_step "old version deployed again"
start_app node old node-old3 "$BEFORE,public"
start_app py old py-old3 "$BEFORE,public"
dwell "old version deployed again"
stop_apps new
for n in node-new py-new; do
    rows_as_written "after phase3 rollback after finalize" "$n"
    statements_kept "after phase3 rollback after finalize" "$n" "{uuid}"
done
phase_step "phase2 rollback" 0 ph 2 rollback --batch-size 25 --sleep-ms 40
uuid_agree "after phase2 rollback"
# phase1 rollback drops the before schema's views while the old version writes through them:
# the drop takes them in one LOCK waiting less than deadlock_timeout in all, so a transaction
# of the old version that wrote "User" and then writes "Post" never is a deadlock's victim
# (a DROP VIEW of the three, taking them one by one, made it one about one run in ten).
# T44_OLD_ON_PUBLIC_FOR_PHASE1_ROLLBACK=1 moves the old version back to public first.
if [ "${T44_OLD_ON_PUBLIC_FOR_PHASE1_ROLLBACK:-0}" = 1 ]; then
    stop_apps old
    set_step "old version back on public"
    start_app node old node-old4 public
    start_app py old py-old4 public
    dwell "old version back on public"
fi
phase_step "phase1 rollback" 0 ph 1 rollback
stop_apps old
assert_eq "0|0" "$(q "$DB" "select (select count(*) from pg_namespace where nspname in ('$BEFORE', '$AFTER')),
    (select count(*) from pg_attribute where attrelid in ('public.\"User\"'::regclass, 'public.\"Post\"'::regclass, 'public.\"Session\"'::regclass)
       and attname in ('id_uuid', 'userId_uuid', 'id_legacy', 'userId_legacy') and not attisdropped)")" "no schema of views, no shadow left"
assert_eq "$start" "$(schema_fingerprint "$DB")" "the schema as at the start"
uuid_agree "after phase1 rollback"

test_case "uuid job, the control: the same old version on public (no views) fails from the swap on (uuid = text, and node-postgres's statements prepared before it: cached plan must not change result type), and not before"
for n in node-public py-public; do
    assert_eq "0|t" "$("$PY" - "$OUT/$n.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
before = [s for s in d["steps"] if s["step"] in ("before phase1", "phase1 apply", "after phase1 apply", "phase2 apply",
                                                 "after phase2 apply", "new version deployed", "phase3 check", "after phase3 check")]
print(f"{sum(s['failed'] for s in before)}|{'t' if sum(s['statements'] for s in before) > 0 else 'f'}")
PYEOF
)" "$n: no failure before the swap, and statements ran"
    f=$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["failures"], sort_keys=True))' "$OUT/$n.json")
    assert_contains "$f" '"42883"' "$n: after the swap, operator does not exist: uuid = text"
    echo "# $JOB: the control $n: failures by SQLSTATE from the swap on: $f" >&2
done
assert_contains "$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["failures"]))' "$OUT/node-public.json")" \
    '"0A000"' "node-public: cached plan must not change result type (a statement prepared on the table before the swap)"

test_case "uuid job: no application failed a statement, every one ran at least $MIN in every step it was deployed for; every row each wrote is there as written"
olds=(node-old3 py-old3)
[ -s "$OUT/node-old4.json" ] && olds+=(node-old4 py-old4)
counts_ok node-old py-old node-new py-new "${olds[@]}"
for n in node-old py-old node-new py-new "${olds[@]}"; do rows_as_written "at the end" "$n"; done
assert_eq "$BEFORE,public|$BEFORE,public|$AFTER|$AFTER" \
    "$(for n in node-old py-old node-new py-new; do "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["search_path"])' "$OUT/$n.json"; done | paste -sd'|')" \
    "each version ran on its schema (SHOW search_path)"
assert_eq "1 apply done, 2 apply done, 3 check done, 3 apply done, 3 rollback done, 3 apply done, 3 finalize refused, 3 finalize done, 3 rollback done, 2 rollback done, 1 rollback done" \
    "$(phase_rows)" "migration_log: every step done, the refused finalize refused"
echo "# $JOB: the job took $((SECONDS - T0)) s" >&2

# ==================== Clerk to Firebase ====================
JOB=clerk DB=t44c PLANNAME=clerk-to-firebase PLAN=$TEST_TMP/clerk-to-firebase.json TIMELINE=$TEST_TMP/timeline-clerk
OVERLAP="phase2 apply|phase3 rollback|phase3 rollback after finalize|phase2 rollback"
BEFORE=clerk_to_firebase_before AFTER=clerk_to_firebase_after
cat >"$PLAN" <<'EOF'
{
  "name": "clerk-to-firebase",
  "description": "the shipped plan on an ORM's table: \"User\".\"clerkUserId\" replaced by \"firebaseUid\"",
  "schema": "public",
  "table": "User",
  "key": "id",
  "settings": {"lock_timeout_ms": 1000, "batch_size": 1000, "ddl_attempts": 30},
  "operations": [
    {"op": "add_column", "column": "firebaseUid", "type": "varchar(128)"},
    {"op": "add_column", "column": "displayName", "type": "varchar(255)"},
    {"op": "add_column", "column": "emailVerified", "type": "boolean"},
    {"op": "create_index", "name": "User_firebaseUid_idx", "columns": ["firebaseUid"]},
    {"op": "backfill_from_mapping", "match_column": "clerkUserId", "email_column": "email",
     "set": {"firebaseUid": "localId", "displayName": "displayName", "emailVerified": "emailVerified"}},
    {"op": "set_not_null", "column": "firebaseUid", "reject_empty": true},
    {"op": "add_unique", "column": "firebaseUid", "name": "User_firebaseUid_key"},
    {"op": "check_unique", "column": "email", "ignore_case": true},
    {"op": "drop_column", "column": "clerkUserId"}
  ]
}
EOF
: >"$TIMELINE"
# the mapping: the seed users' Clerk ids and each application's pool (app.js, app.py: poolIdent)
{
    echo clerk_user_id,firebase_uid
    for i in $(seq 1 "$USERS"); do echo "user_seed_$i,fb_seed_$i"; done
    for n in node-old py-old node-old2 py-old2 node-old3 py-old3 node-new py-new; do
        for j in $(seq 0 999); do echo "user_${n}_$j,fb_${n}_$j"; done
    done
} >"$DATA/mapping.csv"
# clerk_agree LABEL [all]: no row's Clerk id and uid contradict the mapping; with "all", every row
# has its uid (once phase2 loaded the mapping)
clerk_agree() {
    local label=$1 all=false
    [ -n "${2:-}" ] && all=true
    [ -n "$(col_type "$DB" 'public."User"' clerkUserId)" ] || return 0
    [ -n "$(col_type "$DB" 'public."User"' firebaseUid)" ] || return 0
    assert_eq "0|0|0" "$(q "$DB" "select concat_ws('|',
        (select count(*) from public.\"User\" u join public.t44_map m on m.clerk = u.\"clerkUserId\" where ($all or u.\"firebaseUid\" is not null) and u.\"firebaseUid\" is distinct from m.uid),
        (select count(*) from public.\"User\" u join public.t44_map m on m.uid = u.\"firebaseUid\" where u.\"clerkUserId\" <> m.clerk),
        (select count(*) from public.\"User\" u where $all and u.\"firebaseUid\" is null))")" \
        "$label: users whose Clerk id maps to another uid | whose uid maps to another Clerk id | without a uid"
}

test_case "Clerk job: the old version (before schema: \"clerkUserId\") and the new one (after schema: \"firebaseUid\"), node-postgres and psycopg, through phase1, phase2; phase3 check and apply refused while the old version holds its views, then it is retired"
T0=$SECONDS
must new_db "$DB"
must psql -X -q -v ON_ERROR_STOP=1 -v users="$USERS" -d "$DB" -f "$APPS/schema.sql"
must psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "create table public.t44_map (clerk text primary key, uid text not null unique)" \
    -c "\\copy public.t44_map from '$DATA/mapping.csv' csv header"
# the Clerk job's views cover its table only: "public" after the schema for the others
set_step "before phase1"
start_app node old node-old "$BEFORE,public"
start_app py old py-old "$BEFORE,public"
dwell "before phase1"
phase_step "phase1 apply" 0 ph 1 apply
clerk_agree "after phase1"
phase_step "phase2 apply" 0 ph 2 apply --mapping "$DATA/mapping.csv" --batch-size 25 --sleep-ms 40
clerk_agree "after phase2" all
set_step "new version deployed"
start_app node new node-new "$AFTER,public"
start_app py new py-new "$AFTER,public"
dwell "new version deployed"
clerk_agree "both versions running" all
hold_old node-old py-old
assert_exit 3 "phase3 check refused" -- ph 3 check
assert_contains "$LAST_ERR" "schema \"$BEFORE\" is still in use" "names the schema"
assert_contains "$LAST_ERR" "(application_name 'node-old')" "names the node-postgres session"
assert_contains "$LAST_ERR" "(application_name 'py-old')" "names the psycopg session"
assert_exit 3 "phase3 apply refused" -- ph 3 apply
assert_eq "text" "$(col_type "$DB" 'public."User"' clerkUserId)" "nothing dropped"
release_old
stop_apps old
for n in node-old py-old; do
    rows_as_written "the old version retired" "$n" \
        "u.\"clerkUserId\" = m.v->>'ident' and u.\"firebaseUid\" = (select uid from public.t44_map where clerk = m.v->>'ident')"
done

test_case "Clerk job: phase3 check, apply, rollback (the old version back for a while), apply again, finalize under the new version"
phase_step "phase3 check" 0 ph 3 check
phase_step "phase3 apply" 0 ph 3 apply
assert_eq "" "$(col_type "$DB" 'public."User"' clerkUserId)" "\"clerkUserId\" dropped, with the before schema"
phase_step "phase3 rollback" 0 ph 3 rollback --batch-size 25 --sleep-ms 40
clerk_agree "after phase3 rollback" all
set_step "old version back (phase3 rolled back)"
start_app node old node-old2 "$BEFORE,public"
start_app py old py-old2 "$BEFORE,public"
dwell "old version back (phase3 rolled back)"
clerk_agree "both versions running again" all
stop_apps old
for n in node-old2 py-old2; do
    rows_as_written "the old version retired again" "$n" \
        "u.\"clerkUserId\" = m.v->>'ident' and u.\"firebaseUid\" = (select uid from public.t44_map where clerk = m.v->>'ident')"
done
phase_step "phase3 apply again" 0 ph 3 apply
phase_step "phase3 finalize" 0 ph 3 finalize

test_case "Clerk job, the way back: phase3 rollback after finalize under the new version; the old version deployed again, the new one retired; phase2 and phase1 rollback under the old version"
phase_step "phase3 rollback after finalize" 0 ph 3 rollback --batch-size 25 --sleep-ms 40
clerk_agree "after phase3 rollback after finalize" all
set_step "old version back (finalize rolled back)"
start_app node old node-old3 "$BEFORE,public"
start_app py old py-old3 "$BEFORE,public"
dwell "old version back (finalize rolled back)"
stop_apps new
for n in node-new py-new; do rows_as_written "the new version retired" "$n" "u.\"firebaseUid\" = m.v->>'ident'"; done
phase_step "phase2 rollback" 0 ph 2 rollback --batch-size 25 --sleep-ms 40
# the uids the new version wrote are the application's: phase1 rollback counts them and refuses
phase_step "phase1 rollback, refused" 3 ph 1 rollback
assert_contains "$LAST_ERR" "hold a value the application wrote" "the new version's uids are counted as the application's"
phase_step "phase1 rollback" 0 ph 1 rollback --discard-application-writes
stop_apps old
assert_eq "0|0" "$(q "$DB" "select (select count(*) from pg_namespace where nspname in ('$BEFORE', '$AFTER')),
    (select count(*) from pg_attribute where attrelid = 'public.\"User\"'::regclass and attname in ('firebaseUid', 'displayName', 'emailVerified') and not attisdropped)")" \
    "no schema of views, no added column left"

test_case "Clerk job: no application failed a statement, every one ran at least $MIN in every step it was deployed for; every row each wrote is there as written"
counts_ok node-old py-old node-new py-new node-old2 py-old2 node-old3 py-old3
for n in node-old py-old node-old2 py-old2 node-old3 py-old3; do rows_as_written "at the end" "$n" "u.\"clerkUserId\" = m.v->>'ident'"; done
for n in node-new py-new; do rows_as_written "at the end" "$n"; done
for n in node-old py-old node-new py-new; do statements_kept "at the end" "$n" "{text}"; done
assert_eq "1 apply done, 2 apply done, 3 check refused, 3 apply refused, 3 check done, 3 apply done, 3 rollback done, 3 apply done, 3 finalize done, 3 rollback done, 2 rollback done, 1 rollback refused, 1 rollback done" \
    "$(phase_rows)" "migration_log: every step done, the refused ones refused"
echo "# $JOB: the job took $((SECONDS - T0)) s" >&2
