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

# json_lines FILE WHAT: every line of FILE is one JSON object (python3's json.loads); fails naming the first that is not
json_lines() {
    python3 - "$1" <<'PY' || _t_fail "$2: a line that is not one JSON object"
import json, sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8", errors="strict"), 1):
    try:
        assert isinstance(json.loads(line), dict)
    except Exception as e:
        sys.exit("line %d is not a JSON object (%s): %r" % (n, e, line[:200]))
PY
}

test_case "--log-format=json with a noisy hook: every line on stdout and stderr is JSON; the hook's output is in the run log, a JSON event per line; progress events every --hook-progress-interval"
gen_app noisy 600 t05 "$DATA"
must p1 apply -d noisy
: >"$EVENTS"
NOISY=$TEST_TMP/noisy-hook
must_write "$NOISY" printf '%s\n' '#!/bin/sh' "cat >> '$EVENTS'" "printf 'ok'" "echo 'noise on stderr' >&2" \
    "printf 'caf\\351 latin-1\\n' >&2"
must chmod +x "$NOISY"
assert_exit 0 "phase2 apply --log-format=json with a noisy hook" -- p2 apply -d noisy --mapping "$DATA/firebase-export.json" \
    --log-format=json --hook "$NOISY" --hook-progress-interval 0.002 --batch-size 20 --sleep-ms 30
printf '%s\n' "$LAST_OUT" | grep -v '^$' >"$TEST_TMP/noisy.out"
printf '%s\n' "$LAST_ERR" >"$TEST_TMP/noisy.err"
json_lines "$TEST_TMP/noisy.out" "stdout"
json_lines "$TEST_TMP/noisy.err" "stderr"
assert_not_contains "$LAST_OUT$LAST_ERR" "noise on stderr" "the hook's output is not on the operator's streams"
noisy_run=$(q noisy "select run_id from migration_log where phase = 2 and operation = 'apply'")
noisy_log=$LOGS/$noisy_run.log
json_lines "$noisy_log" "the run log"
assert_eq "done" "$(q noisy "select status from migration_log where run_id = '$noisy_run' and operation = 'apply'")" "migration_log: done"
# the hook's lines in the run log: "stream: message" each
hook_lines() { python3 -c 'import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("event") == "hook_output": print(o["stream"] + ": " + o["message"])' "$noisy_log"; }
lines=$(hook_lines)
assert_contains "$lines" "stdout: ok" "the hook's stdout in the run log, a line of its own (its last, unended line too)"
assert_contains "$lines" "stderr: noise on stderr" "the hook's stderr in the run log"
assert_contains "$lines" "stderr: caf? latin-1" "a byte that is not UTF-8 becomes ?"
progress=$(grep -c '"event":"progress"' "$EVENTS")
[ "$progress" -ge 1 ] || _t_fail "no progress event reached the hook (events: $(cut -c1-60 "$EVENTS" | tr '\n' ' '))"
assert_eq "t" "$(q noisy "select bool_and((l::json->'figures'->>'rows_done')::bigint > 0 and l::json->>'run_id' = '$noisy_run'
    and l::json->>'subcommand' = 'apply') from regexp_split_to_table(\$e\$$(grep '"event":"progress"' "$EVENTS")\$e\$, E'\\n') l")" \
    "each progress event carries the run and its figures"
assert_eq "start end" "$(grep -v '"event":"progress"' "$EVENTS" | sed -E 's/.*"event":"([a-z]+)".*/\1/' | tr '\n' ' ' | sed 's/ $//')" \
    "the start and end events around them"
: >"$EVENTS"
assert_exit 0 "--hook-progress-interval 0: no progress event" -- p2 apply -d noisy --mapping "$DATA/firebase-export.json" \
    --hook "$HOOK" --hook-progress-interval 0 --batch-size 20 --sleep-ms 5
assert_eq "0" "$(grep -c '"event":"progress"' "$EVENTS")" "none"
assert_exit 2 "--hook-progress-interval that is no number of minutes" -- p2 apply -d noisy --mapping "$DATA/firebase-export.json" \
    --hook "$HOOK" --hook-progress-interval soon
assert_contains "$LAST_ERR" "--hook-progress-interval must be a number of minutes" "says what it takes"

test_case "--log-format=json with scripts/hooks/chat-webhook: curl's response and its errors stay out of the JSON log"
must_dirs SHIMS2
must_write "$SHIMS2/curl" printf '%s\n' '#!/usr/bin/env bash' 'printf ok' 'echo "curl: (22) The requested URL returned error" >&2' 'exit 22'
must chmod +x "$SHIMS2/curl"
assert_exit 3 "phase3 check (refused) with the chat hook and JSON logs" -- env PATH="$SHIMS2:$PATH" \
    CHAT_WEBHOOK_URL=https://chat.example/hook \
    "$BIN/phase3" check --plan "$PLAN" --logs-dir "$LOGS" -d hooks --hook "$ROOT/scripts/hooks/chat-webhook" --log-format=json
printf '%s\n' "$LAST_ERR" >"$TEST_TMP/chat.err"
json_lines "$TEST_TMP/chat.err" "stderr"
assert_not_contains "$LAST_ERR" "ok{" "curl's response is not glued to a log line"
assert_contains "$LAST_ERR" "the hook failed (exit status 22)" "the hook's failure is still said"
chat_run=$(q hooks "select run_id from migration_log where phase = 3 and operation = 'check' order by id desc limit 1")
json_lines "$LOGS/$chat_run.log" "the run log"
assert_eq "2" "$(grep -c '"event":"hook_output","stream":"stdout","message":"ok"' "$LOGS/$chat_run.log")" \
    "curl's response of the start and end events in the run log"
assert_contains "$(cat "$LOGS/$chat_run.log")" '"stream":"stderr","message":"curl: (22) The requested URL returned error"' "curl's error in the run log"
