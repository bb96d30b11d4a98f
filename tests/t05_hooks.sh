# t05_hooks.sh -- --hook CMD (and PHASEMIG_HOOK): CMD gets one JSON event at the start and at
# the end of every run (done, bad_input, refused, failed), with the run id migration_log
# has and the database (socket or host, port, name, user); a hook that fails, or never reads
# its event, changes nothing of the run's outcome; the sample scripts/hooks/chat-webhook posts
# the event, naming the database, with curl.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS
EVENTS=$TEST_TMP/events.jsonl
HOOK="cat >> '$EVENTS'"
gen_app hooks 300 t05 "$DATA"
# events EXPECTED_COUNT: the events recorded so far, each parsed by the server's json type
events() {
    local n
    n=$(wc -l <"$EVENTS")
    q hooks "drop table if exists ev; create table ev (n serial, line text)" >/dev/null
    q hooks "\\copy ev (line) from '$EVENTS' with (format csv, quote e'\\x01', delimiter e'\\x02')" >/dev/null
    q hooks "select string_agg(concat_ws('|', line::json->>'event', line::json->>'subcommand', line::json->>'phase',
             line::json->>'status', line::json->>'exit_code'), ' ' order by n) from ev"
    [ "$n" = "$1" ] || _t_fail "expected $1 events, got $n"
}

test_case "a successful run: start and end (done) events, valid JSON, with the run id migration_log has"
: >"$EVENTS"
assert_exit 0 "phase1 apply --hook" -- p1 apply -d hooks --hook "$HOOK"
assert_eq "start|apply|1|running end|apply|1|done|0" "$(events 2)" "the events"
run_id=$(q hooks "select run_id from migration_log where phase = 1 and operation = 'apply'")
assert_eq "2" "$(grep -c "\"run_id\":\"$run_id\"" "$EVENTS")" "both events carry the run's id"
assert_contains "$(head -n 1 "$EVENTS")" '"plan":"clerk-to-firebase"' "the plan"
assert_eq "hooks|$PGPORT|$PGHOST|$PGUSER hooks|$PGPORT|$PGHOST|$PGUSER" "$(q hooks "select string_agg(concat_ws('|',
  line::json->'database'->>'name', line::json->'database'->>'port', line::json->'database'->>'host',
  line::json->'database'->>'user'), ' ' order by n) from ev")" "every event names the database: name, port, socket, user"

test_case "refused, bad input and failed runs end with their status and reason; PHASEMIG_HOOK is the default"
: >"$EVENTS"
export PHASEMIG_HOOK=$HOOK
assert_exit 2 "phase3 apply before phase2" -- p3 apply -d hooks
must p2 apply -d hooks --mapping "$DATA/firebase-export.json"
assert_exit 3 "phase3 check with rows lacking a uid" -- p3 check -d hooks
assert_exit 1 "phase2 apply on an unreachable server" -- p2 apply -d host=/nonexistent --mapping x.json
unset PHASEMIG_HOOK
assert_eq "start|apply|3|running end|apply|3|bad_input|2 start|apply|2|running end|apply|2|done|0 start|check|3|running end|check|3|refused|3 end|apply|2|failed|1" \
    "$(events 7)" "the events"
assert_contains "$(tail -n 1 "$EVENTS")" "could not connect" "the failed run's reason"
assert_eq "hooks hooks hooks hooks hooks hooks null" "$(q hooks "select string_agg(coalesce(line::json->'database'->>'name',
  json_typeof(line::json->'database')), ' ' order by n) from ev")" "the database in every event; null when never reached"
assert_contains "$(sed -n 6p "$EVENTS")" '"message":"' "the refused run's reason"

test_case "a hook that fails, or never reads its event, leaves the run's outcome as it is"
assert_exit 0 "phase2 apply with a failing hook" -- p2 apply -d hooks --mapping "$DATA/firebase-export.json" --hook "exit 7"
assert_contains "$LAST_ERR" "the hook failed (exit status 7); the run's outcome is unchanged" "logged"
assert_eq "done" "$(q hooks "select status from migration_log where phase = 2 and operation = 'apply' order by id desc limit 1")" \
    "migration_log"
assert_exit 3 "phase3 check with a hook that closes its input" -- p3 check -d hooks --hook "exec 0<&-; exit 0"
assert_exit 0 "phase2 status takes no lock: no hook" -- p2 status -d hooks --hook "exit 9"
assert_not_contains "$LAST_ERR" "hook" "status runs no hook"

test_case "scripts/hooks/chat-webhook posts the event as a chat message with curl"
must_dirs SHIMS
must_write "$SHIMS/curl" printf '%s\n' '#!/usr/bin/env bash' 'printf "%s\n" "$@" > "$CURL_ARGS"'
must chmod +x "$SHIMS/curl"
export CURL_ARGS=$TEST_TMP/curl.args
assert_exit 3 "phase3 check (refused) with the chat hook" -- env PATH="$SHIMS:$PATH" \
    CHAT_WEBHOOK_URL=https://chat.example/hook CURL_ARGS="$CURL_ARGS" \
    "$BIN/phase3" check --plan "$PLAN" --logs-dir "$LOGS" -d hooks --hook "$ROOT/scripts/hooks/chat-webhook"
args=$(<"$CURL_ARGS")
assert_contains "$args" "https://chat.example/hook" "posted to the webhook"
payload=$(grep '^{"text"' <<<"$args")
assert_contains "$payload" "phasemig clerk-to-firebase: phase3 check end: refused (database \\\"hooks\\\" on $PGHOST port $PGPORT)" \
    "the summary line names the database"
assert_eq "t" "$(q hooks "select (\$j\$$payload\$j\$::json->>'text') like '%\"run_id\":%'")" "a JSON body holding the event"
