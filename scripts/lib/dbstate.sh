# scripts/lib/dbstate.sh -- what "the database is as it was" means to phasemig: a column-order
# independent schema fingerprint, a filtered schema dump and per-table checksums. Shared by the
# tests, the demo and the rehearsal. Everything ignores migration_backup and public.migration_log.

# Callers may redefine these two (tests/lib.sh records failures through them).
dbstate_psql() { local db=$1; shift; psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
dbstate_fail() { echo "dbstate: $*" >&2; }
# dbstate_redact CONNINFO: the connection string fit to print: a password (key=value or URI, up to
# the URI's last '@', as an unencoded '@' or '/' in it leaves pieces) as ***
dbstate_redact() {
    sed -E -e "s/(^|[[:space:]])password[[:space:]]*=[[:space:]]*('([^'\\\\]|\\\\.)*'|[^[:space:]]*)/\\1password=***/g" \
           -e 's#^([a-z]+://[^:/@?]*):[^?]*@#\1:***@#' -e 's/([?&])password=[^&]*/\1password=***/g' <<<"$1"
}

DBSTATE_EXCL="n.nspname IN ('pg_catalog','information_schema','migration_backup') OR n.nspname ~ '^pg_(toast|temp_)'"
# schema_fingerprint DB: sorted, column-order independent description of the user schema: tables,
# columns, constraints, indexes, triggers, rules, views, sequences, functions, schemas, and what a
# migration could lose without changing a definition: owners, grants (tables, columns, sequences,
# functions, schemas; a NULL ACL as its default), comments, reloptions, replica identity, row level
# security (flags and policies). The views of phasemig's versioned schemas (their schema's comment
# starts "phasemig plan ") are compared in any column order, as the tables they show.
schema_fingerprint() {
    dbstate_psql "$1" <<SQL
SET search_path = '';  -- so that definitions come out schema-qualified
WITH rel AS (
  SELECT c.*, quote_ident(n.nspname)||'.'||quote_ident(c.relname) AS qn
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT ($DBSTATE_EXCL) AND c.oid IS DISTINCT FROM to_regclass('public.migration_log')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.refobjid = to_regclass('public.migration_log'))
), versioned AS (
  SELECT n.oid FROM pg_namespace n WHERE obj_description(n.oid, 'pg_namespace') LIKE 'phasemig plan %'
), l(line) AS (
  SELECT 'table '||qn||' kind='||relkind::text||' persistence='||relpersistence::text FROM rel WHERE relkind IN ('r','p','f')
  UNION ALL
  SELECT 'owner '||qn||' '||quote_ident(pg_get_userbyid(relowner)) FROM rel WHERE relkind IN ('r','p','f','v','m','S')
  UNION ALL
  SELECT 'acl '||qn||' '||(SELECT string_agg(x::text, ',' ORDER BY x::text COLLATE "C")
                           FROM unnest(coalesce(relacl, acldefault(CASE WHEN relkind = 'S' THEN 's' ELSE 'r' END::"char", relowner))) x)
  FROM rel WHERE relkind IN ('r','p','f','v','m','S')
  UNION ALL
  SELECT 'options '||qn||' replica_identity='||relreplident::text||' rls='||relrowsecurity::text
         ||' force_rls='||relforcerowsecurity::text
         ||coalesce(' '||(SELECT string_agg(o, ',' ORDER BY o COLLATE "C") FROM unnest(reloptions) o), '')
  FROM rel WHERE relkind IN ('r','p','f','v','m')
  UNION ALL
  SELECT 'column_acl '||r.qn||'.'||quote_ident(a.attname)||' '||(SELECT string_agg(x::text, ',' ORDER BY x::text COLLATE "C") FROM unnest(a.attacl) x)
  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE r.relkind IN ('r','p','f','v','m') AND cardinality(a.attacl) > 0
  UNION ALL
  SELECT 'column_options '||r.qn||'.'||quote_ident(a.attname)||' '||(SELECT string_agg(o, ',' ORDER BY o COLLATE "C") FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%')
  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE r.relkind IN ('r','p','f','m') AND EXISTS (SELECT 1 FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%')
  UNION ALL
  SELECT 'policy '||r.qn||' '||quote_ident(p.polname)||' cmd='||p.polcmd::text||' permissive='||p.polpermissive::text
         ||' roles='||(SELECT string_agg(x, ',' ORDER BY x COLLATE "C")
                       FROM (SELECT CASE WHEN u = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(u)) END x FROM unnest(p.polroles) u) rl)
         ||coalesce(' using '||pg_get_expr(p.polqual, p.polrelid), '')||coalesce(' check '||pg_get_expr(p.polwithcheck, p.polrelid), '')
  FROM pg_policy p JOIN rel r ON r.oid = p.polrelid
  UNION ALL
  SELECT 'comment '||pg_describe_object(d.classoid, d.objoid, d.objsubid)||': '||d.description
  FROM pg_description d
  WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM rel))
     OR (d.classoid = 'pg_constraint'::regclass AND d.objoid IN (SELECT k.oid FROM pg_constraint k JOIN rel r ON r.oid = k.conrelid))
     OR (d.classoid = 'pg_trigger'::regclass AND d.objoid IN (SELECT t.oid FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid))
     OR (d.classoid = 'pg_policy'::regclass AND d.objoid IN (SELECT p.oid FROM pg_policy p JOIN rel r ON r.oid = p.polrelid))
     OR (d.classoid = 'pg_rewrite'::regclass AND d.objoid IN (SELECT w.oid FROM pg_rewrite w JOIN rel r ON r.oid = w.ev_class))
     OR (d.classoid = 'pg_proc'::regclass AND d.objoid IN (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                                         WHERE NOT ($DBSTATE_EXCL)))
     OR (d.classoid = 'pg_namespace'::regclass AND d.objoid IN (SELECT n.oid FROM pg_namespace n WHERE NOT ($DBSTATE_EXCL)))
  UNION ALL
  SELECT 'schema '||quote_ident(n.nspname)||' owner='||quote_ident(pg_get_userbyid(n.nspowner))||' acl='
         ||(SELECT string_agg(x::text, ',' ORDER BY x::text COLLATE "C") FROM unnest(coalesce(n.nspacl, acldefault('n', n.nspowner))) x)
  FROM pg_namespace n WHERE NOT ($DBSTATE_EXCL)
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
         ||CASE WHEN i.indisreplident THEN ' REPLICA IDENTITY' ELSE '' END||CASE WHEN i.indisclustered THEN ' CLUSTERED' ELSE '' END
  FROM pg_index i JOIN rel r ON r.oid = i.indrelid
  UNION ALL
  SELECT 'trigger '||pg_get_triggerdef(t.oid)||' enabled='||t.tgenabled::text
  FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'rule '||r.qn||' '||pg_get_ruledef(w.oid) FROM pg_rewrite w JOIN rel r ON r.oid = w.ev_class WHERE w.rulename <> '_RETURN'
  UNION ALL
  SELECT 'view '||qn||' kind='||relkind::text||' '||pg_get_viewdef(oid) FROM rel WHERE relkind IN ('v','m')
    AND NOT (relnamespace IN (SELECT oid FROM versioned))
  UNION ALL
  -- a view of phasemig's versioned schemas lists its table's columns in the table's order, which a
  -- finalize rollback changes as it changes the table's: compared, like the table, in any order
  SELECT 'view '||qn||' kind=v '||coalesce('(columns in any order) '||(SELECT string_agg(btrim(e), ', ' ORDER BY btrim(e)
         COLLATE "C") FROM regexp_split_to_table(m[1], ',\s*\n') e)||' FROM '||m[2], pg_get_viewdef(oid))
  FROM rel LEFT JOIN LATERAL regexp_match(pg_get_viewdef(oid), '^\s*SELECT\s+(.*?)\s+FROM\s+(\S+;)\s*$', 's') m ON true
  WHERE relkind = 'v' AND relnamespace IN (SELECT oid FROM versioned)
  UNION ALL
  SELECT 'sequence '||r.qn||' '||format_type(s.seqtypid, NULL)||' start='||s.seqstart||' inc='||s.seqincrement
         ||' min='||s.seqmin||' max='||s.seqmax||' cache='||s.seqcache||' cycle='||s.seqcycle
         ||coalesce(' owned_by='||(SELECT o.qn||'.'||quote_ident(a.attname) FROM pg_depend d
              JOIN rel o ON o.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.deptype IN ('a','i') LIMIT 1), '')
  FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid
  UNION ALL
  SELECT 'function '||quote_ident(n.nspname)||'.'||quote_ident(p.proname)||'('||pg_get_function_identity_arguments(p.oid)
         ||') md5='||md5(pg_get_functiondef(p.oid))||' owner='||quote_ident(pg_get_userbyid(p.proowner))||' acl='
         ||(SELECT string_agg(x::text, ',' ORDER BY x::text COLLATE "C") FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE NOT ($DBSTATE_EXCL) AND p.prokind IN ('f','p')
)
SELECT x FROM (SELECT regexp_replace(line, '\s+', ' ', 'g') AS x FROM l WHERE line IS NOT NULL) s ORDER BY x COLLATE "C";
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
    [ "$rc" -eq 0 ] || { dbstate_fail "pg_dump of $(dbstate_redact "$1") failed (exit $rc)"; return "$rc"; }
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
