# t21_uuid_paths.sh -- the string to UUID job's other paths on the real server: two uuid plans
# sharing a child table (each keeps its own triggers; either rolls back first; the application's
# writes in between end right), a plan that would share a column or an index refused, rollbacks
# killed with -9 midway that a re-run finishes exactly, and the rollback after finalize under a
# pgbench load at 200,000 users (T21_STALL_USERS; make check-fast: 20,000), whose longest stall is
# measured.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/string-to-uuid.json
must_dirs LOGS

# plan A converts users.id, plan B teams.id; memberships has a foreign key to each
PA=$TEST_TMP/users-uuid.json PB=$TEST_TMP/teams-uuid.json
edit_file "$PLAN" "$PA" 's/"name": "string-to-uuid"/"name": "users-uuid"/'
edit_file "$PLAN" "$PB" 's/"name": "string-to-uuid"/"name": "teams-uuid"/' 's/"table": "users"/"table": "teams"/'
pa() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$PA" --logs-dir "$LOGS" -d "$db"; }
pb() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$PB" --logs-dir "$LOGS" -d "$db"; }

shared_db() {   # shared_db DB: users and teams (upper-case text ids), memberships pointing at both
    new_db "$1"
    q "$1" "create table public.users (id varchar(36) primary key default gen_random_uuid()::text, name text);
      create table public.teams (id varchar(36) primary key default gen_random_uuid()::text, title text);
      create table public.memberships (id int primary key,
        user_id varchar(36) not null constraint m_user references public.users on delete cascade,
        team_id varchar(36) constraint m_team references public.teams on delete set null, role text);
      create index m_user_ix on public.memberships (user_id);
      create index m_team_ix on public.memberships (team_id);
      insert into public.users (id, name) select gen_random_uuid()::text, 'u' || g from generate_series(1, 120) g;
      insert into public.teams (id, title) select upper(gen_random_uuid()::text), 't' || g from generate_series(1, 30) g;
      insert into public.memberships select g, (select id from public.users order by name offset g % 120 limit 1),
        case when g % 7 <> 0 then (select id from public.teams order by title offset g % 30 limit 1) end, 'member'
        from generate_series(1, 400) g" >/dev/null
}

# write_rows DB N: the application, between two steps: a user and a team (upper-case ids), three
# memberships using them and older rows, and an update of both keys of an earlier written membership
write_rows() {
    local db=$1 n=$2 u t
    u=$(printf 'AB%06d-0000-4000-8000-%012d' "$n" "$n") t=$(printf 'CD%06d-0000-4000-8000-%012d' "$n" "$n")
    q "$db" "insert into public.users (id, name) values ('$u', 'written');
      insert into public.teams (id, title) values ('$t', 'written');
      insert into public.memberships (id, user_id, team_id, role) values ($((1000 + n * 10)), '$u', '$t', 'written'),
        ($((1001 + n * 10)), '$u', (select id from public.teams where title = 't1'), 'written'),
        ($((1002 + n * 10)), (select id from public.users where name = 'u1'), '$t', 'written');
      update public.memberships set user_id = '$u', team_id = '$t'
        where id = (select min(id) from public.memberships where role = 'written')" >/dev/null ||
        _t_fail "the application's write $n failed"
}

# child_wrong DB [EMPTIED]: rows whose phasemig columns (whichever exist now) disagree with their
# originals: a shadow set to another value, a row written after both phase1s (id 1020 on) without
# its shadow, a legacy text not its parent's. EMPTIED names the plans (a, b) whose phase2 rollback
# has emptied their shadows, as phase1 left them: a row written before it may have none since.
child_wrong() {
    local a_emptied=false b_emptied=false
    [[ ${2:-} == *a* ]] && a_emptied=true
    [[ ${2:-} == *b* ]] && b_emptied=true
    q "$1" "select
      (select count(*) from public.memberships m join public.users u on u.id = m.user_id
         left join public.teams t on t.id = m.team_id, lateral (select to_jsonb(m) j, to_jsonb(u) ju, to_jsonb(t) jt) x
       where (x.j ? 'user_id_uuid' and (x.j->>'user_id_uuid')::uuid is distinct from (x.j->>'user_id')::uuid
                and (x.j->>'user_id_uuid' is not null or (m.id >= 1020 and not $a_emptied)))
          or (x.j ? 'team_id_uuid' and (x.j->>'team_id_uuid')::uuid is distinct from (x.j->>'team_id')::uuid
                and (x.j->>'team_id_uuid' is not null or (m.id >= 1020 and m.team_id is not null and not $b_emptied)))
          or (x.j ? 'user_id_legacy' and x.j->>'user_id_legacy' is distinct from x.ju->>'id_legacy')
          or (x.j ? 'team_id_legacy' and x.j->>'team_id_legacy' is distinct from x.jt->>'id_legacy'))
      + (select count(*) from public.users u where to_jsonb(u) ? 'id_legacy' and (to_jsonb(u)->>'id_legacy')::uuid <> (to_jsonb(u)->>'id')::uuid)
      + (select count(*) from public.teams t where to_jsonb(t) ? 'id_legacy' and (to_jsonb(t)->>'id_legacy')::uuid <> (to_jsonb(t)->>'id')::uuid)"
}
fk_defs() { q "$1" "select conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated from pg_constraint where contype in ('f', 'p') and connamespace = 'public'::regnamespace and conname <> 'migration_log_pkey' order by 1"; }
types() { echo "$(col_type "$1" public.users id) $(col_type "$1" public.teams id) $(col_type "$1" public.memberships user_id) $(col_type "$1" public.memberships team_id)"; }

# two_plans DB ORDER: both plans applied step by step (finalize included) with writes in between,
# then rolled back, A's phases first (ORDER=a) or all of B before A (ORDER=b)
two_plans() {
    local db=$1 order=$2 start start_fks n=0 step emptied=""
    shared_db "$db"
    start=$(db_state "$db") start_fks=$(fk_defs "$db")
    assert_exit 0 "A phase1" -- pa 1 "$db" apply
    write_rows "$db" $((++n))
    assert_exit 0 "B phase1" -- pb 1 "$db" apply
    assert_eq "phasemig_teams-uuid_uuid_fwd_1 phasemig_users-uuid_uuid_fwd_1" \
      "$(q "$db" "select string_agg(regexp_replace(tgname, '_[0-9a-f]{8}_', '_'), ' ' order by tgname) from pg_trigger where tgrelid = 'public.memberships'::regclass and not tgisinternal")" \
      "the shared table holds a trigger of each plan"
    write_rows "$db" $((++n))
    assert_eq "0" "$(child_wrong "$db")" "rows written after both phase1s have both shadows"
    for step in "pb 2 $db apply" "pa 2 $db apply" "pa 3 $db apply" "pb 3 $db apply" "pa 3 $db finalize" "pb 3 $db finalize"; do
        assert_exit 0 "$step" -- $step
        write_rows "$db" $((++n))
        assert_eq "0" "$(child_wrong "$db")" "the shared table right after $step"
    done
    assert_eq "0|0" "$(q "$db" "select count(*) filter (where user_id is null), count(*) filter (where team_id is null and role = 'written') from public.memberships")" "every written row kept its keys"
    assert_eq "uuid uuid uuid uuid" "$(types "$db")" "both keys and both foreign keys are uuid"
    assert_eq "$start_fks" "$(fk_defs "$db")" "keys and foreign keys with their names, actions, validated"
    if [ "$order" = a ]; then
        set -- "pa 3" "pb 3" "pa 2" "pb 2" "pa 1" "pb 1"
    else
        set -- "pb 3" "pb 2" "pb 1" "pa 3" "pa 2" "pa 1"
    fi
    for step in "$@"; do
        assert_exit 0 "$step rollback" -- $step "$db" rollback
        [ "${step#* }" = 2 ] && emptied+=${step:1:1}
        write_rows "$db" $((++n))
        assert_eq "0" "$(child_wrong "$db" "$emptied")" "the shared table right after $step rollback"
    done
    assert_eq "character varying(36) character varying(36) character varying(36) character varying(36)" "$(types "$db")" "text again"
    assert_eq "$start_fks" "$(fk_defs "$db")" "constraints as they were"
    assert_eq "1|1" "$(q "$db" "select count(*) from public.users where id = 'AB000001-0000-4000-8000-000000000001'")|$(q "$db" "select count(*) from public.memberships m join public.teams t on t.id = m.team_id where m.id = 1011 and t.title = 't1'")" "text written before the swaps kept byte for byte, joins hold"
    assert_eq "0|0" "$(q "$db" "select count(*) from pg_trigger where not tgisinternal")|$(q "$db" "select count(*) from migration_backup.phasemig_objects")" "no trigger, nothing registered"
    q "$db" "delete from public.memberships where role = 'written'; delete from public.users where name = 'written';
      delete from public.teams where title = 'written'" >/dev/null
    assert_eq "$start" "$(db_state "$db")" "without the application's rows: schema fingerprint and checksums equal the start"
}

test_case "two uuid plans sharing a child table: A's rollback first, then B's; writes in between end right"
two_plans shared_a a

test_case "two uuid plans sharing a child table: B rolled back entirely before A; writes in between end right"
two_plans shared_b b

test_case "a second plan converting a column another plan converts, or sharing a composite index with it, is refused by name"
shared_db refuse
q refuse "create index m_pair on public.memberships (team_id, user_id)" >/dev/null
start=$(db_state refuse)
edit_file "$PLAN" "$TEST_TMP/users-again.json" 's/"name": "string-to-uuid"/"name": "users-again"/'
assert_exit 0 "A phase1" -- pa 1 refuse apply
after_a=$(db_state refuse)
assert_exit 2 "another plan on users.id" -- phase 1 apply --plan "$TEST_TMP/users-again.json" --logs-dir "$LOGS" -d refuse
assert_contains "$LAST_ERR" 'column public.users.id is already converted by plan "users-uuid"' "names the column and the plan"
assert_exit 2 "B phase1: m_pair holds A's column" -- pb 1 refuse apply
assert_contains "$LAST_ERR" 'index "m_pair" on public.memberships also holds a column converted by plan "users-uuid"' "names the index and the plan"
assert_eq "$after_a" "$(db_state refuse)" "the refused runs changed nothing"
assert_exit 0 "B phase1 rollback after its refusal" -- pb 1 refuse rollback
assert_exit 0 "A phase1 rollback" -- pa 1 refuse rollback
assert_eq "$start" "$(db_state refuse)" "back to the start"

# ---------------------------------------------------------------- kill -9 midway through rollbacks
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS" -d "$db"; }
# rerun N DB ARGS...: at once, no retry: right after kill -9 the server may hold the plan's
# advisory lock for a moment (the killed session is still ending); the run waits for it (--lock-wait)
rerun() { run u "$@"; }
# kill_midway DB LABEL_LIKE ROWS PHASE: start "phaseN rollback" slowly, kill -9 it once its step
# LABEL_LIKE has checkpointed ROWS rows
kill_midway() {
    local db=$1 like=$2 rows=$3 n=$4 pid; shift 4
    "$BIN/phase$n" rollback --plan "$PLAN" --logs-dir "$LOGS" -d "$db" --batch-size 7 --sleep-ms 40 "$@" >"$TEST_TMP/killed.out" 2>&1 &
    pid=$!
    wait_for_sql "$db" "select coalesce(max(rows_done), 0) >= $rows from migration_log where operation like '$like' and status = 'running'" t 60
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    assert_eq "running" "$(q "$db" "select status from migration_log where operation like '$like' order by id desc limit 1")" "killed midway through $like"
}

test_case "rollback after finalize, then phase2 rollback, each kill -9'd midway and run again: the same as uninterrupted rollbacks"
new_db kclean
# half the keys invalid: phase2 regenerates them, so its rollback told to forget them has rows to put back
q kclean "create table public.users (id varchar(36) primary key, name text);
  create table public.notes (id int primary key, user_id varchar(36) references public.users on delete cascade, body text);
  insert into public.users select case when g % 2 = 0 then 'bad-' || g else upper(md5('k' || g)::uuid::text) end, 'n' || g from generate_series(1, 300) g;
  insert into public.notes select g, (select id from public.users order by name offset g % 300 limit 1), 'b' from generate_series(1, 600) g" >/dev/null
start=$(db_state kclean)
u 1 kclean apply >/dev/null 2>&1 && u 2 kclean apply --on-invalid=regenerate >/dev/null 2>&1 &&
  u 3 kclean apply >/dev/null 2>&1 && u 3 kclean finalize >/dev/null 2>&1 || _t_fail "applying the plan failed"
# the same database, regenerated uuids included
q postgres "create database kkilled template kclean" >/dev/null
assert_exit 0 "uninterrupted rollback after finalize" -- u 3 kclean rollback --batch-size 7
kill_midway kkilled 'restore legacy %' 60 3
rerun 3 kkilled rollback --batch-size 7
assert_eq "0" "$LAST_RC" "the rollback run again: $(tail -3 <<<"$LAST_ERR")"
assert_contains "$LAST_ERR" "resuming restore legacy" "resumed from its checkpoint"
assert_eq "$(db_state kclean)" "$(db_state kkilled)" "schema and every table equal the uninterrupted rollback"
assert_exit 0 "uninterrupted phase2 rollback" -- u 2 kclean rollback --batch-size 7 --discard-generated-uids
kill_midway kkilled 'reset shadow %' 30 2 --discard-generated-uids
rerun 2 kkilled rollback --batch-size 7 --discard-generated-uids
assert_eq "0" "$LAST_RC" "phase2 rollback run again: $(tail -3 <<<"$LAST_ERR")"
assert_contains "$LAST_ERR" "resuming reset shadow" "resumed from its checkpoint"
assert_eq "$(db_state kclean)" "$(db_state kkilled)" "schema and every table equal the uninterrupted rollback"
assert_eq "0|0" "$(q kkilled "select count(*) from public.users where id_uuid is not null")|$(q kkilled "select count(*) from migration_backup.\"string-to-uuid:uuid_map\"")" "shadows emptied as phase1 left them, regenerated keys forgotten when told"
for db in kclean kkilled; do
    assert_exit 0 "phase1 rollback of $db" -- u 1 $db rollback
    assert_eq "$start" "$(db_state $db)" "$db back to the start"
done

test_case "a regenerated uuid belongs to its row for good: rollback 3, 2, 1 and apply again give the same uuids"
new_db regen
q regen "create table public.users (id varchar(36) primary key, name text);
  create table public.notes (id int primary key, user_id varchar(36) references public.users on delete cascade);
  insert into public.users select case when g % 3 = 0 then 'bad-' || g else md5('r' || g)::uuid::text end, 'n' || g from generate_series(1, 90) g;
  insert into public.notes select g, (select id from public.users order by name offset g % 90 limit 1) from generate_series(1, 120) g" >/dev/null
apply_all() { u 1 regen apply >/dev/null 2>&1 && u 2 regen apply "$@" >/dev/null 2>&1 && u 3 regen apply >/dev/null 2>&1 || _t_fail "apply failed"; }
regenerated() { q regen "select string_agg(id_legacy || '=' || id, ',' order by id_legacy) from public.users where id_legacy like 'bad-%'"; }
apply_all --on-invalid=regenerate
first=$(regenerated)
[ -n "$first" ] || _t_fail "no regenerated key to compare"
for n in 3 2 1; do assert_exit 0 "phase$n rollback" -- u $n regen rollback; done
apply_all
assert_eq "$first" "$(regenerated)" "the same uuids after rollback 3, 2, 1 and apply again (no --on-invalid needed: the keys are known)"
assert_eq "0" "$(q regen "select count(*) from public.notes n join public.users u on u.id = n.user_id where n.user_id_legacy <> u.id_legacy")" "children follow"
for n in 3 2; do must u $n regen rollback; done
assert_exit 0 "phase1 rollback --discard-generated-uids" -- u 1 regen rollback --discard-generated-uids
assert_eq "" "$(q regen "select to_regclass('migration_backup.\"string-to-uuid:uuid_map\"')")" "the map is gone when told"
must u 1 regen apply
assert_exit 3 "phase2 refuses the invalid keys again" -- u 2 regen apply

# ---------------------------------------------------------------- the stall under load, 200,000 users
STALL_USERS=${T21_STALL_USERS:-200000}
test_case "rollback after finalize at $(sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$STALL_USERS") users under pgbench load: the longest stall stays within lock timeout + a batch"
PGBENCH=$(command -v pgbench || { source "$ROOT/scripts/lib/cluster.sh"; echo "$(cluster_bindir)/pgbench"; })
gen_app big "$STALL_USERS" t21 "$TEST_TMP/data-big"
start=$(db_state big)
for step in "1 apply" "2 apply" "3 apply" "3 finalize"; do
    assert_exit 0 "phase$step" -- u ${step% *} big ${step#* }
done
# the application: row locks on a user and its journal entries (values written unchanged, so the
# tables can be compared with the start), and now and then a new user, removed afterwards
cat >"$TEST_TMP/load.sql" <<'SQL'
\set r random(0, 4294967295)
\set action random(1, 10)
SELECT lpad(to_hex(:r), 8, '0') || '-0000-0000-0000-000000000000' AS low \gset
SELECT coalesce((SELECT id FROM public.users WHERE id >= ':low' ORDER BY id LIMIT 1),
                (SELECT id FROM public.users ORDER BY id LIMIT 1)) AS uid \gset
\if :action = 1
INSERT INTO public.users (id, email, name)
VALUES (('eeeeeeee-eeee-' || substr(gen_random_uuid()::text, 15))::uuid, 'load@t21.invalid', 'load');
\else
BEGIN;
UPDATE public.users SET name = name WHERE id = ':uid';
UPDATE public.journal_entries SET title = title WHERE user_id = ':uid';
COMMIT;
\endif
SQL
# pgbench in 3-second runs until told to stop: each run ends cleanly, its per-transaction log complete
: >"$TEST_TMP/load.rc"
(
    i=0
    while [ ! -e "$TEST_TMP/load.stop" ]; do
        "$PGBENCH" -n -f "$TEST_TMP/load.sql" -c 2 -j 2 -T 3 -l --log-prefix="$TEST_TMP/load.$i" big \
            >"$TEST_TMP/load.$i.out" 2>"$TEST_TMP/load.$i.err"
        echo "$?" >>"$TEST_TMP/load.rc"
        i=$((i + 1))
    done
) &
loader=$!
on_exit "touch '$TEST_TMP/load.stop'; kill $loader 2>/dev/null"
sleep 2
t0=$(date +%s.%N)
assert_exit 0 "phase3 rollback under load" -- u 3 big rollback
t1=$(date +%s.%N)
touch "$TEST_TMP/load.stop"; wait "$loader"
# a log line: client transaction latency_us script epoch_s epoch_us; a non-number latency is a failure
read -r tx failed longest <<<"$(cat "$TEST_TMP"/load.[0-9]*.[0-9]* | awk -v t0="$t0" -v t1="$t1" '
    NF < 6 { next }
    { end = $5 + $6 / 1e6 }
    $3 !~ /^[0-9]+$/ { failed++; next }
    end >= t0 && end - $3 / 1e6 <= t1 { n++; if ($3 > max) max = $3 }
    END { printf "%d %d %.0f\n", n, failed, max / 1000 }')"
echo "# rollback after finalize at $STALL_USERS users took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; the load ran $tx transactions during it, longest ${longest} ms, $failed failed" >&2
assert_eq "" "$(grep -v '^0$' "$TEST_TMP/load.rc")" "every pgbench run exited 0: $(cat "$TEST_TMP"/load.*.err | grep -m3 -i 'error\|abort')"
assert_eq "0" "$failed" "no failed transaction"
[ "$tx" -gt 100 ] || _t_fail "the load ran only $tx transactions during the rollback"
[ "$longest" -lt 3000 ] || _t_fail "the application stalled $longest ms (lock timeout 1 s + one batch; 5.5 s before batching)"
assert_exit 0 "phase2 rollback" -- u 2 big rollback
assert_exit 0 "phase1 rollback" -- u 1 big rollback
q big "delete from public.users where email = 'load@t21.invalid'" >/dev/null
assert_eq "$start" "$(db_state big)" "without the load's users: schema and every table equal the start"
