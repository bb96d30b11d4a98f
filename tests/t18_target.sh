# t18_target.sh -- every run says which database it works on (socket directory or host, port,
# database, user; never the password), libpq's order is kept (-d, then the PG* variables or a
# service, DATABASE_URL only when none of them is set, and then announced), and the
# operator's application_name (PGAPPNAME, or one in the connection string) is kept with
# phasemig's part, its run id, after it.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/string-to-uuid.json
must_dirs DATA LOGS
gen_app t18 200 t18 "$DATA"
# another database with the same tables, where phase1 never ran
must q postgres "create database t18other template t18"
# what the start line and status name for database DB reached through this cluster's socket
target() { printf 'database "%s" on socket %s port %s as user "%s"' "$1" "$PGHOST" "$PGPORT" "$PGUSER"; }
# no_pg_target CMD...: CMD without the PG* variables that choose the server, database or user
no_pg_target() { env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER -u PGSERVICE "$@"; }
# status_json_db: the database status --json named (name|port), from the last run's stdout
status_json_db() { q t18 "select concat_ws('|', j->'database'->>'name', j->'database'->>'port', j->'phases'->0->>'applied')
  from (select \$j\$$LAST_OUT\$j\$::jsonb j) s"; }

test_case "the start line and status name the database; a password in the connection string is never shown"
conn="host=$PGHOST port=$PGPORT dbname=t18 password=T18SecretPw"
assert_exit 0 "phase1 apply -d with a password" -- p1 apply -d "$conn"
assert_contains "$LAST_ERR" "phase1: apply: plan \"string-to-uuid\" (" "the start line"
assert_contains "$(grep 'apply: plan "string-to-uuid" (' <<<"$LAST_ERR")" ", $(target t18)" \
    "the start line names socket, port, database and user"
run_id=$(q t18 "select run_id from migration_log where phase = 1 and operation = 'apply'")
assert_contains "$LAST_ERR" "run $run_id, $(target t18)" "the run migration_log recorded, on that database"
assert_not_contains "$LAST_ERR$LAST_OUT" "T18SecretPw" "no password on stderr or stdout"
found=$(grep -rlF T18SecretPw "$LOGS" 2>/dev/null)
assert_eq "" "$found" "no password in the run logs"
assert_exit 0 "phase1 status" -- p1 status -d "$conn"
assert_contains "$LAST_OUT" "$(target t18)" "status (text) names the database"
assert_not_contains "$LAST_OUT$LAST_ERR" "T18SecretPw" "status shows no password"
assert_exit 0 "phase1 status --json" -- p1 status -d "$conn" --json
assert_eq "t18|$PGPORT|true" "$(status_json_db)" "status --json: the database, and its state"

test_case "DATABASE_URL names another database than PGDATABASE: the PG* variables win, and it is said"
other="host=$PGHOST port=$PGPORT dbname=t18other"
PGDATABASE=t18 DATABASE_URL=$other assert_exit 0 "phase1 status" -- p1 status --json
assert_eq "t18|$PGPORT|true" "$(status_json_db)" "status looked at PGDATABASE's database (phase1 applied there)"
assert_contains "$LAST_ERR" "DATABASE_URL is set but not used: libpq's PG* variables come first (set: PGHOST, PGPORT, PGDATABASE, PGUSER)" "says DATABASE_URL is left aside"
PGDATABASE=t18 DATABASE_URL=$other assert_exit 0 "phase1 apply again" -- p1 apply
assert_contains "$LAST_ERR" "$(target t18)" "the start line names PGDATABASE's database"
assert_eq "2" "$(q t18 "select count(*) from migration_log where phase = 1 and operation = 'apply' and status = 'done'")" \
    "the run was recorded in PGDATABASE's database"
assert_eq "" "$(q t18other "select to_regclass('public.migration_log')")" "nothing in DATABASE_URL's"

test_case "only DATABASE_URL: it is the target, and the run says it uses it"
run no_pg_target DATABASE_URL="$other user=$PGUSER" "$BIN/phase1" status --plan "$PLAN" --json
assert_eq "0" "$LAST_RC" "status exits 0"
assert_eq "t18other|$PGPORT|false" "$(status_json_db)" "status looked at DATABASE_URL's database"
assert_contains "$LAST_ERR" "connecting with DATABASE_URL: neither -d nor PGHOST" "announced"
run no_pg_target DATABASE_URL="postgresql://$PGUSER:T18UrlSecret@/t18other?host=$PGHOST&port=$PGPORT" \
    "$BIN/phase1" status --plan "$PLAN"
assert_eq "0" "$LAST_RC" "status with a URI holding a password"
assert_contains "$LAST_OUT" "$(target t18other)" "names DATABASE_URL's database"
assert_not_contains "$LAST_OUT$LAST_ERR" "T18UrlSecret" "no password shown"

test_case "the operator's application_name is kept, phasemig's part and run id after it"
# a slow phase2 apply (a batch of 5 rows every 200 ms) to look at while it runs
PGAPPNAME=myapp "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d t18 --batch-size 5 --sleep-ms 200 \
    >"$TEST_TMP/slow.out" 2>&1 &
slow=$!
wait_for_sql t18 "select count(*) from migration_log where phase = 2 and status = 'running' and rows_done > 0" 1
run_id=$(q t18 "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
names=$(q t18 "select application_name from pg_stat_activity where application_name like '%phasemig run ${run_id:0:8}%'")
assert_eq "myapp / phase2 apply (phasemig run ${run_id:0:8})" "$names" "PGAPPNAME first, then phasemig's part"
kill -TERM "$slow"; wait "$slow" || true
assert_eq "interrupted" "$(q t18 "select status from migration_log where run_id = '$run_id' and operation = 'apply'")" \
    "the slow run was stopped"
long=$(printf 'ops-%.0s' {1..20})
PGAPPNAME=$long "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d "dbname=t18 application_name=from-conninfo" \
    --batch-size 5 --sleep-ms 200 >"$TEST_TMP/slow.out" 2>&1 &
slow=$!
wait_for_sql t18 "select count(*) from migration_log where phase = 2 and status = 'running' and rows_done > 0" 1
run_id=$(q t18 "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
names=$(q t18 "select application_name from pg_stat_activity where application_name like '%phasemig run ${run_id:0:8}%'")
assert_eq "from-conninfo / phase2 apply (phasemig run ${run_id:0:8})" "$names" "the conninfo's application_name before PGAPPNAME"
kill -TERM "$slow"; wait "$slow" || true
PGAPPNAME=$long "$BIN/phase2" apply --plan "$PLAN" --logs-dir "$LOGS" -d t18 --batch-size 5 --sleep-ms 200 \
    >"$TEST_TMP/slow.out" 2>&1 &
slow=$!
wait_for_sql t18 "select count(*) from migration_log where phase = 2 and status = 'running' and rows_done > 0" 1
run_id=$(q t18 "select run_id from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")
names=$(q t18 "select application_name from pg_stat_activity where application_name like 'ops-%'")
assert_contains "$names" "phasemig run ${run_id:0:8}" "a long PGAPPNAME is cut, the run id stays"
assert_eq "ops-ops-" "${names:0:8}" "it starts with the operator's name"
kill -TERM "$slow"; wait "$slow" || true
