# t06_dry_run.sh -- --dry-run on every apply, rollback and finalize of both plans: it changes
# nothing (schema fingerprint, every table's checksum, migration_log, no run log, no hook, no
# file), it exits with the code the real run then exits with, and the statements it prints are
# the ones the real run writes to its run log, in the same order. The server's own log of every
# statement (log_statement = all on the test databases) guards the path itself: a statement that
# changes something and bypasses the run log, whatever C function ran it, fails the test.
source "$(dirname "$0")/lib.sh"

must_dirs DATA LOGS
EVENTS=$TEST_TMP/events.jsonl
# tests/run's cluster logs to server.log in its directory, which is PGHOST (scripts/lib/cluster.sh)
SERVER_LOG=${PGHOST:-}/server.log
[ -r "$SERVER_LOG" ] || setup_failed "the test cluster's log $SERVER_LOG cannot be read"

# watch_db DB: the server logs every statement of DB's new sessions
watch_db() { q "$1" "alter database \"$1\" set log_statement = 'all'" >/dev/null; }
log_size() { stat -c %s "$SERVER_LOG"; }
# server_changes OFFSET: the statements the server logged after byte OFFSET of its log that change
# something other than phasemig's bookkeeping (migration_log, the registry of objects, the state
# sql/state.sql makes) and the session's temporary tables, one a line, blanks collapsed as the run
# log does. Reads, transaction control and settings are left out; a data-modifying WITH is not.
server_changes() {
    tail -c +$(($1 + 1)) "$SERVER_LOG" | perl -e '
        use strict; use warnings;
        my (@stmts, $cur);
        while (my $l = <STDIN>) {
            if ($l =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] (\w+):  (.*)$/s) {
                push @stmts, $cur if defined $cur;
                my ($level, $msg) = ($1, $2);
                $cur = ($level eq "LOG" && $msg =~ /^(?:statement|execute [^:]*): (.*)$/s) ? $1 : undef;
            } elsif (defined $cur) { $cur .= $l; }
        }
        push @stmts, $cur if defined $cur;
        my $id = qr/(?:"(?:[^"]|"")*"|\w+)(?:\.(?:"(?:[^"]|"")*"|\w+))?/;
        my $own = qr/^(?:pg_temp\.|public\.migration_log$|migration_backup\.phasemig_objects$)/i;
        my $dml = qr/\b(?:INSERT INTO|DELETE FROM|MERGE INTO|(?<!KEY )(?<!FOR )(?<!DO )UPDATE (?:ONLY )?$id (?:(?:AS )?\w+ )?SET)\b/i;
        for my $s (@stmts) {
            $s =~ s/\s+/ /g; $s =~ s/^ //; $s =~ s/ $//;
            next if $s =~ /^-- sql\/state\.sql:/;
            (my $t = $s) =~ s/\x27(?:[^\x27]|\x27\x27)*\x27/\x27\x27/g;   # string literals out
            my $u = uc $t;
            next if $u =~ /^(?:BEGIN|COMMIT|ROLLBACK|END|START |SET |RESET |SHOW |DECLARE |FETCH |CLOSE |SAVEPOINT |RELEASE |DISCARD |LISTEN |UNLISTEN |VALUES |TABLE )/;
            next if $u =~ /^COPY .* TO STDOUT/;
            next if $u =~ /^(?:SELECT |\()/ && $u !~ /\bINTO\b/;
            next if $u =~ /^WITH / && $t !~ $dml;
            next if $u =~ /^CREATE (?:GLOBAL |LOCAL )?TEMP(?:ORARY)? /;
            # what it writes, when all of it is temporary or bookkeeping: no change to report
            my @w;
            push @w, $1 while $t =~ /\b(?:INSERT INTO|DELETE FROM|MERGE INTO|TRUNCATE(?: TABLE)?(?: ONLY)?|ANALYZE|ALTER TABLE(?: IF EXISTS)?(?: ONLY)?)\s+($id)/gi;
            push @w, $1 while $t =~ /(?:^|AS \(|; )\s*UPDATE\s+(?:ONLY\s+)?($id)/gi;
            push @w, $1 if $t =~ /^COPY\s+($id)/i;
            push @w, $1 if $t =~ /^CREATE (?:UNIQUE )?INDEX (?:.*? )?ON (?:ONLY )?($id)/i;
            push @w, $1 if $t =~ /^CREATE (?:OR REPLACE )?FUNCTION ($id)/i;
            if ($t =~ /^DROP TABLE(?: IF EXISTS)? ((?:$id)(?:, $id)*)/i) { my $l = $1; push @w, $1 while $l =~ /($id)/g; }
            next if @w && $u =~ /^(?:INSERT|UPDATE|DELETE|TRUNCATE|COPY|ANALYZE|WITH|DO|DROP TABLE|ALTER TABLE|CREATE)/ && !grep { $_ !~ $own } @w;
            print "$s\n";
        }'
}

# mlog_state DB: migration_log's rows, or "none" before phase1 made it
mlog_state() {
    if [ "$(q "$1" "select to_regclass('public.migration_log') is null")" = t ]; then echo none; return; fi
    q "$1" "select count(*) || ' ' || coalesce(md5(string_agg(l::text, ',' order by id)), '') from public.migration_log l"
}
# dry_statements: the statements of a dry run's output (comments and transaction control left out)
dry_statements() { grep -v -e '^--' -e '^BEGIN;$' -e '^COMMIT;$' -e '^SET LOCAL lock_timeout' | sed 's/;$//'; }
# logged_statements DB: the statements the newest run's log recorded
logged_statements() {
    local id
    id=$(q "$1" "select run_id from public.migration_log order by id desc limit 1")
    grep -h ': statement: ' "$LOGS/$id.log" | sed 's/^.*: statement: //'
}
# dry_then_real DB CODE PHASE ARGS...: the dry run changes nothing (the server ran no statement
# that changes anything) and exits CODE, then the real run exits CODE too and logs exactly the
# statements the dry run printed ($PRINTED), and every statement that changed something, as the
# server logged it, is in its run log, whatever path ran it
dry_then_real() {
    local db=$1 want=$2 n=$3 before printed logs_before off ran logged; shift 3
    before=$(db_state "$db"; mlog_state "$db")
    logs_before=$(ls "$LOGS" | wc -l)
    : >"$EVENTS"
    off=$(log_size)
    assert_exit "$want" "phase$n $* --dry-run" -- phase "$n" "$@" --dry-run --plan "$PLAN" --logs-dir "$LOGS" \
        --hook "cat >> '$EVENTS'"
    printed=$(dry_statements <<<"$LAST_OUT") PRINTED=$printed
    assert_eq "" "$(server_changes "$off")" "phase$n $* --dry-run: the server ran no statement that changes anything"
    assert_eq "$before" "$(db_state "$db"; mlog_state "$db")" "phase$n $* --dry-run: schema, rows and migration_log unchanged"
    assert_eq "$logs_before 0" "$(ls "$LOGS" | wc -l) $(wc -l <"$EVENTS")" "phase$n $* --dry-run: no run log, no file, no hook event"
    assert_contains "$LAST_ERR" "nothing was changed" "phase$n $* --dry-run says so"
    off=$(log_size)
    assert_exit "$want" "phase$n $*" -- phase "$n" "$@" --plan "$PLAN" --logs-dir "$LOGS"
    [ "$want" = 0 ] || return 0
    [ -n "$printed" ] || _t_fail "phase$n $* --dry-run printed no statement"
    logged=$(logged_statements "$db")
    assert_eq "$printed" "$logged" "phase$n $*: the statements printed are those the real run ran"
    ran=$(server_changes "$off")
    # the guard proves something only if the server logged the run's statements at all
    [ -n "$ran" ] || _t_fail "phase$n $*: the server's log shows none of the run's statements (log_statement not in effect?)"
    assert_eq "" "$(LC_ALL=C comm -23 <(LC_ALL=C sort -u <<<"$ran") <(LC_ALL=C sort -u <<<"$logged"))" \
        "phase$n $*: every statement that changed something is in the run log (those the server ran, not logged)"
}

test_case "clerk-to-firebase: every apply and rollback, dry then real: the same statements, nothing changed by the dry run"
PLAN=$ROOT/plans/clerk-to-firebase.json
gen_app dryc 400 t06 "$DATA" --missing-pct 0
watch_db dryc
start=$(db_state dryc)
dry_then_real dryc 0 1 apply -d dryc
dry_then_real dryc 0 2 apply -d dryc --mapping "$DATA/firebase-export.json" --batch-size 150
dry_then_real dryc 0 3 apply -d dryc
dry_then_real dryc 0 3 rollback -d dryc
dry_then_real dryc 0 2 rollback -d dryc
dry_then_real dryc 0 1 rollback -d dryc
assert_eq "$start" "$(db_state dryc)" "the real runs' rollbacks give back the start"

test_case "string-to-uuid: every apply, finalize and rollback, dry then real"
PLAN=$ROOT/plans/string-to-uuid.json
gen_app dryu 300 t06u "$DATA"
watch_db dryu
start=$(db_state dryu)
dry_then_real dryu 0 1 apply -d dryu
dry_then_real dryu 0 2 apply -d dryu --batch-size 200
dry_then_real dryu 0 3 apply -d dryu
dry_then_real dryu 0 3 finalize -d dryu
dry_then_real dryu 0 3 rollback -d dryu
dry_then_real dryu 0 2 rollback -d dryu
dry_then_real dryu 0 1 rollback -d dryu
assert_eq "$start" "$(db_state dryu)" "the real runs' rollbacks give back the start"

test_case "clerk-to-firebase --generate-missing, with and without --clerk-export, and every rollback with and without --discard-generated-uids: dry then real"
PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs GEN
gen_app dryg 400 t06g "$GEN"
watch_db dryg
start=$(db_state dryg)
GENERATED='migration_backup."clerk-to-firebase:generated"' FILES='migration_backup."clerk-to-firebase:import_files"'
# generated: the plan's generated uids and import files, or "none" while its tables do not exist
generated() {
    if [ "$(q dryg "select to_regclass('$GENERATED') is null")" = t ]; then echo none; return; fi
    q dryg "select (select count(*) from $GENERATED) || ' uids, ' || (select count(*) from $FILES) || ' files'"
}
dry_then_real dryg 0 1 apply -d dryg
dry_then_real dryg 0 2 apply -d dryg --mapping "$GEN/firebase-export.json" --generate-missing --batch-size 150
for stmt in "CREATE TABLE IF NOT EXISTS $GENERATED" "CREATE TABLE IF NOT EXISTS $FILES" \
    "WITH g AS (INSERT INTO $GENERATED" "WITH m AS (UPDATE $GENERATED g SET import_file" "INSERT INTO $FILES"; do
    assert_contains "$PRINTED" "$stmt" "the dry run prints the statement that begins with: $stmt"
done
made=$(generated)
[[ $made =~ ^[1-9][0-9]*\ uids,\ 1\ files$ ]] || _t_fail "the real run generated uids and listed them in one import file, got: $made"
assert_eq "0" "$(q dryg "select count(*) from users where firebase_uid is null")" "every row has a uid"
assert_eq "1" "$(ls "$LOGS"/*-firebase-import-*.json | wc -l)" "one import file"
dry_then_real dryg 0 3 apply -d dryg
dry_then_real dryg 0 3 rollback -d dryg
dry_then_real dryg 0 2 rollback -d dryg
assert_eq "$made" "$(generated)" "phase2 rollback keeps the generated uids"
# the same users get the same uids; none is listed again
dry_then_real dryg 0 2 apply -d dryg --mapping "$GEN/firebase-export.json" --generate-missing --clerk-export "$GEN/clerk-export.csv"
assert_eq "$made" "$(generated)" "a second apply reuses the generated uids and writes no second import file"
dry_then_real dryg 0 2 rollback -d dryg --discard-generated-uids
assert_eq "0 uids, 0 files" "$(generated)" "--discard-generated-uids forgets them"
assert_eq "400" "$(q dryg "select count(*) from users where firebase_uid is null")" "phase2 rollback empties the column"
dry_then_real dryg 0 2 apply -d dryg --mapping "$GEN/firebase-export.json" --generate-missing --clerk-export "$GEN/clerk-export.csv"
assert_eq "$made" "$(generated)" "new uids, listed in a new import file"
assert_contains "$(cat "$(ls -t "$LOGS"/*-firebase-import-*.json | head -1)")" '"displayName"' "the new file has the Clerk export's fields"
dry_then_real dryg 0 2 rollback -d dryg
dry_then_real dryg 0 1 rollback -d dryg
assert_ne "none" "$(generated)" "phase1 rollback keeps the generated uids"
dry_then_real dryg 0 1 apply -d dryg
dry_then_real dryg 0 2 apply -d dryg --mapping "$GEN/firebase-export.json" --generate-missing
dry_then_real dryg 0 2 rollback -d dryg
dry_then_real dryg 0 1 rollback -d dryg --discard-generated-uids
assert_eq "none" "$(generated)" "phase1 rollback --discard-generated-uids drops them"
assert_eq "$start" "$(db_state dryg)" "the real runs' rollbacks give back the start"

test_case "generated uids an earlier phasemig kept only in the source table: phase2 rollback --discard-generated-uids adopts, then forgets them, dry then real"
gen_app drya 200 t06a "$DATA/a"
watch_db drya
must p1 apply -d drya
must p2 apply -d drya --mapping "$DATA/a/firebase-export.json" --generate-missing
# what the earlier version left: the uids only in the source table, no table of generated uids
q drya "drop table $GENERATED; drop table $FILES" >/dev/null
dry_then_real drya 0 2 rollback -d drya --discard-generated-uids
assert_contains "$PRINTED" "INSERT INTO $GENERATED" "the dry run prints the adoption"
assert_contains "$PRINTED" "DELETE FROM $GENERATED" "and the discard of what it adopted"
assert_eq "0 0" "$(q drya "select (select count(*) from $GENERATED) || ' ' || (select count(*) from $FILES)")" "adopted, then forgotten"

test_case "string-to-uuid with a regenerated key: rollbacks with --discard-generated-uids, dry then real"
PLAN=$ROOT/plans/string-to-uuid.json
gen_app dryv 100 t06v "$DATA/v"
q dryv "insert into public.users (id, name) values ('not-a-uuid', 'garbage')" >/dev/null
watch_db dryv
start=$(db_state dryv)
MAP='migration_backup."string-to-uuid:uuid_map"'
dry_then_real dryv 0 1 apply -d dryv
dry_then_real dryv 0 2 apply -d dryv --on-invalid=regenerate
assert_eq "1" "$(q dryv "select count(*) from $MAP")" "the invalid key got a uuid, kept in the map"
dry_then_real dryv 0 2 rollback -d dryv --discard-generated-uids
assert_eq "0" "$(q dryv "select count(*) from $MAP")" "phase2 rollback --discard-generated-uids forgets it"
dry_then_real dryv 0 2 apply -d dryv --on-invalid=regenerate
dry_then_real dryv 0 2 rollback -d dryv
assert_eq "1" "$(q dryv "select count(*) from $MAP")" "phase2 rollback keeps it"
dry_then_real dryv 0 1 rollback -d dryv --discard-generated-uids
assert_eq "t" "$(q dryv "select to_regclass('$MAP') is null")" "phase1 rollback --discard-generated-uids drops the map"
assert_eq "$start" "$(db_state dryv)" "the real runs' rollbacks give back the start"

test_case "a dry run exits as the real run would: out of order (2), refused by pre-flight checks (3)"
PLAN=$ROOT/plans/clerk-to-firebase.json
gen_app dryr 300 t06r "$DATA"
watch_db dryr
dry_then_real dryr 2 2 apply -d dryr --mapping "$DATA/firebase-export.json"
must p1 apply -d dryr
must p2 apply -d dryr --mapping "$DATA/firebase-export.json"
dry_then_real dryr 3 3 apply -d dryr
assert_contains "$LAST_ERR" "null_or_empty" "the refusal names the check"

test_case "phase2 --dry-run of the Clerk job counts the rows it would fill and those without a match"
assert_exit 0 "phase2 rollback" -- p2 rollback -d dryr
assert_exit 0 "phase2 apply --dry-run" -- p2 apply -d dryr --dry-run --mapping "$DATA/firebase-export.json"
assert_eq "300" "$(q dryr "select count(*) from users where firebase_uid is null")" "nothing filled"
would=$(sed -n 's/.*: \([0-9]*\) would be filled from it$/\1/p' <<<"$LAST_OUT")
unmatched=$(sed -n 's/^-- \([0-9]*\) rows have no match.*/\1/p' <<<"$LAST_OUT")
assert_exit 0 "phase2 apply" -- p2 apply -d dryr --mapping "$DATA/firebase-export.json"
assert_eq "$(q dryr "select count(firebase_uid) || ' ' || count(*) filter (where firebase_uid is null) from users")" \
    "$would $unmatched" "the dry run's counts are what the real run filled and left empty"
[ "${unmatched:-0}" -gt 0 ] || _t_fail "expected rows without a match (5% of the users are not in the export)"

test_case "--dry-run is refused where nothing would change"
PLAN=$ROOT/plans/clerk-to-firebase.json
assert_exit 2 "status --dry-run" -- p2 status -d dryr --dry-run
assert_contains "$LAST_ERR" "accepted by apply, rollback and finalize only" "says where it is accepted"
assert_exit 2 "check --dry-run" -- p3 check -d dryr --dry-run
