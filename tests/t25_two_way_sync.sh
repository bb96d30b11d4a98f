# t25_two_way_sync.sh -- two versions of the application writing the same tables at once, at
# every step of both jobs: an "old" writer that knows only the old representation (text keys;
# the Clerk id) and a "new" writer that knows only the new one (uuid keys; the Firebase uid)
# insert, update and delete rows directly on the tables, concurrently, after phase1, phase2,
# the swap, its rollback and the swap again. No statement of either may fail, and the
# database is the oracle: both representations of every row agree, every child's agree with
# its parent's, phasemig's own rollbacks never write the application's original columns
# through the two-way triggers, and rolling everything back leaves no trace.
source "$(dirname "$0")/lib.sh"

must_dirs LOGS DATA
UPLAN=$ROOT/plans/string-to-uuid.json
CPLAN=$ROOT/plans/clerk-to-firebase.json
SECONDS_PER_STEP=${T25_SECONDS:-2}

# writer OUT DB SCRIPT [-D var=value...]: SCRIPT (a pgbench file) run by one client for
# SECONDS_PER_STEP seconds; two at once are started by both_write
writer() {
    local out=$1 db=$2; shift 2
    pgbench -n -M simple -T "$SECONDS_PER_STEP" -c 1 -f "$@" "$db" >"$out" 2>&1
}
# both_write LABEL DB OLD_ARGS NEW_ARGS: the old and the new writer at the same time (NEW_ARGS
# empty: OLD_ARGS is the new writer, alone); each must
# have run transactions and failed none (pgbench stops a client at its first failed statement)
both_write() {
    local label=$1 db=$2 old=$3 new=$4 pid_old pid_new rc_old rc_new who
    writer "$TEST_TMP/old.out" "$db" $old & pid_old=$!
    if [ -n "$new" ]; then writer "$TEST_TMP/new.out" "$db" $new & pid_new=$!; fi
    wait "$pid_old"; rc_old=$?
    if [ -n "$new" ]; then who="old writer"; else who="new writer, alone"; fi
    check_writer "$label: $who" "$rc_old" "$TEST_TMP/old.out"
    if [ -n "$new" ]; then
        wait "$pid_new"; rc_new=$?
        check_writer "$label: new writer" "$rc_new" "$TEST_TMP/new.out"
    fi
}
check_writer() {
    local label=$1 rc=$2 out=$3 n
    [ "$rc" = 0 ] || sed 's/^/#   pgbench: /' "$out" | grep -v '^#   pgbench: *$' | tail -8
    assert_eq 0 "$rc" "$label: pgbench ended without error"
    assert_contains "$(cat "$out")" "number of failed transactions: 0 " "$label: no failed statement"
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    assert_ne "0" "${n:-0}" "$label: transactions ran"
    echo "# $label: ${n:-0} transactions, 0 failed" >&2
}

# ---------- string-to-uuid ----------

# The old writer: text keys. Users with a journal entry and a reminder, users without
# children whose key it changes, entries it moves to another of its users, reminders it
# detaches, users it deletes (their children go with them). :tk/:tc are its column names on
# the tables (the originals before the swap, the _legacy columns after it).
cat >"$TEST_TMP/uuid-old.sql" <<'SQL'
\set v random(1, 1000000000)
BEGIN;
WITH u AS (INSERT INTO public.users (:tk, email, name) VALUES (gen_random_uuid()::text, 'old-' || :v || '@t25.test', 'old') RETURNING :tk AS k),
     j AS (INSERT INTO public.journal_entries (:tc, title) SELECT k, 'old ' || :v FROM u)
INSERT INTO public.reminders (:tc, note) SELECT k, 'old' FROM u;
INSERT INTO public.users (:tk, email, name) VALUES (gen_random_uuid()::text, 'oldk-' || :v || '@t25.test', 'oldk');
UPDATE public.users SET :tk = gen_random_uuid()::text WHERE :tk = (SELECT :tk FROM public.users WHERE name = 'oldk' ORDER BY random() LIMIT 1);
UPDATE public.journal_entries SET :tc = (SELECT :tk FROM public.users WHERE name = 'old' ORDER BY random() LIMIT 1)
 WHERE id = (SELECT id FROM public.journal_entries WHERE title LIKE 'old %' ORDER BY random() LIMIT 1);
UPDATE public.reminders SET :tc = NULL WHERE id = (SELECT id FROM public.reminders WHERE note = 'old' AND :tc IS NOT NULL ORDER BY random() LIMIT 1);
DELETE FROM public.users WHERE :v % 3 = 0 AND :tk = (SELECT :tk FROM public.users WHERE name = 'old' ORDER BY random() LIMIT 1);
COMMIT;
SQL
# The new writer: the same with uuid keys (:uk/:uc: the shadows before the swap, the
# original names after it).
cat >"$TEST_TMP/uuid-new.sql" <<'SQL'
\set v random(1, 1000000000)
BEGIN;
WITH u AS (INSERT INTO public.users (:uk, email, name) VALUES (gen_random_uuid(), 'new-' || :v || '@t25.test', 'new') RETURNING :uk AS k),
     j AS (INSERT INTO public.journal_entries (:uc, title) SELECT k, 'new ' || :v FROM u)
INSERT INTO public.reminders (:uc, note) SELECT k, 'new' FROM u;
INSERT INTO public.users (:uk, email, name) VALUES (gen_random_uuid(), 'newk-' || :v || '@t25.test', 'newk');
UPDATE public.users SET :uk = gen_random_uuid() WHERE :uk = (SELECT :uk FROM public.users WHERE name = 'newk' ORDER BY random() LIMIT 1);
UPDATE public.journal_entries SET :uc = (SELECT :uk FROM public.users WHERE name = 'new' ORDER BY random() LIMIT 1)
 WHERE id = (SELECT id FROM public.journal_entries WHERE title LIKE 'new %' ORDER BY random() LIMIT 1);
UPDATE public.reminders SET :uc = NULL WHERE id = (SELECT id FROM public.reminders WHERE note = 'new' AND :uc IS NOT NULL ORDER BY random() LIMIT 1);
DELETE FROM public.users WHERE :v % 3 = 0 AND :uk = (SELECT :uk FROM public.users WHERE name = 'new' ORDER BY random() LIMIT 1);
COMMIT;
SQL
U_BEFORE_OLD="$TEST_TMP/uuid-old.sql -D tk=id -D tc=user_id"
U_BEFORE_NEW="$TEST_TMP/uuid-new.sql -D uk=id_uuid -D uc=user_id_uuid"
U_AFTER_OLD="$TEST_TMP/uuid-old.sql -D tk=id_legacy -D tc=user_id_legacy"
U_AFTER_NEW="$TEST_TMP/uuid-new.sql -D uk=id -D uc=user_id"
u() { local n=$1; shift; phase "$n" "$@" --plan "$UPLAN" --logs-dir "$LOGS" -d two; }
WRITERS="('old', 'oldk', 'new', 'newk')"

# uuid_agree LABEL SWAPPED [ALL]: both sides of every row the writers wrote (ALL: of every row)
# agree; every child's agree with its parent's
uuid_agree() {
    local label=$1 swapped=$2 all=${3:-} t u c cu who="u.name IN $WRITERS"
    if [ "$swapped" = 1 ]; then t=id_legacy u=id c=user_id_legacy cu=user_id; else t=id u=id_uuid c=user_id cu=user_id_uuid; fi
    [ -n "$all" ] && who=true
    assert_eq "0" "$(q two "select count(*) from public.users u where $who and ($u is null or $t is distinct from $u::text)")" \
        "$label: every user's text key is its uuid's canonical text"
    assert_ne "0" "$(q two "select count(*) from public.users u where u.name = 'new'")" "$label: the new writer's users are there"
    for child in journal_entries reminders; do
        local mine="x.title like 'old %' or x.title like 'new %'"
        [ "$child" = reminders ] && mine="x.note in ('old', 'new')"
        [ -n "$all" ] && mine=true
        assert_eq "0" "$(q two "select count(*) from public.$child x join public.users u on u.$t = x.$c
            where ($mine) and x.$cu is distinct from u.$u")" "$label: $child: each reference's uuid is its parent's"
        assert_eq "0" "$(q two "select count(*) from public.$child x where ($mine) and x.$c is distinct from x.$cu::text")" \
            "$label: $child: the two sides of every reference agree (NULL with NULL)"
    done
}

test_case "string-to-uuid: an old (text) and a new (uuid) writer at once, at every step, none failing"
gen_app two 300 t25 "$DATA/uuid"
start=$(db_state two)
assert_exit 0 "phase1 apply" -- u 1 apply
both_write "after phase1" two "$U_BEFORE_OLD" "$U_BEFORE_NEW"
uuid_agree "after phase1" 0
assert_exit 0 "phase2 apply" -- u 2 apply
both_write "after phase2" two "$U_BEFORE_OLD" "$U_BEFORE_NEW"
uuid_agree "after phase2" 0 all
assert_exit 0 "phase3 apply" -- u 3 apply --yes
both_write "after the swap" two "$U_AFTER_OLD" "$U_AFTER_NEW"
uuid_agree "after the swap" 1 all
assert_exit 0 "phase3 rollback" -- u 3 rollback
both_write "after the swap's rollback" two "$U_BEFORE_OLD" "$U_BEFORE_NEW"
uuid_agree "after the swap's rollback" 0 all
assert_eq "(gen_random_uuid())::text" "$(q two "select pg_get_expr(adbin, adrelid) from pg_attrdef where adrelid = 'public.users'::regclass and adnum = (select attnum from pg_attribute where attrelid = 'public.users'::regclass and attname = 'id')")" \
    "the swap back gave the text key its default again"
assert_exit 0 "phase3 apply again" -- u 3 apply --yes
assert_eq "" "$(q two "select pg_get_expr(adbin, adrelid) from pg_attrdef where adrelid = 'public.users'::regclass and adnum = (select attnum from pg_attribute where attrelid = 'public.users'::regclass and attname = 'id_legacy')")" \
    "after the swap the legacy key has no default (only the real column may hold a default's value)"
both_write "applied again, before finalize" two "$U_AFTER_OLD" "$U_AFTER_NEW"
uuid_agree "applied again, before finalize" 1 all
assert_exit 0 "phase3 rollback again" -- u 3 rollback
uuid_agree "rolled back again" 0 all
originals="select md5(string_agg(format('%s|%s|%s', id, email, name), ',' order by id)) from public.users
  union all select md5(string_agg(format('%s|%s', id, user_id), ',' order by id)) from public.journal_entries
  union all select md5(string_agg(format('%s|%s', id, user_id), ',' order by id)) from public.reminders"
kept=$(q two "$originals")
assert_exit 0 "phase2 rollback, the writers' rows still there" -- u 2 rollback
assert_eq "$kept" "$(q two "$originals")" "phase2 rollback emptied the shadows without touching a text key or reference (phasemig's sessions sync one way)"
assert_eq "0" "$(q two "select count(*) from public.users where id_uuid is not null")" "every shadow emptied"
q two "delete from public.users where name in $WRITERS; delete from public.reminders where note in ('old', 'new')" >/dev/null
assert_exit 0 "phase1 rollback" -- u 1 rollback
assert_eq "$start" "$(db_state two)" "the writers' rows gone, every rollback done: schema and rows as at the start"
assert_eq "0" "$(q two "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'migration_backup' and p.proname like 'string-to-uuid:%'")" \
    "no trigger function left"
assert_eq "0" "$(q two "select count(*) from migration_backup.phasemig_objects")" "nothing left registered (the legacy key's default record went with the swap back)"

test_case "string-to-uuid: one side written, the other follows; both written and disagreeing: an error"
gen_app one 20 t25 "$DATA/one"
uo() { local n=$1; shift; phase "$n" "$@" --plan "$UPLAN" --logs-dir "$LOGS" -d one; }
assert_exit 0 "phase1 apply" -- uo 1 apply
assert_exit 0 "phase2 apply" -- uo 2 apply
key=$(q one "select id from public.users order by id limit 1")
q one "insert into public.users (id_uuid, email) values ('0a0a0a0a-0000-4000-8000-000000000001', 'x@t25.test')" >/dev/null
assert_eq "0a0a0a0a-0000-4000-8000-000000000001" "$(q one "select id from public.users where email = 'x@t25.test'")" \
    "a user inserted with its uuid only gets the canonical text (the text key's default gave way)"
q one "insert into public.journal_entries (user_id_uuid, title) values ('0a0a0a0a-0000-4000-8000-000000000001', 'x')" >/dev/null
assert_eq "0a0a0a0a-0000-4000-8000-000000000001" "$(q one "select user_id from public.journal_entries where title = 'x'")" \
    "a child inserted with its parent's uuid only gets the parent's text key (the NOT NULL text column filled before its check)"
q one "insert into public.users (id, id_uuid, email) values ('0a0a0a0a-0000-4000-8000-000000000002', '0a0a0a0a-0000-4000-8000-000000000003', 'y@t25.test')" >/dev/null
assert_eq "0a0a0a0a-0000-4000-8000-000000000003" "$(q one "select id from public.users where email = 'y@t25.test'")" \
    "an insert of both sides, disagreeing, where the text key has a default: the uuid wins (the text may be the default's)"
out=$(psql -X -q -v VERBOSITY=verbose -d one -c "insert into public.journal_entries (user_id, user_id_uuid, title) values ('$key', '0a0a0a0a-0000-4000-8000-000000000001', 'y')" 2>&1)
assert_contains "$out" "23514" "a child inserted with both sides disagreeing (no default): SQLSTATE 23514"
assert_eq "0" "$(q one "select count(*) from public.journal_entries where title = 'y'")" "the child was not inserted"
q one "update public.journal_entries set user_id_uuid = (select id_uuid from public.users where id = '$key') where title = 'x'" >/dev/null
assert_eq "$key" "$(q one "select user_id from public.journal_entries where title = 'x'")" "an update of the uuid alone moves the text reference"
out=$(psql -X -q -v VERBOSITY=verbose -d one -c "update public.journal_entries set user_id = '0a0a0a0a-0000-4000-8000-000000000001', user_id_uuid = gen_random_uuid() where title = 'x'" 2>&1)
assert_contains "$out" "23514" "both sides changed and disagreeing: SQLSTATE 23514"
assert_contains "$out" "disagree" "the message says they disagree"
assert_eq "$key" "$(q one "select user_id from public.journal_entries where title = 'x'")" "the refused update changed nothing"
# regenerated and non-canonical keys: the uuid written alone finds the text that stands for it
gen_app keys 20 t25 "$DATA/keys"
uk() { local n=$1; shift; phase "$n" "$@" --plan "$UPLAN" --logs-dir "$LOGS" -d keys; }
q keys "insert into public.users (id, email) values ('user_t25abc', 'a@t25.test'), ('ABCDEF01-0000-4000-8000-00000000000A', 'b@t25.test')" >/dev/null
assert_exit 0 "phase1 apply" -- uk 1 apply
assert_exit 0 "phase2 apply, regenerating the invalid key" -- uk 2 apply --on-invalid=regenerate
regen=$(q keys "select id_uuid from public.users where id = 'user_t25abc'")
assert_ne "" "$regen" "the invalid key was given a uuid"
q keys "insert into public.journal_entries (user_id_uuid, title) values ('$regen', 'r'), ('abcdef01-0000-4000-8000-00000000000a', 'c')" >/dev/null
assert_eq "c|ABCDEF01-0000-4000-8000-00000000000A
r|user_t25abc" "$(q keys "select title, user_id from public.journal_entries where title in ('r', 'c') order by title")" \
    "a child written with the uuid alone gets its parent's text exactly: regenerated, or uuid text spelled otherwise"
q keys "update public.users set email = 'b2@t25.test', id_uuid = id_uuid where id = 'ABCDEF01-0000-4000-8000-00000000000A'" >/dev/null
assert_eq "ABCDEF01-0000-4000-8000-00000000000A" "$(q keys "select id from public.users where email = 'b2@t25.test'")" \
    "a key whose text already stands for its uuid keeps its spelling"
assert_exit 0 "phase3 apply" -- uk 3 apply --yes
out=$(psql -X -q -v VERBOSITY=verbose -d keys -c "insert into public.users (id_legacy, email) values ('user_t25new', 'n@t25.test')" 2>&1)
assert_contains "$out" "22P02" "after the swap, a text key that stands for no uuid: SQLSTATE 22P02"
assert_contains "$out" "stands for none" "and the message says so"
q keys "insert into public.journal_entries (user_id_legacy, title) values ('user_t25abc', 'r2')" >/dev/null
assert_eq "$regen|user_t25abc" "$(q keys "select user_id, user_id_legacy from public.journal_entries where title = 'r2'")" \
    "after the swap, a child written with the regenerated text alone gets its parent's uuid"

# ---------- Clerk to Firebase ----------

CL="--plan $CPLAN --logs-dir $LOGS -d ctwo"
c() { local n=$1; shift; phase "$n" "$@" $CL; }
cat >"$TEST_TMP/clerk-old.sql" <<'SQL'
\set n 1 + 2 * random(0, 49)
\set v random(1, 1000000000)
BEGIN;
DELETE FROM public.users WHERE id = (SELECT id FROM public.pool WHERE n = :n);
INSERT INTO public.users (id, clerk_user_id, email, name) SELECT id, clerk_user_id, email, 'old' FROM public.pool WHERE n = :n;
UPDATE public.users SET name = 'old ' || :v WHERE id = (SELECT id FROM public.pool WHERE n = :n);
COMMIT;
SQL
cat >"$TEST_TMP/clerk-new.sql" <<'SQL'
\set n 2 + 2 * random(0, 49)
\set v random(1, 1000000000)
BEGIN;
DELETE FROM public.users WHERE id = (SELECT id FROM public.pool WHERE n = :n);
INSERT INTO public.users (id, firebase_uid, email, name) SELECT id, uid, email, 'new' FROM public.pool WHERE n = :n;
INSERT INTO public.users (firebase_uid, email, name) VALUES ('t25-only-' || :v, 'fonly-' || :v || '@t25.test', 'fonly');
DELETE FROM public.users WHERE :v % 2 = 0 AND id = (SELECT id FROM public.users WHERE name = 'fonly' ORDER BY random() LIMIT 1);
COMMIT;
SQL
C_OLD="$TEST_TMP/clerk-old.sql"
C_NEW="$TEST_TMP/clerk-new.sql"
# clerk_agree LABEL: the pool's rows the writers wrote carry both their Clerk id and their uid;
# no row's pair contradicts the mapping; a Firebase-only user has no Clerk id
clerk_agree() {
    assert_eq "0" "$(q ctwo "select count(*) from public.users u join public.pool p on p.id = u.id
        where u.clerk_user_id is distinct from p.clerk_user_id or u.firebase_uid is distinct from p.uid")" \
        "$1: every user of the pool has its Clerk id and its uid, whichever version wrote it"
    assert_eq "0" "$(q ctwo "select count(*) from public.users u join public.t25_map m on m.clerk = u.clerk_user_id
        where u.firebase_uid is distinct from m.uid")" "$1: no row contradicts the mapping"
    assert_eq "0" "$(q ctwo "select count(*) from public.users where name = 'fonly' and clerk_user_id is not null")" \
        "$1: a user known to Firebase only has no Clerk id"
}

test_case "clerk-to-firebase: an old (Clerk id) and a new (Firebase uid) writer at once, at every step, none failing"
gen_app ctwo 300 t25 "$DATA/clerk" --missing-pct 0 --no-clerk-attr-pct 0
q ctwo "create table public.t25_map (clerk text primary key, uid text not null)" >/dev/null
must psql -X -q -d ctwo -c "\\copy public.t25_map from '$DATA/clerk/mapping.csv' csv header"
q ctwo "create table public.pool as select row_number() over (order by u.id) as n, u.id, u.clerk_user_id, u.email, m.uid
          from public.users u join public.t25_map m on m.clerk = u.clerk_user_id order by u.id limit 100;
        delete from public.users where id in (select id from public.pool)" >/dev/null
assert_exit 0 "phase1 apply" -- c 1 apply
both_write "after phase1" ctwo "$C_OLD" "$C_NEW"
assert_eq "0" "$(q ctwo "select count(*) from public.users where name = 'old' and clerk_user_id is null")" \
    "after phase1: the old writer's users have their Clerk id (no mapping yet: no uid)"
assert_ne "0" "$(q ctwo "select count(*) from public.users where name = 'new' and firebase_uid is not null and clerk_user_id is null")" \
    "after phase1: the new writer's users have their uid, and no Clerk id until the mapping is loaded"
assert_exit 0 "phase2 apply" -- c 2 apply --mapping "$DATA/clerk/firebase-export.json"
q ctwo "update public.users u set clerk_user_id = p.clerk_user_id from public.pool p
          where p.id = u.id and u.name = 'new' and u.clerk_user_id is null" >/dev/null
both_write "after phase2" ctwo "$C_OLD" "$C_NEW"
clerk_agree "after phase2"
assert_ne "0" "$(q ctwo "select count(*) from public.users where name = 'new' and clerk_user_id is not null")" \
    "after phase2: users the new writer inserted with a uid alone got their Clerk id from the mapping"
assert_exit 0 "phase3 apply" -- c 3 apply --yes
both_write "after phase3 (the Clerk id dropped: the new writer only)" ctwo "$C_NEW" ""
assert_exit 0 "phase3 rollback" -- c 3 rollback
q ctwo "update public.users u set clerk_user_id = p.clerk_user_id from public.pool p
          where p.id = u.id and u.clerk_user_id is null" >/dev/null
both_write "after phase3 rollback" ctwo "$C_OLD" "$C_NEW"
clerk_agree "after phase3 rollback"
assert_exit 0 "phase3 apply again" -- c 3 apply --yes
both_write "applied again (the new writer only)" ctwo "$C_NEW" ""
assert_exit 0 "phase3 rollback again" -- c 3 rollback
assert_exit 0 "phase2 rollback" -- c 2 rollback
assert_eq "0" "$(q ctwo "select count(*) from public.users where firebase_uid is not null and name not in ('new', 'fonly')")" \
    "phase2 rollback emptied every uid phasemig wrote, and the trigger filled none back (phasemig's sessions sync one way)"
assert_ne "0" "$(q ctwo "select count(*) from public.users where name = 'new' and firebase_uid is not null")" \
    "the uids the new version wrote are kept"
