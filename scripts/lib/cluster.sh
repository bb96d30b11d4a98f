# scripts/lib/cluster.sh -- a throwaway PostgreSQL cluster for the demo and the tests: initdb in a
# directory the postgres user can enter, a private socket, no TCP; started and stopped as postgres
# when we are root (initdb refuses root). Source it, then: cluster_start DIR PORT; ...; cluster_stop.

CLUSTER_DIR="" CLUSTER_PORT="" CLUSTER_BINDIR="" _cluster_stopped=1

cluster_bindir() {   # the newest server binaries: pg_config's, else /usr/lib/postgresql/*/bin
    local d
    d=$(pg_config --bindir 2>/dev/null)
    [ -x "$d/initdb" ] || d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$d/initdb" ] && echo "$d"
}

as_pg() {   # run a server program as postgres when we are root
    if [ "$(id -u)" -eq 0 ]; then (cd "$CLUSTER_DIR" && runuser -u postgres -- "$@"); else "$@"; fi
}

# cluster_dir_for PREFERRED: PREFERRED when the postgres user can reach it, else a fresh /tmp dir
cluster_dir_for() {
    mkdir -p "$1" 2>/dev/null
    if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$1" 2>/dev/null; then echo "$1"
    else mktemp -d /tmp/phasemig-cluster.XXXXXX; fi
}

# cluster_init DIR: initdb into DIR/data unless it holds a cluster already (tests/run copies such
# a DIR/data as the template of each test file's cluster); sets CLUSTER_DIR and CLUSTER_BINDIR
cluster_init() {
    CLUSTER_DIR=$1
    CLUSTER_BINDIR=$(cluster_bindir) || { echo "initdb not found: run scripts/install-deps" >&2; return 1; }
    mkdir -p "$CLUSTER_DIR" && chmod 755 "$CLUSTER_DIR" || return 1
    [ "$(id -u)" -eq 0 ] && chown postgres: "$CLUSTER_DIR"
    if [ ! -f "$CLUSTER_DIR/data/PG_VERSION" ]; then
        rm -rf "$CLUSTER_DIR/data"
        as_pg "$CLUSTER_BINDIR/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
            >"$CLUSTER_DIR/initdb.log" 2>&1 ||
        { rm -rf "$CLUSTER_DIR/data"; as_pg "$CLUSTER_BINDIR/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust \
            -E UTF8 --locale=C >>"$CLUSTER_DIR/initdb.log" 2>&1; } ||
        { cat "$CLUSTER_DIR/initdb.log" >&2; return 1; }
    fi
}

# cluster_start DIR PORT [server options]: initdb (if DIR/data is missing) and start; exports PG*
cluster_start() {
    CLUSTER_PORT=$2
    cluster_init "$1" || return 1
    shift 2
    _cluster_stopped=0
    # pg_ctl hands -o to a shell: the socket directory goes in single quotes, its own quotes escaped
    local sockdir="'${CLUSTER_DIR//\'/\'\\\'\'}'"
    as_pg "$CLUSTER_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w \
        -o "-k $sockdir -c listen_addresses='' -p $CLUSTER_PORT $*" start >/dev/null ||
        { tail -20 "$CLUSTER_DIR/server.log" >&2; return 1; }
    for v in $(compgen -e | grep -E '^PG|^DATABASE_URL$'); do unset "$v"; done
    export PGHOST=$CLUSTER_DIR PGPORT=$CLUSTER_PORT PGUSER=postgres PGDATABASE=postgres PGCONNECT_TIMEOUT=10
    export PATH="$CLUSTER_BINDIR:$PATH"
}

# cluster_stop [immediate]: stop the server (fast by default); safe to call twice
cluster_stop() {
    [ "$_cluster_stopped" = 1 ] && return 0
    _cluster_stopped=1
    [ -f "$CLUSTER_DIR/data/postmaster.pid" ] || return 0
    as_pg "$CLUSTER_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m "${1:-fast}" -w stop >/dev/null 2>&1 ||
        as_pg "$CLUSTER_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1
}
