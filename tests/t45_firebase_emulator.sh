# t45_firebase_emulator.sh -- (skeleton) Firebase's Auth emulator starts and stops.
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/lib/firebase_emulator.sh"
test_case "install-firebase: present, silent"
must "$ROOT/scripts/install-firebase"
assert_exit 0 "again" -- "$ROOT/scripts/install-firebase"
assert_eq "" "$LAST_OUT$LAST_ERR" "silent"
test_case "emulator starts"
t0=$SECONDS
emulator_start
echo "# started in $((SECONDS - t0)) s" >&2
assert_contains "$(curl -s http://$EMU_HOST/)" '"ready": true'
pid=$_EMU_PID
emulator_stop
sleep 0.5
assert_exit 1 "gone" -- kill -0 -- "-$pid"
