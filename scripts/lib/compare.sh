# scripts/lib/compare.sh -- states of the copy and their comparison: snapshot_state records the schema
# (pg_dump --schema-only and a fingerprint), a checksum of every table and, for plans that generate
# uids, a checksum with those masked; compare_states says what differs between two; the tables and
# rows the estimate scales (estimate_tables on the source, estimate_facts on the copy). Needs util.sh,
# dbstate.sh and rehearse's work, STAGING_DSN, src_dsn, PLAN_NAME, PLAN_TABLE_Q, UID_COLUMN,
# CONVERTS_TO_UUID.

# ---------------------------------------------------------------- 2. state snapshots
# snapshot_state NAME: the copy's schema (dump and fingerprint), checksums and, for plans that give
# unmatched rows random uids, the table's checksum with those uids masked: $work/NAME.*
snapshot_state() {
    local name=$1
    schema_dump "$STAGING_DSN" >"$work/$name.schema.sql" &&
        schema_fingerprint "$STAGING_DSN" >"$work/$name.fingerprint" &&
        table_checksums "$STAGING_DSN" >"$work/$name.checksums" &&
        masked_checksum >"$work/$name.masked"
}

# masked_checksum: "GENERATED ROWS MD5" of the plan's table with the uids phase2 generated (origin
# 'generated' in its migration_backup source table) replaced by a marker; nothing for other plans
masked_checksum() {
    [ -n "$UID_COLUMN" ] || return 0
    sql "$STAGING_DSN" -v t="$PLAN_TABLE_Q" -v c="$UID_COLUMN" -v src="$PLAN_NAME:source" <<'SQL'
SELECT to_regclass(format('migration_backup.%I', :'src')) IS NOT NULL AS has_source,
       EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(:'t') AND attname = :'c' AND NOT attisdropped) AS has_uid
\gset
\if :has_source
\if :has_uid
SELECT count(m.g) || ' ' || count(*) || ' ' || coalesce(md5(string_agg(m.x, '' ORDER BY m.x COLLATE "C")), md5(''))
FROM (SELECT (to_jsonb(t) || CASE WHEN g.firebase_uid IS NULL THEN '{}'
                                  ELSE jsonb_build_object(:'c', '(generated)') END)::text AS x, g.firebase_uid AS g
      FROM :t t LEFT JOIN migration_backup.:"src" g ON g.origin = 'generated' AND g.firebase_uid = t.:"c"::text) m;
\endif
\endif
SQL
}

# dump_lines FILE: a schema dump's lines sorted, without the commas ending a column list, the
# indentation, and the "SELECT" opening a view's column list
dump_lines() { sed -e 's/,$//' -e 's/^[[:space:]]*//' -e 's/^SELECT //' "$1" | LC_ALL=C sort; }

# compare_states A B: sets CMP_SCHEMA (true/false), CMP_SCHEMA_LINES (how the schemas differ: the
# fingerprint lines only one has, at most 20), CMP_DUMP (the pg_dump --schema-only outputs: equal,
# column_order when they differ only in the order of lines, i.e. of columns, or different), CMP_TABLES
# (tables whose checksum differs, one a line) and CMP_GENERATED (rows whose only difference is a
# generated uid, when that explains all). A dump that differs beyond column order fails the schema too.
compare_states() {
    local a=$1 b=$2 ga
    CMP_SCHEMA=true CMP_SCHEMA_LINES="" CMP_DUMP=equal CMP_GENERATED=0
    if ! diff "$work/$a.fingerprint" "$work/$b.fingerprint" >"$work/$a-vs-$b.fingerprint.diff"; then
        CMP_SCHEMA=false
        CMP_SCHEMA_LINES=$(sed -n -e "s/^< /only in $a: /p" -e "s/^> /only in $b: /p" "$work/$a-vs-$b.fingerprint.diff" |
                           cut -c1-300 | head -n 20)
    fi
    if ! diff "$work/$a.schema.sql" "$work/$b.schema.sql" >"$work/$a-vs-$b.schema.diff"; then
        # the same lines in another order, a column list's commas and a view's first "SELECT" aside: the
        # tables' columns, and the versioned views' that follow them, come in the table's physical order
        if cmp -s <(dump_lines "$work/$a.schema.sql") <(dump_lines "$work/$b.schema.sql"); then
            CMP_DUMP=column_order
        else
            CMP_DUMP=different
            [ "$CMP_SCHEMA" = false ] ||
                CMP_SCHEMA=false CMP_SCHEMA_LINES="pg_dump --schema-only differs beyond the order of columns: see $a-vs-$b.schema.diff"
        fi
    fi
    diff "$work/$a.checksums" "$work/$b.checksums" >"$work/$a-vs-$b.checksums.diff"
    CMP_TABLES=$(sed -n 's/^[<>] \(.*\) [0-9][0-9]* [0-9a-f]\{32\}$/\1/p' "$work/$a-vs-$b.checksums.diff" | sort -u)
    read -r ga _ <"$work/$a.masked"
    if [ "$CMP_TABLES" = "$PLAN_TABLE_Q" ] && [ -s "$work/$a.masked" ] && [ "${ga:-0}" -gt 0 ] &&
        cmp -s "$work/$a.masked" "$work/$b.masked"; then
        CMP_TABLES="" CMP_GENERATED=$ga
    fi
    [ "$CMP_SCHEMA" = true ] && [ -z "$CMP_TABLES" ]
}

# staging_rows SNAPSHOT [TABLE]: the row count of TABLE (default: the plan's) in a snapshot's checksums
staging_rows() {
    local line t=${2:-$PLAN_TABLE_Q}
    while IFS= read -r line; do
        [ "${line% * *}" = "$t" ] && { line=${line#"$t "}; echo "${line%% *}"; }
    done <"$work/$1.checksums"
}
# estimate_facts: EST_SRC with a fourth field, the rows of each table in the copy at the start
estimate_facts() {
    local t n how
    while IFS=$'\t' read -r t n how; do
        [ -z "$t" ] || printf '%s\t%s\t%s\t%s\n' "$t" "$n" "$how" "$(staging_rows start "$t")"
    done <<<"$EST_SRC"
}

# differences: "the schema (how, at most 3 lines), table a, table b" from the last compare_states
differences() {
    local -a what=() lines=() l
    local out="" sep="" w
    if [ "$CMP_SCHEMA" = false ]; then
        mapfile -t lines <<<"$CMP_SCHEMA_LINES"
        for w in "${lines[@]:0:3}"; do out+="$sep$w" sep="; "; done
        [ ${#lines[@]} -le 3 ] || out+="; and $((${#lines[@]} - 3)) more"
        what+=("the schema ($out)")
    fi
    [ -z "$CMP_TABLES" ] || { mapfile -t l <<<"$CMP_TABLES"; what+=("${l[@]}"); }
    out="" sep=""
    for w in "${what[@]}"; do out+="$sep$w" sep=", "; done
    printf '%s' "$out"
}

# estimate_tables: EST_SRC, a line "TABLE<tab>ROWS<tab>HOW" for every table of the source that the
# plan changes: its table and, for a conversion to uuid, every table whose foreign keys reference it
# (from pg_constraint); the rows by the statistics, count(*) for a table never analyzed
estimate_tables() {
    local t n how
    EST_SRC=""
    while IFS=$'\t' read -r t n; do
        [ -n "$t" ] || continue
        how="pg_class.reltuples"
        [ "$n" -ge 0 ] || { n=$(sql "$src_dsn" <<<"SELECT count(*) FROM $t") how="count(*)"; }
        EST_SRC+="$t"$'\t'"$n"$'\t'"$how"$'\n'
    done < <(sql "$src_dsn" -F $'\t' -v t="$PLAN_TABLE_Q" -v conv="$CONVERTS_TO_UUID" <<'SQL'
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(:'t')
   OR (:'conv' = 'true' AND c.oid IN (SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass(:'t')))
ORDER BY c.oid <> to_regclass(:'t'), 1
SQL
    )
}
