# t00_harness.sh -- tests of the test harness itself: the private cluster, lib.sh's failure
# bookkeeping, and that schema_fingerprint / table_checksums see what they must and ignore
# what they must (column order, migration_backup, public.migration_log).
source "$(dirname "$0")/lib.sh"

test_case "private server answers through its own socket"
assert_eq 1 "$(q postgres 'select 1')" "select 1"
assert_ne /var/run/postgresql "$PGHOST" "PGHOST"
assert_contains "$PGHOST" /tmp/phasemig-test. "PGHOST is the temp cluster dir"
assert_eq "$PGHOST" "$(q postgres "select current_setting('unix_socket_directories')")" "server socket dir"
assert_eq "$PGHOST/data" "$(q postgres 'show data_directory')" "data directory"
assert_eq "${TEST_PORT:-54329}" "$(q postgres 'show port')" "port"
assert_eq "" "${DATABASE_URL:-}${PGPASSWORD:-}" "inherited connection settings are cleared"

test_case "lib records failures, also from subshells and crashes"
inner=$TEST_TMP/inner/inner.sh; mkdir -p "$TEST_TMP/inner"
cat >"$inner" <<EOF
source "$ROOT/tests/lib.sh"
test_case good; assert_eq a a; x=\$(q postgres 'select 1')
test_case "bad sql in subshell"; x=\$(q postgres 'select nosuchcol')
test_case "crash"; exit 3
EOF
run env TEST_RESULTS="$TEST_TMP/inner.res" TEST_TMP="$TEST_TMP/inner" bash "$inner"
assert_eq 3 "$LAST_RC" "inner file exit code"
assert_eq "pass	inner.sh: good
fail	inner.sh: bad sql in subshell
fail	inner.sh: crash" "$(cat "$TEST_TMP/inner.res")" "inner results"
assert_contains "$LAST_ERR" nosuchcol "psql error is shown"
assert_exit 0 "assert_exit captures output" -- sh -c 'echo out; echo err >&2'
assert_eq "out/err" "$LAST_OUT/$LAST_ERR" "LAST_OUT/LAST_ERR"

test_case "a failed setup step (must, edit_file) stops the file, recorded as failed"
cat >"$inner" <<EOF
source "$ROOT/tests/lib.sh"
test_case "setup ok"; must true; must_write "\$TEST_TMP/w" echo written; assert_eq written "\$(cat "\$TEST_TMP/w")"
edit_file "\$TEST_TMP/w" "\$TEST_TMP/w2" 's/written/edited/'; assert_eq edited "\$(cat "\$TEST_TMP/w2")"
test_case "setup fails"; must sh -c 'echo why it failed; exit 5'; echo not reached
test_case "never run"
EOF
run env TEST_RESULTS="$TEST_TMP/inner2.res" TEST_TMP="$TEST_TMP/inner" bash "$inner"
assert_eq 1 "$LAST_RC" "the file exits 1"
assert_eq "pass	inner.sh: setup ok
fail	inner.sh: setup fails" "$(cat "$TEST_TMP/inner2.res")" "the failing case recorded, the next one never run"
assert_contains "$LAST_ERR" "setup step failed: sh -c echo why it failed; exit 5 (exit 5)" "the command and its status shown"
assert_contains "$LAST_ERR" "why it failed" "its output shown"
assert_not_contains "$LAST_OUT" "not reached" "nothing after it ran"
cat >"$inner" <<EOF
source "$ROOT/tests/lib.sh"
must_write "\$TEST_TMP/w" echo text
edit_file "\$TEST_TMP/w" "\$TEST_TMP/w2" 's/text/new/' 's/nomatch/x/'
test_case "never run"
EOF
run env TEST_RESULTS="$TEST_TMP/inner3.res" TEST_TMP="$TEST_TMP/inner" bash "$inner"
assert_eq 1 "$LAST_RC" "an edit that changes nothing: the file exits 1"
assert_eq "fail	inner.sh: (outside a test case) setup step failed: edit_file: sed 's/nomatch/x/' changed nothing in $TEST_TMP/inner/w" \
    "$(cat "$TEST_TMP/inner3.res")" "recorded as failed, outside a case"

test_case "schema_fingerprint: sensitive to schema, not to column order"
new_db fp
q fp "create table t(id int primary key, a text not null default 'x', b int check (b > 0));
      create index t_b on t(b); create view v as select id, a from t;
      create function f() returns trigger language plpgsql as 'begin return new; end';
      create trigger tr before insert on t for each row execute function f()" >/dev/null
fp1=$(schema_fingerprint fp)
assert_contains "$fp1" "column public.t.a text not null default 'x'::text" "column line"
assert_contains "$fp1" "CREATE INDEX t_b ON public.t USING btree (b)" "index line"
assert_contains "$fp1" "trigger CREATE TRIGGER tr BEFORE INSERT" "trigger line"
q fp "alter table t add column c int" >/dev/null
assert_ne "$fp1" "$(schema_fingerprint fp)" "fingerprint after add column"
q fp "alter table t drop column c" >/dev/null
assert_eq "$fp1" "$(schema_fingerprint fp)" "fingerprint after drop of added column"
dump1=$(schema_dump fp)
q fp "drop view v; alter table t drop column a; alter table t add column a text not null default 'x';
      create view v as select id, a from t" >/dev/null
assert_eq "$fp1" "$(schema_fingerprint fp)" "fingerprint after drop + re-add of column a"
assert_ne "$dump1" "$(schema_dump fp)" "schema_dump does see the column order"
# (the re-added column's pg_attver, which PostgreSQL 15.20 stamps on it, is not the schema's)
q fp "alter table t alter column a set (n_distinct = 5)" >/dev/null
assert_contains "$(schema_fingerprint fp)" "column_options public.t.a n_distinct=5" "an option the operator sets is seen"
q fp "alter table t alter column a reset (n_distinct)" >/dev/null
assert_eq "$fp1" "$(schema_fingerprint fp)" "and gone once reset"
q fp "create schema migration_backup; create table migration_backup.x(i int);
      create table public.migration_log(id serial primary key, op text)" >/dev/null
assert_eq "$fp1" "$(schema_fingerprint fp)" "fingerprint ignores migration_backup and migration_log"
assert_not_contains "$(schema_dump fp)" migration_ "schema_dump ignores them too"

test_case "table_checksums: sensitive to data, not to column order"
q fp "insert into t(id, a, b) values (1, 'one', 10), (2, 'two', NULL), (3, 'three', 30)" >/dev/null
cs1=$(table_checksums fp)
assert_contains "$cs1" "public.t 3 " "row count"
assert_eq 1 "$(grep -c . <<<"$cs1")" "one line: only public.t"
q fp "update t set a = 'TWO' where id = 2" >/dev/null
assert_ne "$cs1" "$(table_checksums fp)" "checksum after one value changed"
q fp "update t set a = 'two' where id = 2" >/dev/null
assert_eq "$cs1" "$(table_checksums fp)" "checksum after value restored"
q fp "insert into migration_backup.x select b from t; create table migration_backup.save as select id, b from t;
      insert into migration_log(op) values ('x')" >/dev/null
assert_eq "$cs1" "$(table_checksums fp)" "checksums ignore migration_backup and migration_log"
q fp "alter table t drop column b; alter table t add column b int check (b > 0);
      update t set b = s.b from migration_backup.save s where s.id = t.id" >/dev/null
assert_eq "$cs1" "$(table_checksums fp)" "checksum after drop + re-add of column b"

test_case "hostile identifiers"
q fp "create schema \"sch ema\"; create table \"sch ema\".\"need\"\"q(uot\"(\"co\"\"l\" text primary key);
      insert into \"sch ema\".\"need\"\"q(uot\" values ('a'), ('it''s')" >/dev/null
assert_exit 0 "table_checksums" -- table_checksums fp
assert_contains "$LAST_OUT" "\"sch ema\".\"need\"\"q(uot\" 2 " "quoted table line"
assert_exit 0 "schema_fingerprint" -- schema_fingerprint fp
assert_contains "$LAST_OUT" "column \"sch ema\".\"need\"\"q(uot\".\"co\"\"l\" text not null" "quoted column line"

test_case "wait_for_sql sees a background write"
q fp "create table w(i int)" >/dev/null
( sleep 1; psql -X -q -d fp -c "insert into w values (42)" ) &
wait_for_sql fp "select count(*) from w where i = 42" 1 10
wait
