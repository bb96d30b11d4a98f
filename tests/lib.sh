# tests/lib.sh -- sourced by every tests/tNN_*.sh: test cases, assertions and database
# helpers (fresh databases, queries, schema fingerprints, table checksums) for the private
# cluster that tests/run starts. Results go to $TEST_RESULTS; diagnostics go to stderr.
set -u
: "${TEST_RESULTS:?run tests through tests/run}" "${TEST_TMP:?run tests through tests/run}"
_T_FILE=$(basename "$0") _T_CASE="" _T_FLAG=$TEST_TMP/.case_failed _T_ONEXIT=()

_t_record() { printf '%s\t%s: %s\n' "$1" "$_T_FILE" "$2" >>"$TEST_RESULTS"; }
_t_fail() {   # works from $(...) subshells too: the flag is a file
    printf '%s\n' "$@" | sed 's/^/#   /' >&2
    if [ -n "$_T_CASE" ]; then echo x >>"$_T_FLAG"; else echo "FAIL - (outside a test case) $1"; _t_record fail "(outside a test case) $1"; fi
    return 1
}
test_case() { [ -n "$_T_CASE" ] && end_case; _T_CASE=$1; rm -f "$_T_FLAG"; }
end_case() {
    [ -n "$_T_CASE" ] || return 0
    if [ -s "$_T_FLAG" ]; then echo "FAIL - $_T_CASE"; _t_record fail "$_T_CASE"
    else echo "ok - $_T_CASE"; _t_record pass "$_T_CASE"; fi
    _T_CASE="" ; rm -f "$_T_FLAG"
}
on_exit() { _T_ONEXIT+=("$*"); }   # use instead of `trap ... EXIT` (which would replace lib's)
_t_exit() {
    local rc=$? c
    for c in "${_T_ONEXIT[@]}"; do eval "$c"; done
    [ "$rc" -ne 0 ] && [ -n "$_T_CASE" ] && _t_fail "test file exited with status $rc inside this case"
    end_case
    [ "$rc" -eq 0 ] && grep -q '^fail' "$TEST_RESULTS" && rc=1
    exit "$rc"
}
trap _t_exit EXIT
trap 'exit 130' INT; trap 'exit 129' HUP; trap 'exit 143' TERM   # so _t_exit sees the signal

_t_show() { local s=$1; [ ${#s} -gt 4000 ] && s="...${s: -4000}"; printf '%s' "$s"; }
assert_eq() {
    [ "$1" == "$2" ] && return 0
    if [[ $1 == *$'\n'* || $2 == *$'\n'* ]]; then
        _t_fail "${3:-assert_eq}: values differ (- expected, + actual):" "$(diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | grep '^[<>]' | sed 's/^</-/; s/^>/+/' | head -40)"
    else _t_fail "${3:-assert_eq}: expected '$1', got '$2'"; fi
}
assert_ne() { [ "$1" != "$2" ] || _t_fail "${3:-assert_ne}: both values are '$(_t_show "$1")'"; }
assert_contains() { [[ $1 == *"$2"* ]] || _t_fail "${3:-assert_contains}: '$2' not found in:" "$(_t_show "$1")"; }
assert_not_contains() { [[ $1 != *"$2"* ]] || _t_fail "${3:-assert_not_contains}: '$2' unexpectedly found in:" "$(_t_show "$1")"; }

# run CMD...: sets LAST_OUT, LAST_ERR (trailing newlines stripped) and LAST_RC. Not in $(...).
run() {
    "$@" >"$TEST_TMP/.out" 2>"$TEST_TMP/.err"; LAST_RC=$?
    LAST_OUT=$(<"$TEST_TMP/.out") LAST_ERR=$(<"$TEST_TMP/.err")
}
# assert_exit EXPECTED_CODE MSG -- CMD...
assert_exit() {
    local want=$1 msg=$2; shift 2
    [ "${1:-}" == "--" ] && shift
    run "$@"
    [ "$LAST_RC" == "$want" ] || _t_fail "$msg: expected exit $want, got $LAST_RC from: $*" "stderr tail:" "$(tail -15 <<<"$LAST_ERR")"
}

phase() { local n=$1; shift; "$BIN/phase$n" "$@"; }

_t_psql() {   # _t_psql DB [psql args...]: query output to stdout, fails the case on error
    local db=$1 e=$TEST_TMP/.psql_err.$BASHPID; shift
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" "$@" 2>"$e"
    local rc=$?
    [ "$rc" -eq 0 ] || _t_fail "psql failed (exit $rc) on db '$db': $*" "$(cat "$e")"
    rm -f "$e"; return "$rc"
}
q()  { _t_psql "$1" -c "$2"; }   # q DB SQL
qf() { _t_psql "$1" -f "$2"; }   # qf DB FILE
new_db() {   # new_db NAME: drop (if any) and create an empty database
    printf '%s\n' 'DROP DATABASE IF EXISTS :"n" WITH (FORCE);' 'CREATE DATABASE :"n" TEMPLATE template0;' |
        _t_psql postgres -v n="$1" >/dev/null
}
# wait_for_sql DB SQL EXPECTED [TIMEOUT_S=30]: poll (errors tolerated) until SQL returns EXPECTED
wait_for_sql() {
    local end=$((SECONDS + ${4:-30})) got=""
    while :; do
        got=$(psql -X -A -t -q -d "$1" -c "$2" 2>&1) && [ "$got" == "$3" ] && return 0
        [ "$SECONDS" -ge "$end" ] && break
        sleep 0.2
    done
    _t_fail "wait_for_sql: timed out after ${4:-30}s waiting for '$3' from: $2" "last result: $got"
}

# Everything below ignores schema migration_backup and table public.migration_log.
_T_EXCL="n.nspname IN ('pg_catalog','information_schema','migration_backup') OR n.nspname ~ '^pg_(toast|temp_)'"
# schema_fingerprint DB: sorted, column-order independent description of the user schema.
schema_fingerprint() {
    _t_psql "$1" <<SQL
SET search_path = '';  -- so that definitions come out schema-qualified
WITH rel AS (
  SELECT c.*, quote_ident(n.nspname)||'.'||quote_ident(c.relname) AS qn
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT ($_T_EXCL) AND c.oid IS DISTINCT FROM to_regclass('public.migration_log')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.refobjid = to_regclass('public.migration_log'))
), l(line) AS (
  SELECT 'table '||qn||' kind='||relkind::text||' persistence='||relpersistence::text FROM rel WHERE relkind IN ('r','p','f')
  UNION ALL
  SELECT 'column '||r.qn||'.'||quote_ident(a.attname)||' '||format_type(a.atttypid, a.atttypmod)
         ||CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         ||coalesce(' default '||pg_get_expr(d.adbin, d.adrelid), '')
         ||coalesce(' collate '||quote_ident(co.collname), '')
         ||coalesce(' identity='||nullif(a.attidentity::text, ''), '')||coalesce(' generated='||nullif(a.attgenerated::text, ''), '')
  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
  WHERE r.relkind IN ('r','p','f')
  UNION ALL
  SELECT 'constraint '||r.qn||' '||quote_ident(k.conname)||' '||pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN rel r ON r.oid = k.conrelid
  UNION ALL
  SELECT 'index '||pg_get_indexdef(i.indexrelid)||CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
  FROM pg_index i JOIN rel r ON r.oid = i.indrelid
  UNION ALL
  SELECT 'trigger '||pg_get_triggerdef(t.oid)||' enabled='||t.tgenabled::text
  FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'rule '||r.qn||' '||pg_get_ruledef(w.oid) FROM pg_rewrite w JOIN rel r ON r.oid = w.ev_class WHERE w.rulename <> '_RETURN'
  UNION ALL
  SELECT 'view '||qn||' kind='||relkind::text||' '||pg_get_viewdef(oid) FROM rel WHERE relkind IN ('v','m')
  UNION ALL
  SELECT 'sequence '||r.qn||' '||format_type(s.seqtypid, NULL)||' start='||s.seqstart||' inc='||s.seqincrement
         ||' min='||s.seqmin||' max='||s.seqmax||' cache='||s.seqcache||' cycle='||s.seqcycle
         ||coalesce(' owned_by='||(SELECT o.qn||'.'||quote_ident(a.attname) FROM pg_depend d
              JOIN rel o ON o.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype IN ('a','i') LIMIT 1), '')
  FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid
  UNION ALL
  SELECT 'function '||quote_ident(n.nspname)||'.'||quote_ident(p.proname)||'('||pg_get_function_identity_arguments(p.oid)
         ||') md5='||md5(pg_get_functiondef(p.oid))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE NOT ($_T_EXCL) AND p.prokind IN ('f','p')
)
SELECT x FROM (SELECT regexp_replace(line, '\s+', ' ', 'g') AS x FROM l) s ORDER BY x COLLATE "C";
SQL
}
# schema_dump DB: pg_dump --schema-only without comments, blank lines and \restrict lines (which
# carry a random key); column order shows. Skips migration_backup, migration_log and its sequences.
schema_dump() {
    local out rc ex=(--exclude-schema=migration_backup --exclude-table=public.migration_log) s
    for s in $(_t_psql "$1" -c "SELECT quote_ident(n.nspname)||'.'||quote_ident(c.relname) FROM pg_depend d
               JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND c.relkind = 'S'
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE d.refobjid = to_regclass('public.migration_log')"); do
        ex+=("--exclude-table=$s")
    done
    out=$(pg_dump --schema-only --no-owner "${ex[@]}" "$1" 2>"$TEST_TMP/.dump_err"); rc=$?
    [ "$rc" -eq 0 ] || { _t_fail "pg_dump $1 failed (exit $rc)" "$(cat "$TEST_TMP/.dump_err")"; return "$rc"; }
    grep -v -e '^--' -e '^[[:space:]]*$' -e '^\\\(un\)\?restrict ' <<<"$out"
}
# table_checksums DB: "schema.table rowcount md5" per user table, column-order independent
table_checksums() {
    _t_psql "$1" <<SQL
SELECT format(\$q\$SELECT %L||' '||count(*)||' '||coalesce(md5(string_agg(to_jsonb(t)::text, '' ORDER BY to_jsonb(t)::text COLLATE "C")), md5('')) FROM %I.%I t\$q\$,
              quote_ident(n.nspname)||'.'||quote_ident(c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r','p') AND NOT c.relispartition AND NOT ($_T_EXCL)
  AND c.oid IS DISTINCT FROM to_regclass('public.migration_log')
ORDER BY quote_ident(n.nspname)||'.'||quote_ident(c.relname) COLLATE "C" \gexec
SQL
}
