# t49_jobs_contract.sh -- phase3 apply --jobs: convert_to_uuid's index builds and validations one
# table per connection. --jobs 2 leaves exactly the state --jobs 1 leaves (schema fingerprint,
# constraint definitions, rows); a --jobs 2 run killed (kill -9) while a worker builds an index,
# then run again without --jobs, ends in that same state with no INVALID index; a worker whose
# table stays locked gives up (lock timeout), the other stops at its boundary, exit 1 with the
# message, and a re-run completes; an application writing through the run loses nothing.
source "$(dirname "$0")/lib.sh"

UUID_PLAN=$ROOT/plans/string-to-uuid.json
must_dirs LOGS DATA
# three DDL attempts, not thirty: the locked-table case gives up in well under a second
FEW_PLAN=$TEST_TMP/few-attempts.json
sed 's/"ddl_attempts": 30/"ddl_attempts": 3/' "$UUID_PLAN" >"$FEW_PLAN"
uuid_app() { gen_app "$1" 2000 t49 "$DATA/uuid-$1"; }
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$UUID_PLAN" --logs-dir "$LOGS" -d "$db"; }
# up_to_phase3 DB: phase1 apply, phase2 apply, phase3 check
up_to_phase3() {
    assert_exit 0 "phase1 ($1)" -- u 1 "$1" apply
    assert_exit 0 "phase2 ($1)" -- u 2 "$1" apply --batch-size 500
    assert_exit 0 "phase3 check ($1)" -- u 3 "$1" check
}
# every constraint of the application's tables, as the catalog defines it
constraints() {
    q "$1" "select string_agg(conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated, E'\n' order by conrelid::regclass::text, conname)
            from pg_constraint where connamespace = 'public'::regnamespace"
}
invalid_indexes() { q "$1" "select count(*) from pg_index i join pg_class c on c.oid = i.indrelid where c.relnamespace = 'public'::regnamespace and not (i.indisvalid and i.indisready)"; }
running() { q "$1" "select count(*) from migration_log where status = 'running'"; }
# hold DB SQL: a session that runs SQL in an open transaction and stays idle in it (until unhold)
# (the feeding sleep writes nowhere the runner waits on, and goes with the session)
hold() {
    { echo "BEGIN; $2"; exec sleep 60; } </dev/null 2>/dev/null | psql -X -q -d "$1" >/dev/null 2>&1 &
    HOLDER=$!
    HOLD_SLEEP=$(pgrep -P $$ -n -x sleep || true)
    wait_for_sql "$1" "select count(*) > 0 from pg_stat_activity where datname = '$1' and state = 'idle in transaction'" t 20
}
unhold() {
    kill "$HOLDER" ${HOLD_SLEEP:-} 2>/dev/null; wait "$HOLDER" 2>/dev/null
    q "$1" "select pg_terminate_backend(pid) from pg_stat_activity where datname = '$1' and state = 'idle in transaction'" >/dev/null
}

test_case "phase3 apply --jobs 2 leaves exactly the state --jobs 1 leaves"
uuid_app one; uuid_app two
up_to_phase3 one; up_to_phase3 two
assert_exit 0 "phase3 apply --jobs 1" -- u 3 one apply --yes --jobs 1
assert_not_contains "$LAST_ERR" "connections, largest first" "--jobs 1: the run's own connection only"
assert_exit 0 "phase3 apply --jobs 2" -- u 3 two apply --yes --jobs 2
assert_contains "$LAST_ERR" "tables on 2 connections, largest first" "--jobs 2: two connections"
assert_eq "$(schema_fingerprint one)" "$(schema_fingerprint two)" "the same schema fingerprint"
assert_eq "$(constraints one)" "$(constraints two)" "the same constraint definitions, all validated alike"
assert_eq "$(table_checksums one)" "$(table_checksums two)" "the same rows"
assert_eq "0" "$(invalid_indexes two)" "no INVALID index"
assert_eq "$(q one "select string_agg(operation || ' ' || status, ', ' order by id) from migration_log where phase = 3")" \
          "$(q two "select string_agg(operation || ' ' || status, ', ' order by id) from migration_log where phase = 3")" \
          "migration_log: the same phase3 steps, each done"
assert_exit 0 "phase3 apply --jobs 2 again: nothing left to do" -- u 3 two apply --yes --jobs 2
assert_eq "$(db_state one)" "$(db_state two)" "still the same"

test_case "phase3 check --jobs 2 finds exactly what --jobs 1 finds, in the same order"
uuid_app bad
assert_exit 0 "phase1 (bad)" -- u 1 bad apply
assert_exit 0 "phase2 (bad)" -- u 2 bad apply --batch-size 500
# writes the triggers did not see: a key's shadow and two children's shadows no longer say what their originals say
q bad "set session_replication_role = replica;
       update public.users set id_uuid = gen_random_uuid() where id = (select min(id) from public.users);
       update public.journal_entries set user_id_uuid = null where id in (select id from public.journal_entries order by id limit 2);
       update public.reminders set user_id_uuid = gen_random_uuid() where id = (select min(id) from public.reminders where user_id is not null)" >/dev/null
assert_exit 3 "phase3 check --jobs 1" -- u 3 bad check --json --jobs 1
one_json=$LAST_OUT
assert_exit 3 "phase3 check --jobs 2" -- u 3 bad check --json --jobs 2
assert_contains "$LAST_ERR" "tables on 2 connections, largest first" "--jobs 2: two connections"
assert_eq "$one_json" "$LAST_OUT" "the same findings, samples and order"
assert_contains "$LAST_OUT" '"orphan"' "a child's finding among them"

test_case "a --jobs 2 run killed (kill -9) while a worker builds an index, run again without --jobs: the same state, no INVALID index"
uuid_app kill
up_to_phase3 kill
# an open transaction that wrote to users: the CONCURRENTLY build on users waits for it
hold kill "UPDATE public.users SET name = name WHERE false;"
"$BIN/phase3" apply --yes --jobs 2 --plan "$UUID_PLAN" --logs-dir "$LOGS" -d kill >"$TEST_TMP/k.out" 2>&1 &
victim=$!
wait_for_sql kill "select count(*) > 0 from pg_stat_activity where datname = 'kill' and application_name like '%, job _)'
                     and query like 'CREATE UNIQUE INDEX CONCURRENTLY%' and wait_event_type = 'Lock'" t 30
kill -9 "$victim"; wait "$victim" 2>/dev/null
# the server ends the killed run's statements (as it would once its client is gone)
q kill "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'kill' and application_name like '%phasemig run%'" >/dev/null
unhold kill
wait_for_sql kill "select count(*) = 0 from pg_stat_activity where datname = 'kill' and application_name like '%phasemig run%'" t 20
assert_ne "0" "$(invalid_indexes kill)" "the interrupted build left an INVALID index"
assert_ne "0" "$(running kill)" "the killed run left its rows running"
assert_exit 0 "phase3 apply without --jobs" -- u 3 kill apply --yes
assert_contains "$LAST_ERR" "is INVALID (an earlier build was interrupted); rebuilding it" "the INVALID index rebuilt"
assert_eq "0" "$(invalid_indexes kill)" "no INVALID index"
assert_eq "$(schema_fingerprint one)" "$(schema_fingerprint kill)" "the same schema fingerprint as --jobs 1"
assert_eq "$(constraints one)" "$(constraints kill)" "the same constraint definitions"
assert_eq "$(table_checksums one)" "$(table_checksums kill)" "the same rows"
assert_eq "0" "$(running kill)" "no row left running"

test_case "a worker whose table stays locked gives up (lock timeout): the other stops at its boundary, exit 1, the re-run completes"
uuid_app lock
up_to_phase3 lock
# journal_entries's user_id is NOT NULL: its shadow's CHECK needs a moment of ACCESS EXCLUSIVE
hold lock "LOCK TABLE public.journal_entries IN ACCESS SHARE MODE;"
assert_exit 1 "phase3 apply --jobs 2, journal_entries locked" -- phase 3 apply --yes --jobs 2 --lock-timeout 50 \
    --plan "$FEW_PLAN" --logs-dir "$LOGS" -d lock
assert_contains "$LAST_ERR" "gave up on ALTER TABLE public.journal_entries ADD CONSTRAINT" "says which change gave up"
assert_contains "$LAST_ERR" "after 3 attempts: the table stayed locked by other sessions" "and why"
assert_eq "failed" "$(q lock "select status from migration_log where phase = 3 and operation = 'apply' order by id desc limit 1")" "the run recorded as failed"
assert_eq "0" "$(running lock)" "no row left running"
assert_eq "character varying(36)" "$(col_type lock public.users id)" "no swap"
assert_eq "0" "$(invalid_indexes lock)" "no INVALID index"
unhold lock
assert_exit 0 "phase3 apply again" -- u 3 lock apply --yes --jobs 2
assert_eq "$(db_state one)" "$(db_state lock)" "the same state as --jobs 1"
assert_eq "$(constraints one)" "$(constraints lock)" "the same constraint definitions"

test_case "an application writing through a --jobs 2 phase3 apply loses nothing"
uuid_app write
up_to_phase3 write
cat >"$TEST_TMP/w.sql" <<'SQL'
\set v random(1, 1000000000)
BEGIN;
WITH u AS (INSERT INTO public.users (email, name) VALUES ('w-' || :v || '@t49.test', 'w49') RETURNING id)
INSERT INTO public.journal_entries (user_id, title) SELECT id, 'w49' FROM u;
COMMIT;
SQL
pgbench -n -M simple -T 6 -c 1 -f "$TEST_TMP/w.sql" write >"$TEST_TMP/w.out" 2>&1 &
writer=$!
sleep 1
assert_exit 0 "phase3 apply --jobs 2 under writes" -- u 3 write apply --yes --jobs 2
wait "$writer"; rc=$?
assert_eq "0" "$rc" "the writer ended without error ($(tail -3 "$TEST_TMP/w.out"))"
assert_contains "$(cat "$TEST_TMP/w.out")" "number of failed transactions: 0 " "no failed transaction"
n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TEST_TMP/w.out")
assert_ne "0" "${n:-0}" "transactions ran"
assert_eq "$n" "$(q write "select count(*) from public.users where name = 'w49'")" "every user written is there"
assert_eq "$n" "$(q write "select count(*) from public.journal_entries j join public.users u on u.id = j.user_id where j.title = 'w49'")" \
    "every entry written is there, pointing at its user"
assert_eq "0" "$(q write "select count(*) from public.users where id_legacy is distinct from id::text")" "every key's legacy text kept"
assert_eq "uuid" "$(col_type write public.users id)" "swapped"
assert_eq "0" "$(invalid_indexes write)" "no INVALID index"

# ---------------------------------------------------------------- rollbacks' batches
ranges() { q "$1" "select count(*) from migration_log where phase = $2 and operation ~ ' \[[0-9]+/[0-9]+\]\$'"; }

test_case "phase3 rollback then phase2 rollback --jobs 2 leave exactly what --jobs 1 leaves (the shadows emptied in key ranges)"
assert_exit 0 "phase3 rollback --jobs 1" -- u 3 one rollback --jobs 1
assert_exit 0 "phase3 rollback --jobs 2" -- u 3 two rollback --jobs 2
assert_eq "$(db_state one)" "$(db_state two)" "after phase3 rollback: the same schema and rows"
assert_eq "$(constraints one)" "$(constraints two)" "the same constraint definitions"
assert_exit 0 "phase2 rollback --jobs 1" -- u 2 one rollback --batch-size 100 --jobs 1
assert_eq "0" "$(ranges one 2)" "--jobs 1: no key ranges"
assert_exit 0 "phase2 rollback --jobs 2" -- u 2 two rollback --batch-size 100 --jobs 2
assert_contains "$LAST_ERR" "key ranges on 2 connections" "--jobs 2: key ranges on two connections"
assert_ne "0" "$(ranges two 2)" "each range recorded"
assert_eq "$(db_state one)" "$(db_state two)" "after phase2 rollback: the same schema and rows"
assert_eq "0" "$(q two "select count(*) from public.users where id_uuid is not null")" "every key's shadow emptied"
assert_exit 0 "phase2 apply, then phase2 rollback --jobs 2 once more" -- u 2 two apply --batch-size 500
assert_exit 0 "phase2 rollback --jobs 2" -- u 2 two rollback --batch-size 100 --jobs 2
assert_eq "$(db_state one)" "$(db_state two)" "the same again"

test_case "a phase2 rollback --jobs 2 killed (kill -9) part way, run again without --jobs: each range resumed, the same state"
assert_exit 0 "phase3 rollback (kill)" -- u 3 kill rollback
"$BIN/phase2" rollback --plan "$UUID_PLAN" --logs-dir "$LOGS" -d kill --batch-size 50 --sleep-ms 30 --jobs 2 >"$TEST_TMP/rk.out" 2>&1 &
victim=$!
wait_for_sql kill "select count(*) >= 2 from migration_log where phase = 2 and operation ~ '^reset shadow public.users.id \[' and rows_done >= 100" t 60
kill -9 "$victim"; wait "$victim" 2>/dev/null
assert_ne "0" "$(running kill)" "the killed run left its ranges running"
assert_exit 0 "phase2 rollback without --jobs" -- u 2 kill rollback --batch-size 50
assert_contains "$LAST_ERR" "resuming reset shadow public.users.id [" "took over the killed run's ranges"
assert_eq "0" "$(running kill)" "no row left running"
assert_eq "$(db_state one)" "$(db_state kill)" "the same schema and rows as the uninterrupted --jobs 1 rollback"

test_case "clerk to firebase: phase2 rollback --jobs 2 restores from migration_backup in key ranges, as at phase1"
CLERK_PLAN=$ROOT/plans/clerk-to-firebase.json
c() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$CLERK_PLAN" --logs-dir "$LOGS" -d "$db"; }
gen_app clerk 2000 t49c "$DATA"
assert_exit 0 "phase1" -- c 1 clerk apply
before=$(db_state clerk)
assert_exit 0 "phase2" -- c 2 clerk apply --mapping "$DATA/firebase-export.json" --batch-size 500
assert_ne "$before" "$(db_state clerk)" "phase2 changed the rows"
assert_exit 0 "phase2 rollback --jobs 2" -- c 2 clerk rollback --batch-size 100 --jobs 2
assert_contains "$LAST_ERR" "key ranges on 2 connections" "the first pass in key ranges on two connections"
assert_eq "$before" "$(db_state clerk)" "schema and rows as phase1 left them"
