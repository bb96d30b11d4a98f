# scripts/lib/staging.sh -- the rehearsal's copy of the source: made by CREATE DATABASE ... TEMPLATE
# when the source is idle on the same server, else by pg_dump | pg_restore (make_staging_copy), and
# dropped (drop_staging). Needs util.sh, connections.sh and rehearse's src_dsn, staging_server,
# staging_db, ADMIN_DSN, SRC_DB and work.

# ---------------------------------------------------------------- 1. the staging copy
STAGING_DSN="" COPY_METHOD="" COPY_SECONDS="" staging_made=0 same_server=0

source_is_idle() {   # no client session on the source database but ours (which has ended)
    [ "$(sql "$ADMIN_DSN" -v db="$SRC_DB" <<<"SELECT count(*) FROM pg_stat_activity
            WHERE datname = :'db' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ]
}

copy_by_template() {
    sql "$ADMIN_DSN" -v db="$staging_db" -v src="$SRC_DB" <<<'CREATE DATABASE :"db" TEMPLATE :"src"' 2>"$work/copy.err"
}

copy_by_dump() {   # a new database with the source's encoding and locale, then pg_dump | pg_restore
    local props enc coll ctype restore_opts=(--exit-on-error)
    props=$(sql "$src_dsn" -F $'\x1f' <<<"SELECT pg_encoding_to_char(encoding), datcollate, datctype
                                           FROM pg_database WHERE datname = current_database()") || return 1
    IFS=$'\x1f' read -r enc coll ctype <<<"$props"
    sql "$ADMIN_DSN" -v db="$staging_db" -v enc="$enc" -v coll="$coll" -v ctype="$ctype" \
        <<<"CREATE DATABASE :\"db\" TEMPLATE template0 ENCODING :'enc' LC_COLLATE :'coll' LC_CTYPE :'ctype'" \
        2>"$work/copy.err" || return 1
    staging_made=1
    [ "$same_server" = 1 ] || restore_opts+=(--no-owner --no-acl)   # the roles may not exist there
    pg_dump -Fc "$src_dsn" 2>>"$work/copy.err" | pg_restore "${restore_opts[@]}" -d "$STAGING_DSN" 2>>"$work/copy.err" &&
        sql "$STAGING_DSN" <<<"ANALYZE" 2>>"$work/copy.err"
}

make_staging_copy() {
    local t0
    t0=$(now) same_server=0
    [ -z "$staging_server" ] || [ "$(server_identity "$src_dsn")" = "$(server_identity "$ADMIN_DSN")" ] && same_server=1
    STAGING_DSN=$(dsn_with_db "$ADMIN_DSN" "$staging_db")
    if [ "$same_server" = 1 ] && source_is_idle && copy_by_template; then
        COPY_METHOD="CREATE DATABASE ... TEMPLATE" staging_made=1
    else
        [ "$same_server" = 1 ] && say "the source has other sessions (or TEMPLATE failed): copying with pg_dump | pg_restore"
        COPY_METHOD="pg_dump -Fc | pg_restore"
        copy_by_dump || { say "error: could not copy the source:"; sed 's/^/    /' "$work/copy.err" >&2; return 1; }
    fi
    COPY_SECONDS=$(seconds_since "$t0")
    [ -s "$work/copy.err" ] || rm -f "$work/copy.err"
    say "copied $SRC_DB into $staging_db with $COPY_METHOD in $COPY_SECONDS s"
}

drop_staging() {
    [ "$staging_made" = 1 ] || return 0
    sql "$ADMIN_DSN" -v db="$staging_db" <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE)' && staging_made=0
}
