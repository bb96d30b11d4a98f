# t48_repack.sh -- phase3 finalize --repack (pg_repack, Debian's postgresql-15-repack): the uuid
# job's tables compacted to within 1.05x of an offline ALTER TYPE rewrite of a copy, rows and
# schema unchanged, a writer's every acknowledged insert kept through it, the refusals (no
# command, no extension) changing nothing, --dry-run, kill -9 of the run and of pg_repack then the
# same command again, and phase3 rollback after the repack. Before it, without --repack: phase2's
# fill in batches of 1/40 of each table (the run log, the dry run, migration_log, an operator's
# --batch-size and a throttle's kept, kill -9 with --jobs 2 then resume) leaves the tables within
# 1.3x of the rewrite.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/string-to-uuid.json
USERS=${T48_USERS:-4000}
must_dirs LOGS
u() { local n=$1 db=$2; shift 2; phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS" -d "$db"; }
# norepack STATE: db_state without the pg_repack extension's own objects (schema repack), which
# --repack-create-extension adds
norepack() { grep -v -E '(^| )repack\.|^schema repack ' <<<"$1"; }
TABLES="'public.users','public.journal_entries','public.tags','public.reminders'"
# total DB: the four tables' pg_total_relation_size, summed
total() { q "$1" "select sum(pg_total_relation_size(t::regclass)) from unnest(array[$TABLES]) t"; }
leftovers() { q "$1" "select (select count(*) from pg_trigger where tgname = 'repack_trigger') + (select count(*) from pg_class where relnamespace = 'repack'::regnamespace and relkind = 'r' and to_regnamespace('repack') is not null)"; }
# writer DB DIR: until DIR/stop exists, one insert at a time into journal_entries, each acknowledged
# one's number appended to DIR/ok (the application's writes during the repack)
writer() {
    local db=$1 dir=$2 i=0
    while [ ! -e "$dir/stop" ]; do
        i=$((i + 1))
        psql -X -q -d "$db" -c "insert into public.journal_entries (user_id, title) select id, 't48-w$i' from public.users order by id limit 1" >/dev/null 2>&1 && echo "$i" >>"$dir/ok"
    done
}

gen_app app "$USERS" t48 "$TEST_TMP/data"
must psql -X -q -d postgres -c "create database offline template app"
# the floor: the offline rewrite of a copy, foreign keys dropped and added back
must psql -X -q -v ON_ERROR_STOP=1 -d offline <<'SQL'
alter table journal_entries drop constraint journal_entries_user_id_fkey;
alter table tags drop constraint tags_user_id_fkey;
alter table reminders drop constraint reminders_user_id_fkey;
alter table users alter id drop default, alter id type uuid using id::uuid, alter id set default gen_random_uuid();
alter table journal_entries alter user_id type uuid using user_id::uuid;
alter table tags alter user_id type uuid using user_id::uuid;
alter table reminders alter user_id type uuid using user_id::uuid;
alter table journal_entries add constraint journal_entries_user_id_fkey foreign key (user_id) references users (id) on delete cascade;
alter table tags add constraint tags_user_id_fkey foreign key (user_id) references users (id) on delete cascade;
alter table reminders add constraint reminders_user_id_fkey foreign key (user_id) references users (id) on delete set null;
SQL
offline=$(total offline)
# copies of the legacy database: the fill as the operator's --batch-size gives it (not capped), and one
# killed midway
must psql -X -q -d postgres -c "create database given template app" -c "create database killed template app" \
    -c "create database thr template app"
must u 1 app apply

test_case "phase2 fills the shadows in batches of 1/40 of each table (their updates stay on their pages): the dry run, the run log, migration_log"
assert_exit 0 "phase2 --dry-run" -- u 2 app apply --dry-run
assert_contains "$LAST_OUT" "fill public.users.id: batches of 100 rows, not 1000: 1/40 of its $USERS rows" "the dry run says the cap and why"
assert_contains "$LAST_OUT" "in batches of 100 rows" "and prints the batches at that size"
assert_exit 0 "phase2" -- u 2 app apply
assert_contains "$LAST_ERR" "fill public.users.id: batches of 100 rows, not 1000: 1/40 of its $USERS rows, so that its updates stay on their pages (HOT)" "the run log says it"
assert_eq "100" "$(q app "select metadata->>'batch_cap' from migration_log where operation = 'fill public.users.id' and status = 'done'")" "migration_log: the unit's batch_cap"
assert_eq "100" "$(q app "select metadata->'public.users.id'->>'batch_cap' from migration_log where phase = 2 and operation like 'convert_to_uuid%' and status = 'done'")" "and the operation's figures"
assert_eq "t" "$(q app "select bool_and((metadata->>'batches')::int >= (metadata->>'rows')::int / (metadata->>'batch_cap')::int) from migration_log where operation like 'fill %' and status = 'done'")" "each fill ran batches of its cap"
after2=$(db_state app)
must u 1 given apply
assert_exit 0 "phase2 with --batch-size 1000 given" -- u 2 given apply --batch-size 1000
assert_not_contains "$LAST_ERR" "rows, not 1000" "the operator's batch size is kept"
assert_eq "0" "$(q given "select count(*) from migration_log where metadata ? 'batch_cap'")" "no cap recorded"
assert_eq "$after2" "$(db_state given)" "the same rows and schema as the capped fill"
must u 1 thr apply
assert_exit 0 "throttle --next-run --batch-size 500" -- u 2 thr throttle --next-run --batch-size 500
assert_exit 0 "phase2 after it" -- u 2 thr apply
assert_contains "$LAST_ERR" "throttle: batch size 500 (was 100)" "the throttle's batch size is kept too"
assert_eq "$after2" "$(db_state thr)" "the same rows and schema"

test_case "kill -9 during the capped fill with --jobs 2, then the same command: every range resumes at its cap, the result as an uninterrupted run's"
must u 1 killed apply
"$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d killed --jobs 2 --sleep-ms 30 >"$TEST_TMP/k.out" 2>&1 & kpid=$!
wait_for_sql killed "select count(*) > 0 from migration_log where operation like 'fill public.%' and last_key is not null" t 60
kill -9 "$kpid"; wait "$kpid" 2>/dev/null
assert_contains "$(cat "$TEST_TMP/k.out")" "fill public.users.id [1/2]: batches of 50 rows, not 1000: 1/40 of its" "each range capped at 1/40 of its own rows"
assert_ne "0" "$(q killed "select count(*) from migration_log where operation like 'fill %' and status = 'running'")" "killed midway"
assert_exit 0 "the same command again" -- u 2 killed apply --jobs 2
assert_contains "$LAST_ERR" "resuming the interrupted fill public." "it resumed"
assert_contains "$LAST_ERR" "[2/2]: batches of" "the resumed ranges are capped again"
assert_eq "$after2" "$(db_state killed)" "rows and schema as after the uninterrupted fill"
must u 3 app check
must u 3 app apply
after3=$(db_state app)

test_case "refused without the pg_repack command or the extension (exit 3), before finalize changes anything"
mkdir -p "$TEST_TMP/nobin"
assert_exit 3 "no pg_repack on PATH" -- env PATH="$TEST_TMP/nobin" "$BIN/phase3" finalize --repack --yes --plan "$PLAN" --logs-dir "$LOGS" -d app
assert_contains "$LAST_ERR" "the pg_repack command is not on PATH: nothing was changed" "says which"
assert_contains "$LAST_ERR" "postgresql-15-repack" "says how to get it"
assert_eq "$after3" "$(db_state app)" "nothing changed (legacy columns still there)"
assert_exit 3 "no extension in the database" -- u 3 app finalize --repack
assert_contains "$LAST_ERR" "the pg_repack extension is not installed in database \"app\"" "says which"
assert_contains "$LAST_ERR" "--repack-create-extension" "says how"
assert_eq "$after3" "$(db_state app)" "nothing changed"
assert_eq "0" "$(q app "select count(*) from pg_extension where extname = 'pg_repack'")" "no extension created without the option"
assert_exit 2 "--repack-create-extension alone" -- u 3 app finalize --repack-create-extension
assert_exit 2 "phase2 refuses --repack" -- u 2 app apply --repack

test_case "--dry-run prints the pg_repack command (no password) and changes nothing"
must u 3 app finalize
finalized=$(db_state app)
before=$(total app)
must u 3 given check
must u 3 given apply
must u 3 given finalize
uncapped=$(total given)
echo "# sizes: offline rewrite $offline, after finalize $before (batches of 1000 given: $uncapped)" >&2
assert_eq "1" "$(q app "select ($before <= 1.3 * $offline)::int")" "without --repack, after finalize ($before) within 1.3x of the offline rewrite ($offline)"
assert_eq "1" "$(q app "select ($before < $uncapped)::int")" "smaller than after a fill in batches of 1000 ($uncapped)"
assert_exit 0 "dry run, extension allowed" -- u 3 app finalize --repack --repack-create-extension --dry-run
assert_contains "$LAST_OUT" "CREATE EXTENSION IF NOT EXISTS pg_repack SCHEMA public" "the extension it would create"
assert_contains "$LAST_OUT" "pg_repack --no-order --no-kill-backend --wait-timeout=60 --table=public.users" "the command for the key's table"
assert_contains "$LAST_OUT" "--table=public.journal_entries" "and for each converted table"
assert_contains "$LAST_OUT" "PGDATABASE=app" "the connection as libpq variables"
assert_not_contains "$LAST_OUT" "PGPASSWORD" "no password"
assert_eq "$finalized" "$(db_state app)" "nothing changed"
assert_eq "0" "$(q app "select count(*) from pg_extension where extname = 'pg_repack'")" "no extension created by a dry run"

test_case "--repack compacts every converted table online: <= 1.05x the offline rewrite, rows and schema unchanged, every write of a writer kept"
w=$TEST_TMP/writer; mkdir -p "$w"
writer app "$w" & wpid=$!
on_exit "touch $w/stop"
sleep 0.5
assert_exit 0 "finalize --repack --repack-create-extension" -- u 3 app finalize --repack --repack-create-extension
touch "$w/stop"; wait "$wpid"
after=$(total app)
echo "# sizes: offline rewrite $offline, before repack $before, after repack $after" >&2
assert_eq "1" "$(q app "select ($after <= 1.05 * $offline)::int")" "after ($after) within 1.05x of the offline rewrite ($offline)"
assert_eq "1" "$(q app "select ($after < $before)::int")" "smaller than before ($before)"
for t in users journal_entries tags reminders; do
    assert_contains "$LAST_ERR" "public.$t: " "sizes of $t in the log"
done
assert_contains "$LAST_ERR" "repack: the 4 tables take" "the total in the log"
n_ok=$(wc -l <"$w/ok")
assert_ne "0" "$n_ok" "the writer wrote during the repack"
assert_eq "$n_ok" "$(q app "select count(*) from public.journal_entries where title like 't48-w%'")" "every acknowledged write is there ($n_ok)"
assert_eq "$n_ok" "$(q app "select count(distinct title) from public.journal_entries where title like 't48-w%'")" "each once"
q app "delete from public.journal_entries where title like 't48-w%'" >/dev/null
assert_eq "$finalized" "$(norepack "$(db_state app)")" "rows and schema as after finalize (the writer's rows taken out; the extension's schema aside)"
assert_eq "0" "$(leftovers app)" "no trigger or table of pg_repack left"
assert_eq "4" "$(q app "select count(*) from migration_log where operation like 'repack public.%' and status = 'done' and (metadata->>'total_after')::bigint > 0 and (metadata->>'heap_before')::bigint > 0")" "a migration_log row per table with its sizes"
assert_exit 0 "status" -- u 3 app status
assert_contains "$LAST_OUT" "repacked: public.users " "status shows the sizes"
assert_exit 0 "status --json" -- u 3 app status --json
assert_eq "4" "$(psql -X -A -t -q -d app -v j="$LAST_OUT" <<<"select jsonb_array_length((:'j'::jsonb)->'phases'->2->'repack')")" "status --json: one entry per table"

test_case "kill -9 of the run and of pg_repack midway, then the same command again: completes, nothing left behind"
q app "update public.journal_entries set title = title" >/dev/null
state=$(db_state app)
# an open transaction makes pg_repack wait, its trigger and log table in place, until it ends
psql -X -q -d app -c "begin; select txid_current(); select pg_sleep(60); commit" >/dev/null 2>&1 & sleeper=$!
sleep 0.5
u 3 app finalize --repack >"$TEST_TMP/kill.out" 2>&1 & rpid=$!
wait_for_sql app "select count(*) > 0 from pg_trigger where tgname = 'repack_trigger'" t 30
child=$(pgrep -P "$rpid" || true)
kill -9 "$rpid"; [ -n "$child" ] && kill -9 $child
wait "$rpid" 2>/dev/null
kill "$sleeper" 2>/dev/null; wait "$sleeper" 2>/dev/null
q app "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()" >/dev/null
assert_ne "0" "$(leftovers app)" "the killed pg_repack left its trigger or tables"
assert_exit 0 "the same command again" -- u 3 app finalize --repack --lock-wait 30
assert_contains "$LAST_ERR" "an interrupted pg_repack left its trigger or tables on it: dropping them first" "it cleaned up first"
assert_eq "0" "$(leftovers app)" "nothing of pg_repack left"
assert_eq "$state" "$(db_state app)" "rows and schema unchanged"

test_case "phase3 rollback after --repack gives back the state after phase2"
assert_exit 0 "phase3 rollback" -- u 3 app rollback
# this machine's server keeps a pg_attver option on every column, new for a column the rollback of a
# finalize adds back (the same without --repack): those lines are left out of both sides
noattver() { grep -v '^column_options .* pg_attver=[0-9]*$' <<<"$1"; }
assert_eq "$(noattver "$after2")" "$(noattver "$(norepack "$(db_state app)")")" "schema and rows as after phase2 (the extension's schema aside)"
