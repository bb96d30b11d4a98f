# t42_jobs.sh -- phase2 apply --jobs: key ranges on several connections give the same data
# and the same migration_log totals as one connection, for both jobs, also when a --jobs run
# is killed (kill -9) or stopped (SIGTERM) and resumed with another --jobs, when its main connection idles under idle_session_timeout or is terminated,
# and when one job fails (its backend terminated, its checkpoint or its COMMIT refused): one
# failure recorded, the other job stopped at its batch boundary, exit 1, the re-run completes.
source "$(dirname "$0")/lib.sh"

UUID_PLAN=$ROOT/plans/string-to-uuid.json
CLERK_PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs LOGS DATA
# uuid_app DB, clerk_app DB: the legacy app schema with 2000 generated users (same seed every time)
uuid_app() { gen_app "$1" 2000 t42 "$DATA/uuid-$1"; }
clerk_app() { gen_app "$1" 2000 t42c "$DATA"; }
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$UUID_PLAN" --logs-dir "$LOGS" -d "$db"; }
c() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$CLERK_PLAN" --logs-dir "$LOGS" -d "$db"; }
# rows each table's fills filled, over every run since phase1: " [i/n]" ranges added up
filled() {
    q "$1" "select regexp_replace(operation, ' \[[0-9]+/[0-9]+\]\$', '') as op,
              sum(coalesce((metadata->>'rows_changed')::bigint, (metadata->>'rows_filled')::bigint, 0))
            from migration_log where phase = 2 and (operation like 'fill %' or operation like 'backfill %')
              and (metadata ? 'rows_changed' or metadata ? 'rows_filled') and not metadata ? 'mapping_users'
            group by 1 order by 1"
}
ranges() { q "$1" "select count(*) from migration_log where phase = 2 and operation ~ ' \[[0-9]+/[0-9]+\]\$'"; }
all_rows() { q "$1" "select (select count(*) from public.users) + (select count(*) from public.journal_entries)
                      + (select count(*) from public.tags) + (select count(*) from public.reminders)"; }
running() { q "$1" "select count(*) from migration_log where status = 'running'"; }
users_md5() { q "$1" "select md5(string_agg(to_jsonb(u)::text, '' order by id)) from public.users u"; }

# ---------------------------------------------------------------- string to uuid
test_case "string to uuid: --jobs 2 fills every table in key ranges on two connections, the same as --jobs 1"
uuid_app one; uuid_app two
assert_exit 0 "phase1 (one)" -- u 1 one apply
assert_exit 0 "phase1 (two)" -- u 1 two apply
assert_exit 0 "phase2 --jobs 1" -- u 2 one apply --batch-size 100 --jobs 1
assert_exit 0 "phase2 --jobs 2" -- u 2 two apply --batch-size 100 --jobs 2
assert_contains "$LAST_ERR" "on 2 connections" "two connections used"
assert_ne "0" "$(ranges two)" "tables split into key ranges"
assert_eq "0" "$(ranges one)" "--jobs 1 does not split"
assert_eq "$(table_checksums one)" "$(table_checksums two)" "every table identical"
assert_eq "$(filled one)" "$(filled two)" "migration_log: the same rows filled per table"
assert_eq "0" "$(q two "select count(*) from public.users where id_uuid is null")" "every key's shadow filled"
assert_exit 0 "status" -- u 2 two status
assert_contains "$LAST_OUT" "fill public.users.id [1/2]" "status shows each range"
assert_exit 0 "phase3 check on the --jobs 2 fill (children against their parents)" -- u 3 two check
assert_exit 0 "phase2 --jobs 2 again: nothing left to change" -- u 2 two apply --batch-size 100 --jobs 2
assert_eq "$(table_checksums one)" "$(table_checksums two)" "still identical"
assert_exit 0 "status" -- u 2 two status
n=$(all_rows two)
assert_contains "$LAST_OUT" "all tables: $n of $n rows scanned (100.0%)" "status counts the newest pass once"
assert_exit 0 "phase2 --jobs 1 after --jobs 2" -- u 2 two apply --batch-size 100
assert_exit 0 "status" -- u 2 two status
assert_contains "$LAST_OUT" "all tables: $n of $n rows scanned (100.0%)" "status shows the newest pass, not its ranges beside it"
assert_not_contains "$LAST_OUT" "[1/2]" "the older pass's ranges are not shown"

test_case "string to uuid: a --jobs 2 run killed (kill -9), resumed with --jobs 1, then SIGTERM'd and resumed with --jobs 2"
uuid_app kill
assert_exit 0 "phase1" -- u 1 kill apply
"$BIN/phase2" apply --plan "$UUID_PLAN" --logs-dir "$LOGS" -d kill --batch-size 50 --sleep-ms 30 --jobs 2 >"$TEST_TMP/k1.out" 2>&1 &
victim=$!
wait_for_sql kill "select count(*) >= 2 from migration_log where operation ~ '\[' and rows_done >= 200" t 60
kill -9 "$victim"; wait "$victim" 2>/dev/null
assert_ne "0" "$(running kill)" "the killed run left its rows running"
assert_eq "t" "$(q kill "select bool_and(k.n = l.rows_done - (l.metadata->>'progress_from_rows')::bigint) from
   migration_log l, lateral (select count(*) n from public.users t
     where t.id > coalesce(l.metadata->>'range_after', '') and t.id <= l.last_key) k
   where l.operation ~ '^fill public.users.id \[' and l.last_key is not null")" \
   "each range's checkpoint counts exactly the rows of its committed batches"
"$BIN/phase2" apply --plan "$UUID_PLAN" --logs-dir "$LOGS" -d kill --batch-size 50 --sleep-ms 30 --jobs 1 >"$TEST_TMP/k2.out" 2>&1 &
victim=$!
sleep 1.5
kill -TERM "$victim"; wait "$victim"; rc=$?
assert_eq "1" "$rc" "SIGTERM: exit 1 ($(tail -2 "$TEST_TMP/k2.out"))"
assert_contains "$(cat "$TEST_TMP/k2.out")" "resuming the interrupted fill public.users.id [" "the --jobs 1 run took over the killed run's ranges"
assert_eq "0" "$(running kill)" "no row left running"
assert_exit 0 "phase2 --jobs 2 finishes" -- u 2 kill apply --batch-size 50 --jobs 2
assert_contains "$LAST_ERR" "resuming the interrupted" "resumed"
assert_eq "$(table_checksums one)" "$(table_checksums kill)" "every table identical to the uninterrupted runs"
assert_eq "$(filled one)" "$(filled kill)" "migration_log: each row filled once over the three runs"
assert_exit 0 "status" -- u 2 kill status
n=$(all_rows kill)
assert_contains "$LAST_OUT" "all tables: $n of $n rows scanned (100.0%)" "status adds up the ranges of the three runs, each once"
assert_not_contains "$LAST_OUT" "interrupted;" "no range shown as interrupted"
assert_eq "0" "$(running kill)" "no row left running"

# ---------------------------------------------------------------- the main connection of a --jobs run
# the run's own connection (it holds the plan's lock), not a job's: "phase2 apply (phasemig run 1234abcd)"
main_backend="application_name ~ '^phase2 apply \(phasemig run [0-9a-f]{8}\)\$'"
test_case "string to uuid: --jobs 2 under a role's idle_session_timeout = 2s: the main connection, idle while the jobs fill, is kept; the run ends as an uninterrupted one"
uuid_app idle
assert_exit 0 "phase1" -- u 1 idle apply
must q idle "alter role current_user in database idle set idle_session_timeout = '2s'"
t0=$SECONDS
assert_exit 0 "phase2 --jobs 2" -- u 2 idle apply --batch-size 50 --sleep-ms 60 --jobs 2
took=$((SECONDS - t0))
[ "$took" -ge 4 ] || _t_fail "the run took ${took}s: too short for the 2s idle timeout to matter"
assert_not_contains "$LAST_ERR" "no connection to the server" "no connection lost"
assert_eq "0" "$(running idle)" "no row left running"
assert_eq "0" "$(q idle "select count(*) from migration_log where phase = 2 and status <> 'done'")" "every phase2 row done"
assert_eq "$(table_checksums one)" "$(table_checksums idle)" "every table as the uninterrupted --jobs 1 run left it"
assert_eq "$(filled one)" "$(filled idle)" "migration_log: the same rows filled per table"
must q idle "alter role current_user in database idle reset idle_session_timeout"

test_case "string to uuid: pg_terminate_backend of a --jobs 2 run's main connection fails the run (exit 1, recorded failed, no row running); a re-run ends as an uninterrupted one"
uuid_app term
assert_exit 0 "phase1" -- u 1 term apply
"$BIN/phase2" apply --plan "$UUID_PLAN" --logs-dir "$LOGS" -d term --batch-size 50 --sleep-ms 30 --jobs 2 >"$TEST_TMP/t1.out" 2>&1 &
victim=$!
wait_for_sql term "select count(*) >= 2 from migration_log where operation ~ '\[' and rows_done >= 200" t 60
assert_eq "t" "$(q term "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'term' and $main_backend")" "the main backend terminated"
wait "$victim"; rc=$?
out=$(cat "$TEST_TMP/t1.out")
assert_eq "1" "$rc" "exit 1 ($(tail -3 <<<"$out"))"
assert_contains "$out" "the run's own connection was lost" "says the main connection was lost"
assert_not_contains "$out" "apply: done" "never says done"
assert_eq "0" "$(running term)" "no row left running"
assert_eq "failed" "$(q term "select status from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")" "the run recorded as failed"
assert_ne "0" "$(q term "select count(*) from public.users where id_uuid is null")" "the fill stopped part way"
assert_exit 0 "status after the lost run" -- u 2 term status
assert_contains "$LAST_OUT" "last run: apply failed" "status: the run failed"
assert_contains "$LAST_OUT" "the run's own connection was lost" "status says why"
assert_exit 0 "phase2 --jobs 2 again" -- u 2 term apply --batch-size 50 --jobs 2
assert_contains "$LAST_ERR" "resuming the interrupted" "resumed from the checkpoints"
assert_eq "$(table_checksums one)" "$(table_checksums term)" "every table as the uninterrupted --jobs 1 run left it"
assert_eq "$(filled one)" "$(filled term)" "migration_log: each row filled once over the two runs"
assert_eq "0" "$(running term)" "no row left running"

# ---------------------------------------------------------------- one job fails
# job_fails DB HOW: a --jobs 2 fill whose job 2 fails while job 1 fills: HOW is terminate (job 2's
# backend terminated), checkpoint (a trigger refuses range [2/2]'s checkpoint at 600 rows) or commit
# (the same, deferred: its COMMIT fails). The failing job returns its failure; the main thread stops
# the other at its batch boundary, records every range once and exits 1; the re-run completes.
job_fails() {
    local db=$1 how=$2 deferred="" rc out
    uuid_app "$db"
    assert_exit 0 "phase1" -- u 1 "$db" apply
    "$BIN/phase2" apply --plan "$UUID_PLAN" --logs-dir "$LOGS" -d "$db" --batch-size 50 --sleep-ms 100 --jobs 2 >"$TEST_TMP/$db.out" 2>&1 &
    victim=$!
    wait_for_sql "$db" "select count(*) = 2 from migration_log where operation ~ '^fill public.users.id \[' and rows_done >= 100" t 60
    if [ "$how" = terminate ]; then
        assert_eq "t" "$(q "$db" "select pg_terminate_backend(pid) from pg_stat_activity where datname = '$db' and application_name like '%, job 2)'")" "job 2's backend terminated"
    else
        # added once the run has checked phasemig's state (which refuses a trigger on migration_log)
        [ "$how" = commit ] && deferred="constraint"
        q "$db" "create function public.refuse_checkpoint() returns trigger language plpgsql as \$\$ begin
          raise exception 'refusing the checkpoint of % at % rows', new.operation, new.rows_done; end \$\$;
          create $deferred trigger refuse_checkpoint after update on public.migration_log
            $([ "$how" = commit ] && echo "deferrable initially deferred") for each row
            when (new.operation = 'fill public.users.id [2/2]' and new.status = 'running' and new.rows_done >= 600)
            execute function public.refuse_checkpoint()" >/dev/null
    fi
    wait "$victim"; rc=$?
    out=$(cat "$TEST_TMP/$db.out")
    assert_eq 1 "$rc" "exit 1 ($(tail -3 <<<"$out"))"
    assert_not_contains "$out" "internal error" "no exit from a worker thread"
    [ "$how" = terminate ] || assert_contains "$out" "refusing the checkpoint of fill public.users.id [2/2]" "the failure shown"
    assert_contains "$out" "because another job failed" "the other job stopped at its batch boundary"
    assert_not_contains "$out" "apply: done" "never says done"
    assert_eq "0" "$(running "$db")" "no row left running"
    assert_eq "failed" "$(q "$db" "select string_agg(status, ',') from migration_log where phase = 2 and operation = 'apply'")" "the run recorded failed, once"
    assert_eq "1" "$(q "$db" "select count(*) from migration_log where phase = 2 and operation ~ '\[' and status = 'failed'
        and message not like 'not started%'")" "one range failed with its reason, the one whose job failed"
    [ "$how" = terminate ] || assert_eq "fill public.users.id [2/2]" "$(q "$db" "select operation from migration_log where phase = 2
        and operation ~ '\[' and message like 'refusing the checkpoint%'")" "the failed range"
    assert_eq "$(q "$db" "select message from migration_log where phase = 2 and operation = 'apply'")" \
        "$(q "$db" "select message from migration_log where phase = 2 and operation ~ '\[' and status = 'failed' and message not like 'not started%'")" \
        "the run's reason is that range's failure"
    assert_eq "0" "$(q "$db" "select count(*) from migration_log where phase = 2 and operation ~ '^fill public.journal_entries' and status <> 'done'")" \
        "the ranges done before the failure recorded done"
    assert_eq "t" "$(q "$db" "select bool_and(k.n = l.rows_done - (l.metadata->>'progress_from_rows')::bigint) from
       migration_log l, lateral (select count(*) n from public.users t
         where t.id > coalesce(l.metadata->>'range_after', '') and t.id <= l.last_key) k
       where l.operation ~ '^fill public.users.id \[' and l.last_key is not null")" \
       "each range's checkpoint counts exactly the rows of its committed batches"
    q "$db" "drop trigger if exists refuse_checkpoint on public.migration_log; drop function if exists public.refuse_checkpoint()" >/dev/null
    assert_exit 0 "phase2 --jobs 2 again" -- u 2 "$db" apply --batch-size 50 --jobs 2
    assert_contains "$LAST_ERR" "resuming the interrupted" "resumed from the checkpoints"
    assert_eq "$(table_checksums one)" "$(table_checksums "$db")" "every table as the uninterrupted --jobs 1 run left it"
    assert_eq "$(filled one)" "$(filled "$db")" "migration_log: each row filled once over the two runs"
    assert_eq "0" "$(running "$db")" "no row left running"
}
test_case "string to uuid: a --jobs 2 run whose job 2's backend is terminated: that job returns its failure, the other stops at its batch boundary, one failure recorded, exit 1; the re-run completes"
job_fails jterm terminate
test_case "string to uuid: a --jobs 2 run whose job 2's checkpoint fails (a trigger refuses it): the same"
job_fails jcheck checkpoint
test_case "string to uuid: a --jobs 2 run whose job 2's COMMIT fails (a deferred trigger refuses it): the same, nothing of that batch counted"
job_fails jcommit commit

# ---------------------------------------------------------------- clerk to firebase
test_case "clerk to firebase: --jobs 2 gives the same users and totals as --jobs 1; its shared lookups are dropped"
clerk_app cone; clerk_app ctwo
assert_exit 0 "phase1 (one)" -- c 1 cone apply
assert_exit 0 "phase1 (two)" -- c 1 ctwo apply
assert_exit 0 "phase2 --jobs 1" -- c 2 cone apply --mapping "$DATA/firebase-export.json" --batch-size 100
assert_exit 0 "phase2 --jobs 2" -- c 2 ctwo apply --mapping "$DATA/firebase-export.json" --batch-size 100 --jobs 2
assert_contains "$LAST_ERR" "on 2 connections" "two connections used"
assert_ne "0" "$(ranges ctwo)" "users split into key ranges"
assert_eq "$(users_md5 cone)" "$(users_md5 ctwo)" "users identical"
assert_eq "$(q cone "select md5(string_agg((to_jsonb(b) - 'saved_at')::text, '' order by key)) from migration_backup.\"clerk-to-firebase:backfill\" b")" \
          "$(q ctwo "select md5(string_agg((to_jsonb(b) - 'saved_at')::text, '' order by key)) from migration_backup.\"clerk-to-firebase:backfill\" b")" \
          "the same originals and written values saved"
assert_eq "$(q cone "select metadata->>'rows_filled' from migration_log where operation like 'backfill %' and metadata ? 'mapping_users'")" \
          "$(q ctwo "select metadata->>'rows_filled' from migration_log where operation like 'backfill %' and metadata ? 'mapping_users'")" \
          "migration_log: the same rows filled"
assert_eq "" "$(q ctwo "select string_agg(relname, ', ') from pg_class where relnamespace = 'migration_backup'::regnamespace
  and relname ~ ':(by_clerk_id|by_email|profile)\$'")" "the shared lookup tables are gone"
assert_exit 0 "phase2 --jobs 2 again: nothing left to fill" -- c 2 ctwo apply --mapping "$DATA/firebase-export.json" --batch-size 100 --jobs 2
assert_eq "$(users_md5 cone)" "$(users_md5 ctwo)" "users still identical"

test_case "clerk to firebase: a --jobs 2 run killed (kill -9) and resumed with --jobs 2 and --generate-missing"
clerk_app ckill
assert_exit 0 "phase1" -- c 1 ckill apply
"$BIN/phase2" apply --plan "$CLERK_PLAN" --logs-dir "$LOGS" -d ckill --mapping "$DATA/firebase-export.json" \
    --batch-size 50 --sleep-ms 30 --jobs 2 >"$TEST_TMP/c1.out" 2>&1 &
victim=$!
wait_for_sql ckill "select count(*) >= 2 from migration_log where operation ~ '\[' and rows_done >= 200" t 60
kill -9 "$victim"; wait "$victim" 2>/dev/null
assert_exit 0 "phase2 again, with --generate-missing" -- c 2 ckill apply --mapping "$DATA/firebase-export.json" \
    --batch-size 50 --jobs 2 --generate-missing
assert_contains "$LAST_ERR" "resuming the interrupted backfill" "resumed the ranges"
assert_eq "0" "$(q ckill "select count(*) from public.users where firebase_uid is null")" "every user has a uid"
gen_table='migration_backup."clerk-to-firebase:generated"'
assert_eq "$(q cone "select md5(string_agg(id || ':' || firebase_uid, ',' order by id)) from public.users where firebase_uid is not null")" \
          "$(q ckill "select md5(string_agg(id || ':' || firebase_uid, ',' order by id)) from public.users
             where firebase_uid not in (select firebase_uid from $gen_table)")" \
          "users the export matches got its uid, as with --jobs 1"
generated=$(q ckill "select count(*) from $gen_table")
listed=$(cat "$LOGS"/*-firebase-import-*.json | grep -o '"localId"' | wc -l)
assert_ne "0" "$generated" "uids generated for users with no match"
assert_eq "$generated" "$listed" "each generated user listed once in the import files"
assert_eq "0" "$(running ckill)" "no row left running"
assert_eq "" "$(q ckill "select string_agg(relname, ', ') from pg_class where relnamespace = 'migration_backup'::regnamespace
  and relname ~ ':(by_clerk_id|by_email|profile)\$'")" "the shared lookup tables are gone"
assert_exit 0 "phase2 rollback" -- c 2 ckill rollback
assert_eq "0" "$(q ckill "select count(*) from public.users where firebase_uid is not null")" "rollback empties the column"
