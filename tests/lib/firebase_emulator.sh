# tests/lib/firebase_emulator.sh -- Firebase's own Auth emulator for a test file, started and
# stopped like the file's PostgreSQL cluster. Source it after tests/lib.sh, then:
#   emulator_start          the Auth emulator of firebase-tools (build/node, scripts/install-firebase)
#                           in the background, offline, no login, project demo-phasemig; returns
#                           once it answers; stopped (its whole process group) on the file's exit
#   emulator_stop           stops it earlier (safe to call twice)
#   emulator_reset          deletes every account of the project
#   emu_node SCRIPT ARGS... runs a Node script with the Admin SDK pointed at the emulator
#   emu_import_logged DB OUT
#                           imports each file phase2's last apply on DB wrote, by the command it
#                           logged (migration_log's import_files), as the operator runs it
# Sets EMU_HOST (127.0.0.1:PORT, what FIREBASE_AUTH_EMULATOR_HOST takes) and EMU_PROJECT.
#
# Ports: tests/run runs files in parallel, each on TEST_PORT plus its slot, so the emulator's three
# ports (auth, hub, logging; no UI) come from TEST_PORT's last digit: FIREBASE_EMULATOR_PORT_BASE
# (9400) + 3 * digit, + 1, + 2 -- distinct for up to 10 files at once, pinned in a firebase.json
# written in the file's temporary directory, so no emulator ever picks a port of its own.

EMU_PROJECT=demo-phasemig EMU_HOST="" _EMU_PID="" _EMU_DIR=""
FIREBASE_BIN=$ROOT/build/node/node_modules/.bin/firebase

# 1. Ports and the configuration the emulator reads.
_emu_ports() {
    local base=${FIREBASE_EMULATOR_PORT_BASE:-9400} digit=$((TEST_PORT % 10))
    EMU_AUTH_PORT=$((base + 3 * digit)) EMU_HUB_PORT=$((base + 3 * digit + 1)) EMU_LOG_PORT=$((base + 3 * digit + 2))
}
_emu_config() {
    cat >"$_EMU_DIR/firebase.json" <<EOF
{"emulators": {
  "singleProjectMode": true,
  "auth": {"host": "127.0.0.1", "port": $EMU_AUTH_PORT},
  "hub": {"host": "127.0.0.1", "port": $EMU_HUB_PORT},
  "logging": {"host": "127.0.0.1", "port": $EMU_LOG_PORT},
  "ui": {"enabled": false}
}}
EOF
}
# _emu_port_free PORT: nothing listens on 127.0.0.1:PORT (bash's /dev/tcp: a refused connection)
_emu_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 2. Start: refuses clearly when the tools are missing or a port is taken, rather than letting
# the emulator fall back on another port or the test reach another file's emulator.
emulator_start() {
    local p end
    [ -x "$FIREBASE_BIN" ] || setup_failed "firebase-tools is not installed under build/node: run scripts/install-firebase"
    _emu_ports
    for p in "$EMU_AUTH_PORT" "$EMU_HUB_PORT" "$EMU_LOG_PORT"; do
        _emu_port_free "$p" || setup_failed "emulator_start: port $p is taken (FIREBASE_EMULATOR_PORT_BASE, TEST_PORT)"
    done
    _EMU_DIR=$TEST_TMP/firebase-emulator
    must mkdir -p "$_EMU_DIR/home"
    _emu_config
    EMU_HOST=127.0.0.1:$EMU_AUTH_PORT
    # Its own HOME (the CLI keeps a configstore there: never the real one, never another file's);
    # CI=1 skips the CLI's network fetch of its message of the day; no update check.
    # set -m: its own process group (the CLI and a watchdog), so that the stop reaches every
    # process it started. The watchdog stops the CLI when the test file is gone however it ended:
    # tests/run kills a file it stops with SIGKILL 0.2 s after SIGTERM, often before the file's
    # exit trap has run, and that kill never reaches another process group.
    local file_pid=$$
    set -m
    (
        cd "$_EMU_DIR" || exit 1
        env HOME="$_EMU_DIR/home" XDG_CONFIG_HOME="$_EMU_DIR/home/.config" CI=1 NO_UPDATE_NOTIFIER=1 \
            "$FIREBASE_BIN" emulators:start --only auth --project "$EMU_PROJECT" >"$_EMU_DIR/emulator.log" 2>&1 </dev/null &
        cli=$!
        while kill -0 "$file_pid" 2>/dev/null && kill -0 "$cli" 2>/dev/null; do sleep 0.5; done
        kill -TERM "$cli" 2>/dev/null; wait "$cli"
    ) &
    _EMU_PID=$!
    set +m
    on_exit emulator_stop
    # 3. Ready when the auth emulator answers its root path (a JSON with "ready": true).
    end=$((SECONDS + ${EMULATOR_START_TIMEOUT:-90}))
    until curl -sf "http://$EMU_HOST/" 2>/dev/null | grep -q '"ready": *true'; do
        if ! kill -0 "$_EMU_PID" 2>/dev/null; then   # (the watchdog ends with the CLI)
            setup_failed "the Auth emulator exited while starting" "its log (tail):" "$(tail -15 "$_EMU_DIR/emulator.log")"
        fi
        [ "$SECONDS" -lt "$end" ] ||
            setup_failed "the Auth emulator did not answer on $EMU_HOST within ${EMULATOR_START_TIMEOUT:-90}s" \
                "its log (tail):" "$(tail -15 "$_EMU_DIR/emulator.log")"
        sleep 0.3
    done
}

# 4. Stop: SIGTERM to the process group (the CLI shuts the emulator down cleanly), then SIGKILL
# after 5 s for anything left.
emulator_stop() {
    [ -n "$_EMU_PID" ] || return 0
    local pid=$_EMU_PID _
    _EMU_PID=""
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# emulator_reset: every account of the project deleted (the emulator's own endpoint)
emulator_reset() {
    curl -sf -X DELETE "http://$EMU_HOST/emulator/v1/projects/$EMU_PROJECT/accounts" >/dev/null ||
        _t_fail "emulator_reset: could not clear the accounts of $EMU_PROJECT"
}

# emu_node SCRIPT ARGS...: node with build/node's modules, the Admin SDK on the emulator
emu_node() {
    NODE_PATH=$ROOT/build/node/node_modules FIREBASE_AUTH_EMULATOR_HOST=$EMU_HOST GCLOUD_PROJECT=$EMU_PROJECT \
        HOME=$_EMU_DIR/home node "$@"
}

# emu_import_logged DB OUT (made afresh): the import files of phase2's last backfill on DB, as migration_log's
# metadata import_files lists them ({file, group, users, command}), each imported into an empty
# project by its own command run as the operator runs it: the logged shell command evaluated, in a
# shell where `firebase auth:import` is tests/apps/firebase/import_check.js (so the quoting, and the
# `$(node -p ...)` that reads SCRYPT's key from the --firebase-scrypt-params file, are the
# shell's, never the test's). Writes under OUT: GROUP.json (the accounts read back after that
# file's import), GROUP.err (the checker's stderr), GROUP.cmd (the command), and for the files
# together expected.json (every file's users) and accounts.json (every account read back).
# Prints "GROUP EXIT USERS" per file, by group (USERS: import_files' count).
_emu_files_sql="select x->>'group', x->>'users', x->>'command', x->>'file' from migration_log m,
    jsonb_array_elements(m.metadata->'import_files') x
    where m.id = (select max(id) from migration_log where phase = 2 and metadata ? 'import_files') order by 1"
# shellcheck disable=SC2317  # (firebase is called by the eval)
emu_import_logged() {
    local db=$1 out=$2 grp users cmd file rc files=() accounts=()
    rm -rf "$out" && mkdir -p "$out" || return 1
    while IFS=$'\t' read -r grp users cmd file; do
        emulator_reset
        printf '%s\n' "$cmd" >"$out/$grp.cmd"
        (
            firebase() {
                [ "$1" = auth:import ] || { echo "not firebase auth:import: $1" >&2; return 2; }
                shift
                emu_node "$ROOT/tests/apps/firebase/import_check.js" "$@" --out "$out/$grp.json"
            }
            eval "$cmd"
        ) 2>"$out/$grp.err"
        rc=$?
        echo "$grp $rc $users"
        files+=("$file")
        [ -f "$out/$grp.json" ] && accounts+=("$out/$grp.json")
    done < <(_t_psql "$db" -F $'\t' -c "$_emu_files_sql")
    # (jq -s with no file would read stdin: an empty list instead)
    jq -s '{users: [.[].users[]]}' "${files[@]}" </dev/null >"$out/expected.json"
    jq -s '{users: [.[].users[]]}' "${accounts[@]}" </dev/null >"$out/accounts.json"
}
