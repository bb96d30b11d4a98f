# t30_rehearse.sh -- scripts/rehearse on a small generated database: a passing rehearsal leaves the
# source as it was and drops its copy; a refused check, a rollback that cannot give back the start
# (backup damaged on purpose) and bad usage fail and say so; under pgbench load no transaction fails.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
DATA=$TEST_TMP/data
REPORTS=$TEST_TMP/reports
mkdir -p "$DATA" "$REPORTS"

new_db rsrc
"$ROOT/scripts/gen-data" -d rsrc --users 300 --out "$DATA" --seed t30 2>/dev/null || _t_fail "gen-data failed"

# psql, pg_dump, pg_restore and pgbench as rehearse runs them: each logs its command line to
# $ARGV_LOG, then runs the real one (the last case checks no password was ever on one)
SHIMS=$TEST_TMP/shims ARGV_LOG=$TEST_TMP/argv.log RTMP=$TEST_TMP/rtmp
mkdir -p "$SHIMS" "$RTMP"
for t in psql pg_dump pg_restore pgbench; do
    real=$(command -v "$t") || { source "$ROOT/scripts/lib/cluster.sh"; real=$(cluster_bindir)/$t; }
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexec "%s" "$@"\n' "$t" "$ARGV_LOG" "$real" >"$SHIMS/$t"
    chmod +x "$SHIMS/$t"
done
# rehearse NAME [OPTION...]: the clerk plan on a copy of rsrc, reports in $REPORTS/NAME; the source's
# DSN carries an unused password (the test cluster trusts) that must reach no command line
rehearse() {
    local name=$1; shift
    PATH=$SHIMS:$PATH TMPDIR=$RTMP "$ROOT/scripts/rehearse" --plan "$PLAN" -d "dbname=rsrc password=s3cret" \
        --mapping "$DATA/firebase-export.json" --report-dir "$REPORTS/$name" "$@"
}
GENERATE=(--phase2-args "--generate-missing --clerk-export $DATA/clerk-export.csv")
# jget NAME PATH: a value of the JSON report of rehearsal NAME, e.g. jget pass '{rollback,passed}'
jget() { _t_psql postgres -v j="$(cat "$REPORTS/$1"/*.json)" -v p="$2" <<<"SELECT (:'j')::jsonb #>> :'p'"; }
source_state() { schema_dump rsrc; schema_fingerprint rsrc; table_checksums rsrc; }
copies() { q postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'rsrc%rehearsal%'"; }
START=$(source_state)

test_case "a rehearsal passes on its copy: report says so, the source is unchanged, the copy is dropped"
assert_exit 0 "rehearse" -- rehearse pass "${GENERATE[@]}"
assert_contains "$LAST_OUT" "rehearsal of clerk-to-firebase: PASSED" "verdict on stdout"
assert_contains "$LAST_OUT" "report: $REPORTS/pass/rehearsal-clerk-to-firebase-" "report path on stdout"
assert_eq "true" "$(jget pass '{passed}')" "JSON: passed"
assert_eq "true|true|true" "$(jget pass '{applied}')|$(jget pass '{rollback,passed}')|$(jget pass '{reapply,passed}')" \
    "JSON: applied, rollback gave back the start, re-apply matched"
assert_eq "CREATE DATABASE ... TEMPLATE" "$(jget pass '{staging,copy_method}')" "an idle source is copied as a template"
assert_eq "phase1 apply,phase2 apply,phase3 check,phase3 apply,phase3 rollback,phase2 rollback,phase1 rollback" \
    "$(_t_psql postgres -v j="$(cat "$REPORTS"/pass/*.json)" <<<"SELECT string_agg(r->>'command', ',')
        FROM jsonb_array_elements((:'j')::jsonb->'runs') r WHERE r->>'round' <> 're-apply'")" "runs in order"
assert_eq "300|300" "$(jget pass '{runs,1,rows}')|$(jget pass '{runs,1,steps,0,rows_total}')" "phase2 filled every user"
assert_ne "" "$(jget pass '{runs,3,ddl_longest_attempt_ms}')" "phase3 apply's longest lock hold reported"
assert_eq "0" "$(jget pass '{reapply,generated_values_differing}')" "the re-apply gives each user the uid generated the first time"
md=$(cat "$REPORTS"/pass/*.md)
assert_contains "$md" "# Rehearsal of plan clerk-to-firebase: PASSED" "Markdown report"
assert_contains "$md" "| rollback 3, 2, 1 gave back the start | yes" "Markdown: rollback verdict"
assert_eq "column_order|[]" "$(jget pass '{rollback,schema_dump}')|$(jget pass '{rollback,schema_differences}')" \
    "JSON: the rollback's schema dump differs only in column order (clerk_user_id comes back last), and says so"
assert_contains "$md" "| pg_dump --schema-only: the start and after the rollback | differ **only in the order of columns**" \
    "Markdown: the column order is not hidden"
assert_contains "$md" "## Estimate for the source's size" "Markdown: estimate"
assert_contains "$md" "## Warnings" "Markdown: what the phases warned about"
assert_eq "array" "$(_t_psql postgres -v j="$(cat "$REPORTS"/pass/*.json)" <<<"SELECT jsonb_typeof((:'j')::jsonb#>'{runs,0,warnings}')")" "JSON: warnings of each run"
assert_eq "t|t|t|t" "$(_t_psql postgres -v j="$(cat "$REPORTS"/pass/*.json)" <<<"SELECT format('%s|%s|%s|%s',
        bool_and((r->>'wal_bytes')::bigint > 0), bool_and((r->>'table_bytes_before')::bigint > 0),
        bool_and((r->>'table_growth_bytes')::bigint = (r->>'table_bytes_after')::bigint - (r->>'table_bytes_before')::bigint),
        bool_and((r->>'table_growth_bytes')::bigint > 0) FILTER (WHERE r->>'command' IN ('phase1 apply', 'phase2 apply')
                                                                AND r->>'round' = 'apply'))
        FROM jsonb_array_elements((:'j')::jsonb->'runs') r")" \
    "JSON: every phase command's WAL and the plan's table sizes before and after; phase1 and phase2 apply grow the table"
assert_eq "t" "$(_t_psql postgres -v j="$(cat "$REPORTS"/pass/*.json)" <<<"SELECT (r->>'wal_bytes')::bigint > 100000
        FROM jsonb_array_elements((:'j')::jsonb->'runs') r WHERE r->>'command' = 'phase2 apply' AND r->>'round' = 'apply'")" \
    "JSON: phase2 apply's WAL is plausible (over 100 kB for 300 users)"
assert_contains "$md" "## WAL and table growth" "Markdown: WAL and table growth section"
assert_eq "$START" "$(source_state)" "source schema dump, fingerprint and checksums unchanged"
assert_eq "0" "$(copies)" "staging copy dropped"

test_case "a rehearsal on a terminal (script(1)): no phase asks (phase3 apply gets --yes), the rehearsal passes"
cmd=$(printf '%q ' env PATH="$SHIMS:$PATH" TMPDIR="$RTMP" "$ROOT/scripts/rehearse" --plan "$PLAN" \
    -d "dbname=rsrc password=s3cret" --mapping "$DATA/firebase-export.json" --report-dir "$REPORTS/tty" "${GENERATE[@]}")
run timeout -k 5 300 script -qefc "$cmd" /dev/null
assert_eq "0" "$LAST_RC" "rehearse on a terminal exits 0 ($(tail -5 <<<"$LAST_OUT"))"
assert_contains "$LAST_OUT" "rehearsal of clerk-to-firebase: PASSED" "verdict on the terminal"
assert_not_contains "$LAST_OUT" "Go on?" "no question on the terminal"
p3out=$(cat "$REPORTS"/tty/*/*-phase3-apply.out 2>/dev/null)
assert_contains "$p3out" 'phase3: apply: plan "clerk-to-firebase"' "phase3 apply's output kept"
assert_not_contains "$p3out" "Go on?" "no question in phase3 apply's output"
assert_eq "true" "$(jget tty '{passed}')" "JSON: passed"
assert_eq "$START" "$(source_state)" "source unchanged"
assert_eq "0" "$(copies)" "staging copy dropped"

test_case "string-to-uuid: passes; the estimate counts every table the conversion changes"
assert_exit 0 "rehearse string-to-uuid" -- "$ROOT/scripts/rehearse" --plan "$ROOT/plans/string-to-uuid.json" -d rsrc --report-dir "$REPORTS/uuid"
expect=$(_t_psql rsrc <<<"SELECT string_agg(format('public.%s %s', relname, reltuples::bigint), ',' ORDER BY relname <> 'users', relname)
                          FROM pg_class WHERE relname IN ('users', 'journal_entries', 'tags', 'reminders') AND relkind = 'r'")
assert_eq "$expect" "$(_t_psql postgres -v j="$(cat "$REPORTS"/uuid/*.json)" <<<"SELECT string_agg(format('%s %s', x->>'table', x->>'rows'), ',')
        FROM jsonb_array_elements((:'j')::jsonb#>'{estimate,tables}') x")" "JSON: the estimate's tables, with the source's rows"
assert_eq "$(_t_psql rsrc <<<"SELECT sum(reltuples)::bigint FROM pg_class WHERE relname IN ('users', 'journal_entries', 'tags', 'reminders') AND relkind = 'r'")" \
    "$(jget uuid '{estimate,table_rows}')" "JSON: the estimate scales to the rows of all four tables"
assert_contains "$(cat "$REPORTS"/uuid/*.md)" "The plan changes public.users (" "Markdown: the tables of the estimate"
assert_eq "$START" "$(source_state)" "source unchanged"
assert_eq "0" "$(copies)" "staging copy dropped"

test_case "a damaged backup: the rollback does not give back the start, the rehearsal fails naming it"
assert_exit 1 "rehearse" -- rehearse damaged "${GENERATE[@]}" --before-rollback \
    'psql -X -q -v ON_ERROR_STOP=1 -c "DELETE FROM migration_backup.\"clerk-to-firebase:drop:clerk_user_id\"
     WHERE ctid IN (SELECT ctid FROM migration_backup.\"clerk-to-firebase:drop:clerk_user_id\" LIMIT 3)"'
assert_contains "$LAST_OUT" "rehearsal of clerk-to-firebase: FAILED" "verdict on stdout"
assert_eq "false|0" "$(jget damaged '{passed}')|$(jget damaged '{before_rollback,exit_code}')" "JSON: failed; the hook ran"
assert_eq "true|false|true" "$(jget damaged '{rollback,ran}')|$(jget damaged '{rollback,passed}')|$(jget damaged '{rollback,schema_equal}')" \
    "JSON: the rollback ran, the schema came back, the data did not"
assert_eq '["public.users"]' "$(jget damaged '{rollback,tables_differing}')" "JSON: the damaged table named"
md=$(cat "$REPORTS"/damaged/*.md)
assert_contains "$md" "**FAILED**: the rollback did not give back the start: public.users differ" "Markdown: reason"
assert_contains "$md" "| rollback 3, 2, 1 gave back the start | **FAILED**" "Markdown: rollback verdict"
assert_eq "$START" "$(source_state)" "source unchanged"
assert_eq "0" "$(copies)" "staging copy dropped"

test_case "damage to the schema (a grant revoked, a comment changed) fails the rollback naming it; no password shows anywhere"
cat >"$TEST_TMP/schema-damage.sql" <<'SQL'
REVOKE TRUNCATE ON public.users FROM postgres;
COMMENT ON TABLE public.users IS 'changed by the hook';
SQL
# an unused password in the DSN (the test cluster trusts): it must not be printed, nor written to a report
assert_exit 1 "rehearse" -- rehearse schema -d "dbname=rsrc password=s3cret" "${GENERATE[@]}" --keep \
    --before-rollback "psql -X -q -v ON_ERROR_STOP=1 -f $TEST_TMP/schema-damage.sql"
assert_eq "true|false|false|[]" "$(jget schema '{rollback,ran}')|$(jget schema '{rollback,passed}')|$(jget schema '{rollback,schema_equal}')|$(jget schema '{rollback,tables_differing}')" \
    "JSON: the rollback ran, the data came back, the schema did not"
diffs=$(jget schema '{rollback,schema_differences}')
assert_contains "$diffs" "only in start: acl public.users postgres=arwdDxt/postgres" "JSON: the revoked grant named"
assert_contains "$diffs" "only in rolled-back: comment table public.users: changed by the hook" "JSON: the changed comment named"
assert_eq "different" "$(jget schema '{rollback,schema_dump}')" "JSON: the schema dumps differ beyond column order"
md=$(cat "$REPORTS"/schema/*.md)
assert_contains "$(head -n 4 <<<"$md")" "**FAILED**: the rollback did not give back the start: the schema (only in start: acl public.users" \
    "Markdown: the reason, first"
assert_contains "$md" "comment table public.users: changed by the hook" "Markdown: the comment named"
assert_contains "$md" "| pg_dump --schema-only: the start and after the rollback | **differ** beyond the order of columns: \`start-vs-rolled-back.schema.diff\`" \
    "Markdown: the dumps compared, the diff kept"
assert_contains "$LAST_ERR" "kept the copy: database rsrc_rehearsal_" "--keep names the copy by database"
assert_not_contains "$LAST_OUT$LAST_ERR" "s3cret" "no password on stdout or stderr"
assert_eq "" "$(grep -rl s3cret "$REPORTS/schema")" "no password in the reports or the files kept"
kept=$(jget schema '{staging,database}')
assert_eq "1" "$(copies)" "--keep kept the copy"
q postgres "DROP DATABASE \"$kept\"" >/dev/null
assert_eq "$START" "$(source_state)" "source unchanged"

test_case "a refused check on a busy source: copied by pg_dump, findings reported, phase3 apply not run, rolled back"
psql -X -q -d rsrc -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
busy=$!
on_exit "kill $busy 2>/dev/null"
wait_for_sql postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rsrc' AND query LIKE '%pg_sleep(120)%'" 1
assert_exit 1 "rehearse without --generate-missing" -- rehearse refused --staging-dbname "rsrc rehearsal \"x\""
kill "$busy" 2>/dev/null
assert_eq "pg_dump -Fc | pg_restore" "$(jget refused '{staging,copy_method}')" "a source with sessions is dumped"
assert_eq "true|phase3 check" "$(jget refused '{refusal,refused}')|$(jget refused '{refusal,by}')" "JSON: phase3 check refused"
missing=$(awk -F, 'NR > 1 && $3 == "" { n++ } END { print n + 0 }' "$DATA/expected.csv")
assert_eq "null_or_empty|$missing" "$(jget refused '{refusal,findings,0,check}')|$(jget refused '{refusal,findings,0,count}')" \
    "JSON: the NULL uids counted"
assert_not_contains "$(cat "$REPORTS"/refused/*.json)" '"command": "phase3 apply"' "phase3 apply not run"
assert_eq "true" "$(jget refused '{rollback,passed}')" "phases 2 and 1 rolled back to the start"
assert_contains "$(cat "$REPORTS"/refused/*.md)" "| the mapping, the keys and the pre-flight checks | **REFUSED** by phase3 check" \
    "Markdown: refused"
assert_eq "$START" "$(source_state)" "source unchanged"
assert_eq "0" "$(copies)" "staging copy dropped"

test_case "bad usage exits 2 and copies nothing"
assert_exit 2 "no --plan" -- "$ROOT/scripts/rehearse" -d rsrc
assert_exit 2 "clerk plan without --mapping" -- "$ROOT/scripts/rehearse" --plan "$PLAN" -d rsrc --report-dir "$REPORTS/usage"
assert_contains "$LAST_ERR" "give --mapping FILE" "says what is missing"
assert_exit 2 "unreachable source" -- rehearse usage -d "dbname=no_such_db"
assert_exit 2 "not a plan" -- "$ROOT/scripts/rehearse" --plan "$DATA/expected.csv" -d rsrc --report-dir "$REPORTS/usage"
assert_eq "0" "$(copies)" "no copy made"

test_case "SIGTERM during phase2 under load (source from PGDATABASE): exits at once, no pgbench left, copy dropped, report says why"
PGDATABASE=rsrc "$ROOT/scripts/rehearse" --plan "$PLAN" --mapping "$DATA/firebase-export.json" --report-dir "$REPORTS/term" \
    --with-load --phase2-args "--batch-size 5 --sleep-ms 300 --generate-missing --clerk-export $DATA/clerk-export.csv" \
    >"$TEST_TMP/term.out" 2>"$TEST_TMP/term.err" </dev/null &
term_pid=$!
on_exit "kill -KILL $term_pid 2>/dev/null"
for ((i = 0; i < 600; i++)); do grep -q 'phase2 apply (apply) \.\.\.' "$TEST_TMP/term.err" && break; sleep 0.1; done
assert_contains "$(cat "$TEST_TMP/term.err")" "phase2 apply (apply) ..." "phase2 started (PGDATABASE named the source)"
assert_contains "$(cat "$TEST_TMP/term.err")" "copied rsrc into rsrc_rehearsal_" "the source came from PGDATABASE"
sleep 1
t0=$SECONDS
kill -TERM "$term_pid"
wait "$term_pid"; rc=$?
assert_eq "143" "$rc" "exit status after SIGTERM"
[ $((SECONDS - t0)) -le 20 ] || _t_fail "the rehearsal took $((SECONDS - t0)) s to stop after SIGTERM"
assert_eq "0" "$(ps -eo args | grep -c "^[^ ]*pgbench .*$REPORTS/term/")" "no pgbench process left"
assert_eq "0" "$(ps -eo args | grep -c "^[^ ]*phase2 apply .*$REPORTS/term/")" "no phase2 process left"
assert_eq "0" "$(copies)" "staging copy dropped"
assert_eq "false" "$(jget term '{passed}')" "JSON report written: failed"
assert_contains "$(head -n 5 "$REPORTS"/term/*.md)" "interrupted by SIGTERM during phase2 apply (apply)" "the report's first lines say why"

test_case "a report larger than one command-line argument (128 kB) is still rendered"
big=$TEST_TMP/big.json
_t_psql postgres -v j="$(cat "$REPORTS"/pass/*.json)" \
    <<<"SELECT jsonb_set((:'j')::jsonb, '{runs,0,warnings}', jsonb_build_array(repeat('w', 200000)))" >"$big"
assert_ne "0" "$(( $(wc -c <"$big") > 150000 ))" "the synthetic report is over 150 kB"
assert_exit 0 "the stdout summary of a big report" -- "$BIN/rehearse-report" summary "$big"
assert_contains "$LAST_OUT" "rehearsal of clerk-to-firebase: PASSED" "summary rendered"
assert_exit 0 "the Markdown of a big report" -- "$BIN/rehearse-report" markdown "$big"
assert_contains "$LAST_OUT" "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww" "Markdown rendered, with the long warning"

test_case "bin/rehearse-report renders a fixed JSON report: the Markdown's lines and the stdout summary"
fixed=$TEST_TMP/fixed.json
cat >"$fixed" <<'EOF'
{"plan": "p1", "plan_file": "plans/p1.json", "passed": false,
 "reasons": ["the rollback did not give back the start: public.users differ", "--before-rollback exited 1"],
 "started_at": "2026-01-02T03:04:05+00:00", "finished_at": "2026-01-02T03:09:05+00:00",
 "source": {"database": "src", "server": "/tmp:5432", "size": "8 MB", "table": "public.users", "rows": 300, "rows_from": "pg_class.reltuples"},
 "staging": {"database": "src_rehearsal_1", "copy_method": "CREATE DATABASE ... TEMPLATE", "copy_seconds": 1.5, "rows": 300, "kept": true},
 "inputs": {"mapping": "m.json", "phase2_args": "--generate-missing --clerk-export a|b.csv"},
 "applied": true,
 "refusal": {"refused": true, "by": "phase3 check", "findings": [{"check": "null_or_empty", "subject": "firebase_uid", "count": 2, "samples": ["7", "9"]}]},
 "before_rollback": {"command": "psql -c 'x | y'", "exit_code": 1},
 "rollback": {"ran": true, "passed": false, "schema_equal": false, "tables_differing": ["public.users", "public.tags"],
              "schema_differences": ["only in start: a", "only in start: b", "c", "d", "e `q`", "f", "g"], "schema_dump": "column_order",
              "schema_dump_files": ["start.schema.sql", "rolled-back.schema.sql", "start-vs-rolled-back.schema.diff"]},
 "reapply": {"ran": true, "passed": true, "schema_equal": true, "tables_differing": [], "schema_differences": [], "schema_dump": "equal",
             "schema_dump_files": ["applied.schema.sql", "reapplied.schema.sql", "applied-vs-reapplied.schema.diff"], "generated_values_differing": 5},
 "load": {"enabled": true, "clients": 4, "failed_transactions": 0, "longest_stall_ms": 12.5, "rows_removed_after": 17,
          "attributable_failures": 0,
          "holdout_comparison": [{"round": "apply", "phase": 2, "load_seconds": 2.5, "failure_kinds": {"22012": 4, "40P01": 1},
                                  "holdout": {"seconds": 3, "transactions": 700, "failed_transactions": 4, "failure_kinds": {"22012": 4}},
                                  "attributable_failures": 1},
                                 {"round": "re-apply", "phase": 1, "load_seconds": 1.25, "failure_kinds": {}, "holdout": null,
                                  "attributable_failures": 0}]},
 "estimate": {"table_rows": 3000, "rows_from": "pg_class.reltuples", "rehearsed_rows": 300, "tables": [{"table": "public.users", "rows": 3000, "rows_from": "pg_class.reltuples", "rehearsed_rows": 300}],
              "phase2_rows_per_second": 150, "phase2_seconds": 20.0, "phase1_seconds": 0.5, "phase3_seconds": 1.25, "phase1_seconds_if_linear": 5.0, "phase3_seconds_if_linear": 12.5},
 "runs": [{"round": "apply", "command": "phase2 apply", "exit_code": 0, "seconds": 2.0, "rows": 300, "rows_per_second": 150,
           "ddl_longest_attempt_ms": 3.25, "ddl_retries": 1, "findings": [], "warnings": ["phase2: warning: lock `users` busy"],
           "wal_bytes": 1572864, "table_bytes_before": 2097152, "table_bytes_after": 3145728, "table_growth_bytes": 1048576,
           "steps": [{"operation": "backfill_from_mapping firebase_uid", "status": "done", "seconds": 1.5, "rows_done": 300, "rows_total": 300,
                      "metadata": {"ddl_retries": 1, "batches": 3, "rows_per_second": 200.4, "longest_batch_ms": 10.26, "unmatched": 4}}],
           "load": {"script": "scripts/load/p1.sql", "clients": 4, "transactions": 99, "failed_transactions": 0, "longest_stall_ms": 12.5, "error": null}},
          {"round": "re-apply", "command": "phase1 apply", "exit_code": 0, "seconds": 0.25, "rows": 0, "rows_per_second": null,
           "ddl_longest_attempt_ms": null, "ddl_retries": 0, "findings": [], "warnings": [],
           "steps": [{"operation": "not shown: a re-apply", "status": "done", "seconds": 0.1, "rows_done": 0, "metadata": {}}], "load": null}],
 "files": {"markdown": "r.md", "json": "r.json", "artifacts": "r"}}
EOF
assert_exit 0 "rehearse-report markdown" -- "$BIN/rehearse-report" markdown "$fixed"
md=$LAST_OUT
assert_eq "# Rehearsal of plan p1: FAILED" "$(head -n 1 <<<"$md")" "the verdict first"
assert_eq "- **FAILED**: the rollback did not give back the start: public.users differ" "$(sed -n 3p <<<"$md")" "then the reasons"
expect_line() { assert_eq "1" "$(grep -cxF -- "$1" <<<"$md")" "Markdown line: $2"; }
expect_line "| phase2 arguments | \`--mapping m.json --generate-missing --clerk-export a\\|b.csv\` |" "arguments, | escaped"
expect_line "| staging copy | \`src_rehearsal_1\`, made with CREATE DATABASE ... TEMPLATE in 1.500 s; kept (--keep) |" "the copy"
expect_line "| application load | 4 pgbench clients during every apply (scripts below); 17 rows they created removed before the comparisons |" "load"
expect_line "| the mapping, the keys and the pre-flight checks | **REFUSED** by phase3 check: 1 problem(s), listed below |" "refused"
expect_line "| --before-rollback \`psql -c 'x \\| y'\` | exit 1 |" "the hook"
expect_line "| rollback 3, 2, 1 gave back the start | **FAILED**: the schema differs: \`only in start: a\`; \`only in start: b\`; \`c\`; \`d\`; \`e 'q'\` and 2 more (JSON: schema_differences); these tables differ: public.users, public.tags |" \
    "rollback: the first 5 differences, then the tables"
expect_line "| applied again, same result as the first time | yes: same schema; every table the same except 5 uids generated for unmatched rows (random on each run), equal once those are masked |" "re-apply"
expect_line "| pg_dump --schema-only: the first and the second apply | identical (\`applied.schema.sql\`, \`reapplied.schema.sql\`) |" "dumps equal"
expect_line "| application load: failed transactions | 0 (longest stall 12.5 ms) |" "load verdict"
expect_line "| apply | phase2 apply | 0 | 2.000 | 300 | 150 | 3.3 | 1 | 99 | 0 | 12.5 |" "a phase's row"
expect_line "| re-apply | phase1 apply | 0 | 0.250 | 0 |  |  | 0 |  |  |  |" "a row without figures"
expect_line "Load scripts: \`scripts/load/p1.sql\`" "load scripts"
expect_line "| apply | phase2 apply | backfill_from_mapping firebase_uid | done | 1.500 | 300 |  | 1 | 3 batches, 200 rows/s in the batches, longest batch 10.3 ms, 4 unmatched |" "a step"
assert_not_contains "$md" "not shown: a re-apply" "Steps: first apply and rollback only"
expect_line "- apply, phase2 apply: \`phase2: warning: lock 'users' busy\`" "a warning"
expect_line "- phase3 check: check \`null_or_empty\` on \`firebase_uid\`: 2 found; samples: [\"7\", \"9\"]" "a finding"
expect_line "The plan changes public.users (3000 rows): 3000 rows in all on the source (pg_class.reltuples); the rehearsal ran on 300." "estimate"
expect_line "| phase2 apply | 20.0 s | 3000 rows / 150 rows of those tables per second, measured |" "phase2 estimate"
expect_line "- phase outputs, run logs, state snapshots and comparisons, load logs: \`r/\`" "files"
expect_line "| apply | phase2 apply | 1.5 | 2.0 | 3.0 | 1.0 |" "WAL and growth of a run, in MB"
expect_line "| re-apply | phase1 apply |  |  |  |  |" "a run without those figures"
expect_line "| apply | phase2 | 2.5 | 22012 4, 40P01 1 | 3 | 700 | 22012 4 | **1** |" "a phase's failures beside its hold-out's"
expect_line "| re-apply | phase1 | 1.3 | none | not run | |  | 0 |" "a phase without a hold-out"
assert_eq "## Verdict|## Phases|## WAL and table growth|## The load against its hold-out|## Steps|## Warnings|## Refusals|## Estimate for the source's size|## Files" \
    "$(grep '^## ' <<<"$md" | paste -sd'|')" "the sections in order"
assert_exit 0 "rehearse-report summary" -- "$BIN/rehearse-report" summary "$fixed"
assert_eq "rehearsal of p1: FAILED
  apply     phase2 apply     exit 0     2.000 s, 150 rows/s, longest lock hold 3.3 ms, WAL 1.5 MB, load: 0 failed, longest stall 12.5 ms
  re-apply  phase1 apply     exit 0     0.250 s
  FAILED: the rollback did not give back the start: public.users differ
  FAILED: --before-rollback exited 1" "$LAST_OUT" "summary lines"
assert_exit 2 "a file that is not JSON" -- "$BIN/rehearse-report" markdown "$DATA/expected.csv"

test_case "bin/rehearse-report builds the JSON report and the short one from NUL-separated facts"
facts=$TEST_TMP/facts runs=$TEST_TMP/runs.json
printf '%s\0' plan=p1 plan_file=plans/p1.json passed=false $'reasons=first reason\nsecond "quoted" reason' started_at=s \
    finished_at=f src_db=src src_server=/tmp:5432 staging_db=copy kept=false runs_completed=0 md_file=r.md json_file=r.json \
    work=r table=public.users src_rows=300 src_rows_how=count\(\*\) staging_rows=300 with_load=false load_clients=4 \
    applied=false rb_ran=false ra_ran=false rb_dump= ra_dump= >"$facts"
echo '[]' >"$runs"
assert_exit 0 "rehearse-report json" -- "$BIN/rehearse-report" json "$facts" "$runs"
echo "$LAST_OUT" >"$TEST_TMP/built.json"
j() { _t_psql postgres -v j="$(cat "$TEST_TMP/built.json")" -v p="$1" <<<"SELECT (:'j')::jsonb #>> :'p'"; }
assert_eq '["first reason", "second \"quoted\" reason"]' "$(j '{reasons}')" "JSON: the reasons, one a line, quoted"
jtype() { _t_psql postgres -v j="$(cat "$TEST_TMP/built.json")" -v p="$1" <<<"SELECT jsonb_typeof((:'j')::jsonb #> :'p')"; }
assert_eq "number|count(*)|null|null" "$(jtype '{source,rows}')|$(j '{estimate,rows_from}')|$(jtype '{estimate,phase2_seconds}')|$(jtype '{runs}')" \
    "JSON: numbers, the estimate without runs, no runs"
assert_exit 0 "rehearse-report short" -- "$BIN/rehearse-report" short "$facts"
assert_eq "true|false|0" "$(_t_psql postgres -v j="$LAST_OUT" <<<"SELECT format('%s|%s|%s', (:'j')::jsonb->>'short', (:'j')::jsonb->>'passed', (:'j')::jsonb->>'runs_completed')")" \
    "short JSON: short, failed, no run"
assert_exit 0 "rehearse-report short-markdown" -- "$BIN/rehearse-report" short-markdown "$facts"
assert_eq "# Rehearsal of plan p1: FAILED" "$(head -n 1 <<<"$LAST_OUT")" "short Markdown: the verdict"
assert_contains "$LAST_OUT" '- **FAILED**: second "quoted" reason' "short Markdown: the reasons"

test_case "the phases say what rehearse needs: plan --json (no database), status --run RUN_ID --json"
assert_exit 0 "phase1 plan --json" -- "$BIN/phase1" plan --plan "$PLAN" --json
printf '%s' "$LAST_OUT" >"$TEST_TMP/plan.json"
assert_eq "clerk-to-firebase|public|users|id|firebase_uid|true|false|" \
    "$("$BIN/rehearse-report" fields "$TEST_TMP/plan.json" plan schema table key uid_column needs_mapping converts_to_uuid | tr '\0' '|')" \
    "the plan's identity"
assert_eq "string-to-uuid||false|true|" \
    "$("$BIN/phase3" plan --plan "$ROOT/plans/string-to-uuid.json" --json | "$BIN/rehearse-report" fields - plan uid_column needs_mapping converts_to_uuid | tr '\0' '|')" \
    "a uuid conversion: no uid column, no mapping, a finalize"
assert_exit 2 "not a plan" -- "$BIN/phase2" plan --plan "$DATA/expected.csv"
assert_exit 2 "--run takes a run id" -- "$BIN/phase1" status --plan "$PLAN" -d rsrc --run nope
assert_exit 2 "--run with status only" -- "$BIN/phase1" apply --plan "$PLAN" -d rsrc --run 00000000-0000-0000-0000-000000000000
new_db runsdb
q runsdb "CREATE TABLE users (id bigserial PRIMARY KEY, clerk_user_id text, email text)" >/dev/null
assert_exit 0 "no migration_log: an empty run" -- "$BIN/phase1" status --plan "$PLAN" -d runsdb --run 00000000-0000-0000-0000-000000000000 --json
assert_eq "null|0|[]" "$(_t_psql postgres -v j="$LAST_OUT" <<<"SELECT format('%s|%s|%s', coalesce((:'j')::jsonb->>'subcommand', 'null'), (:'j')::jsonb->>'rows', (:'j')::jsonb->>'steps')")" \
    "the run's JSON"
assert_exit 0 "phase1 apply" -- "$BIN/phase1" apply --plan "$PLAN" -d runsdb --logs-dir "$TEST_TMP/runlogs"
run_id=$(sed -n -E 's/^phase1: apply: plan ".*, run ([0-9a-f-]{36}), .*/\1/p' <<<"$LAST_ERR$LAST_OUT" | head -n 1)
assert_ne "" "$run_id" "phase1 apply names its run first"
assert_exit 0 "status --run" -- "$BIN/phase2" status --plan "$PLAN" -d runsdb --run "$run_id" --json
assert_eq "$(q runsdb "SELECT format('%s|apply|done|%s', '$run_id', count(*) FILTER (WHERE operation <> 'apply')) FROM migration_log WHERE run_id = '$run_id'")" \
    "$(_t_psql postgres -v j="$LAST_OUT" <<<"SELECT format('%s|%s|%s|%s', (:'j')::jsonb->>'run_id', (:'j')::jsonb->>'subcommand', (:'j')::jsonb->>'status', jsonb_array_length((:'j')::jsonb->'steps'))")" \
    "the run's steps, as migration_log has them"
assert_exit 0 "status --run, as text" -- "$BIN/phase1" status --plan "$PLAN" -d runsdb --run "$run_id"
assert_contains "$LAST_OUT" "run $run_id: phase1 apply done" "the text form"

test_case "failed load transactions are counted whatever pgbench calls them, never fewer than its summary says"
# load_figures PREFIX T0 T1 of scripts/lib/load.sh, fed a synthetic pgbench 15 --failures-detailed log
figures() { (source "$ROOT/scripts/lib/load.sh" && load_figures "$@"); }
synth=$TEST_TMP/synth.load
printf '%s\n' '0 1 4928 0 1795362404 544671' '1 1 1040 0 1795362404 600000' '1 1040 deadlock 0 1795362434 630229' \
    '2 7 serialization 0 1795362435 100' '3 9 failed 0 1795362436 5' '0 2 12000 0 1795362500 0' >"$synth.4242"
printf '%s\n' 'number of transactions actually processed: 3' 'number of failed transactions: 3 (50.000%)' >"$synth.out"
assert_eq "2 3 4.9 3.0" "$(figures "$synth" 1795362400 1795362440)" \
    "deadlock, serialization and failed lines counted as failed; the later transaction outside the window"
printf '%s\n' '3 4 800 0 1795362405 0' >"$synth.4242.1"
printf '%s\n' 'number of failed transactions: 7 (1.000%)' >"$synth.out"
assert_eq "3 7 4.9 2.3" "$(figures "$synth" 1795362400 1795362440)" "pgbench's summary count wins when it says more"
assert_eq "0 0 0.0 0.0" "$(figures "$TEST_TMP/no-such-run" 0 1)" "no logs: nothing counted"

test_case "the rehearsal's load alone (no phasemig run), both plans' scripts: no transaction fails, the load never conflicts with itself"
# 2 users and 8 clients: every client wanting the same rows is the worst case for a load racing with
# itself (before: deadlocks updating a user's entries, foreign key violations on users another client deleted)
new_db lalone
"$ROOT/scripts/gen-data" -d lalone --users 2 --out "$TEST_TMP/ldata" --seed t30load >/dev/null 2>&1 || _t_fail "gen-data failed"
# load_alone PLAN SECONDS: the plan's phase1 script for SECONDS, as scripts/rehearse runs it (load.sh):
# "FAILED KINDS TRANSACTIONS"
load_alone() {
    (
        source "$ROOT/scripts/lib/util.sh"; source "$ROOT/scripts/lib/load.sh"
        LOAD_DIR=$ROOT/scripts/load PLAN_NAME=$1 PGBENCH_ERRORS=(--verbose-errors --failures-detailed)
        PGBENCH=$(command -v pgbench || { source "$ROOT/scripts/lib/cluster.sh"; echo "$(cluster_bindir)/pgbench"; })
        load_clients=8 load_max_seconds=120 STAGING_DSN="dbname=lalone" work=$TEST_TMP/alone-$1
        mkdir -p "$work"
        load_start alone 1; t0=$(now); sleep "$2"; t1=$(now); load_stop alone "$t0" "$t1" 2>/dev/null
        echo "$LOAD_FAILED ${LOAD_KINDS:-none} ${LOAD_FACTS[2]#load_tx=}"
    )
}
for plan in string-to-uuid:4 clerk-to-firebase:2; do
    read -r failed kinds tx <<<"$(load_alone "${plan%:*}" "${plan#*:}")"
    assert_eq "0 none" "$failed $kinds" "${plan%:*}: failed transactions (and their kinds) in $tx"
    [ "${tx:-0}" -gt 500 ] || _t_fail "${plan%:*}: only ${tx:-0} transactions ran"
    assert_eq "" "$(grep -h 'ERROR' "$TEST_TMP/alone-${plan%:*}"/alone.load.err)" "${plan%:*}: no error in pgbench's output"
done
_t_psql lalone -f "$ROOT/scripts/load/string-to-uuid-cleanup.sql" >/dev/null
assert_eq "2|0" "$(q lalone "SELECT count(*) FILTER (WHERE email NOT LIKE '%@rehearsal.invalid') || '|' ||
                              count(*) FILTER (WHERE email LIKE '%@rehearsal.invalid') FROM users")" "the cleanup removes what the load created"

test_case "load failures by kind (SQLSTATE) and against the hold-out: only what the hold-out does not explain counts"
kinds_of() { (source "$ROOT/scripts/lib/util.sh"; source "$ROOT/scripts/lib/load.sh"; "$@"); }
synth=$TEST_TMP/kinds.load
printf '%s\n' '0 1 4928 0 1795362404 544671' '1 1040 deadlock 0 1795362434 630229' '2 7 serialization 0 1795362435 100' \
    '3 9 failed 0 1795362436 5' '0 2 deadlock 0 1795362500 0' >"$synth.4242"
printf '%s\n' 'pgbench: error: client 7 script 0 aborted in command 15 query 0: ERROR:  insert or update on table "journal_entries" violates foreign key constraint "journal_entries_user_id_fkey"' \
    'pgbench: error: client 3 script 0 aborted in command 4 query 0: ERROR:  canceling statement due to lock timeout' \
    'pgbench: error: client 2 script 0 aborted in command 4 query 0: ERROR:  column "clerk_user_id" does not exist' \
    'pgbench: client 0 got an error in command 11 (SQL) of script 0; ERROR:  deadlock detected' >"$synth.err"
assert_eq "23503=1,40001=1,40P01=1,42703=1,55P03=1,failed=1" "$(kinds_of load_kinds "$synth" 1795362400 1795362440)" \
    "kinds: the logs' deadlock and serialization in the window, the aborted clients' messages as SQLSTATEs"
assert_eq "0" "$(kinds_of load_attributable "40P01=2,23503=1" 10.2 "23503=1,40P01=2" 11)" "as many of the same kinds: none counts"
assert_eq "1" "$(kinds_of load_attributable "40P01=2,55P03=1" 10 "40P01=2" 10)" "a kind the hold-out never had counts (55P03)"
assert_eq "2" "$(kinds_of load_attributable "40P01=5" 10 "40P01=3" 10)" "more of a kind than the hold-out: the excess counts"
assert_eq "1" "$(kinds_of load_attributable "40P01=2" 5 "40P01=1" 20)" "the hold-out's count scaled to the phase's time, rounded up"
# load_comparison over synthetic windows and hold-outs: a failure the hold-out had too is not phasemig's
cmp=$(kinds_of bash -c 'source "$0"; WIN_SECONDS=([apply:1]=3.5 [apply:2]=10 [re-apply:2]=9); WIN_KINDS=([apply:1]=22012=4 [apply:2]="22012=4,55P03=2" [re-apply:2]=)
      HOLDOUT=([1]="4 900 4 22012=4" [2]="10 2000 4 22012=4"); work=$(mktemp -d); load_comparison; echo "total $LOAD_ATTRIBUTABLE"; rm -r "$work"' \
      "$ROOT/scripts/lib/load.sh")
assert_eq "apply	1	3.5	22012=4	4	900	4	22012=4	0
apply	2	10	22012=4,55P03=2	10	2000	4	22012=4	2
re-apply	2	9		10	2000	4	22012=4	0
total 2" "$cmp" "per round and phase: the load's failures, the hold-out's, what is beyond it (55P03 only)"

test_case "under pgbench load during every apply: no failed transaction, stalls measured, the start comes back"
assert_exit 0 "rehearse --with-load" -- rehearse load "${GENERATE[@]}" --with-load
assert_eq "true|0" "$(jget load '{passed}')|$(jget load '{load,failed_transactions}')" "JSON: passed, 0 failed transactions"
assert_eq "phase1 apply 0|phase2 apply 0|phase3 apply 0" \
    "$(_t_psql postgres -v j="$(cat "$REPORTS"/load/*.json)" <<<"SELECT string_agg(format('%s %s', r->>'command',
        r#>>'{load,failed_transactions}'), '|') FROM jsonb_array_elements((:'j')::jsonb->'runs') r
        WHERE r->>'round' = 'apply' AND r->'load' <> 'null'")" "load measured during each apply, none failed"
assert_eq "t" "$(_t_psql postgres -v j="$(cat "$REPORTS"/load/*.json)" <<<"SELECT bool_and((r#>>'{load,transactions}')::int > 0
        AND (r#>>'{load,longest_stall_ms}')::numeric > 0) FROM jsonb_array_elements((:'j')::jsonb->'runs') r
        WHERE r->'load' <> 'null'")" "transactions and the longest stall counted in every phase window"
assert_ne "0" "$(jget load '{load,rows_removed_after}')" "the load's own rows removed before comparing"
assert_eq "apply 1 0 t|apply 2 0 t|apply 3 0 t|re-apply 1 0 t|re-apply 2 0 t|re-apply 3 0 t" \
    "$(_t_psql postgres -v j="$(cat "$REPORTS"/load/*.json)" <<<"SELECT string_agg(format('%s %s %s %s', c->>'round', c->>'phase',
        c->>'attributable_failures', (c#>>'{holdout,transactions}')::int > 0 AND (c#>>'{holdout,seconds}')::int >= 1), '|')
        FROM jsonb_array_elements((:'j')::jsonb#>'{load,holdout_comparison}') c")" \
    "JSON: each phase's load beside its hold-out (run after the phase's rollback), none beyond it"
assert_contains "$(cat "$REPORTS"/load/*.md)" "## The load against its hold-out" "Markdown: the hold-out section"
assert_contains "$LAST_ERR" "hold-out of phase 2: the same load for" "the hold-outs ran"
assert_eq "$START" "$(source_state)" "source unchanged"
assert_eq "0" "$(copies)" "staging copy dropped"

test_case "the password of the connection string reaches no command line (ps): psql, pg_dump, pg_restore, pgbench get service=NAME"
for t in psql pg_dump pg_restore pgbench; do
    assert_ne "" "$(grep "^$t " "$ARGV_LOG" | head -1)" "$t was run by the rehearsals above"
done
assert_contains "$(grep '^pg_dump ' "$ARGV_LOG" | head -1)" "service=" "pg_dump is given a service name"
assert_eq "" "$(grep -n s3cret "$ARGV_LOG")" "no password on any command line"
assert_eq "" "$(ls -A "$RTMP")" "the service files are removed"
assert_exit 2 "a password with a quote and a blank: connects, then stops at the plan" -- \
    rehearse quoted -d "dbname=rsrc password='s3cret q\\'te'" --plan "$DATA/expected.csv"
assert_contains "$LAST_ERR" "is not a plan" "it got as far as reading the plan"
assert_eq "" "$(grep -n s3cret "$ARGV_LOG")" "still no password on a command line"
assert_exit 2 "a password ending in a blank cannot go into a service file" -- rehearse blank -d "dbname=rsrc password='s3cret '"
assert_contains "$LAST_ERR" "cannot use the connection string of --dbname" "refused, saying which"
assert_not_contains "$LAST_OUT$LAST_ERR" "s3cret" "without printing it"

test_case "scripts/install-deps waits for a dpkg lock another apt holds (DPkg::Lock::Timeout) on every apt-get call"
# dpkg-query says help2man is missing, apt-get only records its arguments, id says root
fake=$TEST_TMP/fake-apt
mkdir -p "$fake"
printf '#!/bin/sh\n[ "$3" = help2man ] || printf "install ok installed"\n' >"$fake/dpkg-query"
printf '#!/bin/sh\necho "apt-get $*" >>"%s/calls"\n' "$fake" >"$fake/apt-get"
printf '#!/bin/sh\necho 0\n' >"$fake/id"
chmod +x "$fake"/*
assert_exit 0 "install-deps with help2man missing" -- env PATH="$fake:$PATH" "$ROOT/scripts/install-deps"
assert_eq "apt-get -o DPkg::Lock::Timeout=300 update
apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends help2man" "$(cat "$fake/calls")" "both apt-get calls wait for the lock"

test_case "make demo's end: the cluster stopped and its directory removed, unless KEEP=1 (checked by stopping the demo once its cluster runs)"
# demo_until_cluster DIR [ENV...]: scripts/demo in DIR, stopped by SIGTERM as soon as its server runs;
# prints its exit status
demo_until_cluster() {
    local d=$1 pid i; shift
    env DEMO_DIR="$d" DEMO_USERS=10 "$@" "$ROOT/scripts/demo" >"$TEST_TMP/demo.out" 2>&1 </dev/null &
    pid=$!
    for ((i = 0; i < 300; i++)); do
        [ -f "$d/data/postmaster.pid" ] && grep -q 'generating the legacy app' "$TEST_TMP/demo.out" && break
        sleep 0.1
    done
    kill -TERM "$pid"; wait "$pid"; echo $?
}
assert_eq "143" "$(demo_until_cluster "$TEST_TMP/demo")" "the demo stopped by SIGTERM"
assert_eq "gone" "$([ -e "$TEST_TMP/demo" ] && echo there || echo gone)" "its directory (cluster, inputs) removed"
assert_contains "$(cat "$TEST_TMP/demo.out")" "demo: removed the cluster's directory $TEST_TMP/demo (KEEP=1 keeps it)" "it says so"
assert_eq "143" "$(demo_until_cluster "$TEST_TMP/demo-kept" KEEP=1)" "KEEP=1: the demo stopped by SIGTERM"
assert_eq "t|0" "$([ -f "$TEST_TMP/demo-kept/data/PG_VERSION" ] && echo t)|$(ps -eo args | grep -c "^[^ ]*postgres -D $TEST_TMP/demo-kept/")" \
    "KEEP=1: the directory kept, its server stopped"
assert_contains "$(cat "$TEST_TMP/demo.out")" "demo: kept the cluster's directory $TEST_TMP/demo-kept (KEEP=1)" "it says where"
rm -rf "$TEST_TMP/demo-kept"
assert_exit 2 "KEEP=yes is not 0 or 1" -- env KEEP=yes DEMO_DIR="$TEST_TMP/demo-bad" "$ROOT/scripts/demo"

test_case "the docs stand alone: no doc cites a file outside the repository, every docs/*.md a doc names exists"
assert_eq "" "$(grep -rnE '\.\./shared|/work/shared' "$ROOT/README.md" "$ROOT/docs")" "no ../shared or /work/shared"
for d in $(grep -rhoE 'docs/[a-z_-]+\.md' "$ROOT/README.md" "$ROOT/docs" | sort -u); do
    [ -f "$ROOT/$d" ] || _t_fail "$d is named but missing"
done
