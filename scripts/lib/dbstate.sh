# scripts/lib/dbstate.sh -- what "the database is as it was" means to phasemig: a column-order
# independent schema fingerprint, a filtered schema dump and per-table checksums. Shared by the
# tests, the demo and the rehearsal. Everything ignores migration_backup and public.migration_log.

# Callers may redefine these two (tests/lib.sh records failures through them).
dbstate_psql() { local db=$1; shift; psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
dbstate_fail() { echo "dbstate: $*" >&2; }

DBSTATE_EXCL="n.nspname IN ('pg_catalog','information_schema','migration_backup') OR n.nspname ~ '^pg_(toast|temp_)'"
# schema_fingerprint DB: sorted, column-order independent description of the user schema.
schema_fingerprint() {
    dbstate_psql "$1" <<SQL
SET search_path = '';  -- so that definitions come out schema-qualified
WITH rel AS (
  SELECT c.*, quote_ident(n.nspname)||'.'||quote_ident(c.relname) AS qn
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT ($DBSTATE_EXCL) AND c.oid IS DISTINCT FROM to_regclass('public.migration_log')
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
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE NOT ($DBSTATE_EXCL) AND p.prokind IN ('f','p')
)
SELECT x FROM (SELECT regexp_replace(line, '\s+', ' ', 'g') AS x FROM l) s ORDER BY x COLLATE "C";
SQL
}
# schema_dump DB: pg_dump --schema-only without comments, blank lines and \restrict lines (which
# carry a random key); column order shows. Skips migration_backup, migration_log and its sequences.
schema_dump() {
    local out rc ex=(--exclude-schema=migration_backup --exclude-table=public.migration_log) s
    for s in $(dbstate_psql "$1" -c "SELECT quote_ident(n.nspname)||'.'||quote_ident(c.relname) FROM pg_depend d
               JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND c.relkind = 'S'
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE d.refobjid = to_regclass('public.migration_log')"); do
        ex+=("--exclude-table=$s")
    done
    out=$(pg_dump --schema-only --no-owner "${ex[@]}" "$1"); rc=$?
    [ "$rc" -eq 0 ] || { dbstate_fail "pg_dump $1 failed (exit $rc)"; return "$rc"; }
    grep -v -e '^--' -e '^[[:space:]]*$' -e '^\\\(un\)\?restrict ' <<<"$out"
}
# table_checksums DB: "schema.table rowcount md5" per user table, column-order independent
table_checksums() {
    dbstate_psql "$1" <<SQL
SELECT format(\$q\$SELECT %L||' '||count(*)||' '||coalesce(md5(string_agg(to_jsonb(t)::text, '' ORDER BY to_jsonb(t)::text COLLATE "C")), md5('')) FROM %I.%I t\$q\$,
              quote_ident(n.nspname)||'.'||quote_ident(c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r','p') AND NOT c.relispartition AND NOT ($DBSTATE_EXCL)
  AND c.oid IS DISTINCT FROM to_regclass('public.migration_log')
ORDER BY quote_ident(n.nspname)||'.'||quote_ident(c.relname) COLLATE "C" \gexec
SQL
}
