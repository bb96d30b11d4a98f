# scripts/lib/connections.sh -- connection strings for scripts/rehearse: the same server with another
# database (dsn_with_db), which server a string reaches (server_identity), and hide_connections: the
# strings (a password among them) reach psql, pg_dump, pgbench and the phases through a private libpq
# service file, never a command line. Needs util.sh, BIN and ROOT.

conninfo_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//\'/\\\'}"; }
uri_escape() {
    local LC_ALL=C s=$1 c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in [A-Za-z0-9._~-]) printf '%s' "$c" ;; *) printf '%%%02X' "'$c" ;; esac
    done
}
# dsn_with_db CONNINFO DBNAME: the same connection, to database DBNAME (URI, key=value or bare name)
dsn_with_db() {
    local dsn=$1 db=$2 scheme rest query=""
    case $dsn in
        postgres://* | postgresql://*)
            scheme=${dsn%%://*} rest=${dsn#*://}
            if [[ $rest == *\?* ]]; then
                query=$(sed -E 's/(^|&)dbname=[^&]*//; s/^&//' <<<"${rest#*\?}")
                rest=${rest%%\?*}
            fi
            printf '%s://%s/%s%s\n' "$scheme" "${rest%%/*}" "$(uri_escape "$db")" "${query:+?$query}" ;;
        *=*) printf "%s dbname='%s'\n" "$dsn" "$(conninfo_escape "$db")" ;;
        *) printf "dbname='%s'\n" "$(conninfo_escape "$db")" ;;
    esac
}

# ---------------------------------------------------------------- connections
# The connection strings (a password among them) reach psql, pg_dump, pgbench and the phases as
# "service=NAME" through a libpq service file only we can read, removed on exit: never on a command
# line that ps shows. Strings that name a service themselves (services do not nest) are used as given.
SERVICE_FILE=""
hide_connections() {
    local helper=$BIN/service-file var rc
    [ -x "$helper" ] || helper=$ROOT/bin/service-file
    [ -x "$helper" ] || die_usage "$helper not found: run make"
    for var in src_dsn staging_server; do
        [ -n "${!var}" ] || continue
        PHASEMIG_CONNINFO=${!var} "$helper" check >/dev/null; rc=$?
        [ "$rc" = 3 ] && return 0
        [ "$rc" = 0 ] || die_usage "cannot use the connection string of ${var/src_dsn/--dbname}"
    done
    SERVICE_FILE=$(umask 077 && mktemp "${TMPDIR:-/tmp}/phasemig-rehearse-service.XXXXXX") ||
        die_usage "cannot create a temporary file"
    trap 'rm -f "$SERVICE_FILE"' EXIT
    for var in src_dsn staging_server; do
        [ -n "${!var}" ] || continue
        PHASEMIG_CONNINFO=${!var} "$helper" "$var" >>"$SERVICE_FILE" || die_usage "cannot write $SERVICE_FILE"
        printf -v "$var" 'service=%s' "$var"
    done
    export PGSERVICEFILE=$SERVICE_FILE
}

# server_identity DSN: what tells two servers apart (a copy of a cluster keeps its system identifier)
server_identity() {
    sql "$1" <<<"SELECT system_identifier || ' ' || pg_postmaster_start_time() FROM pg_control_system()" 2>/dev/null
}
