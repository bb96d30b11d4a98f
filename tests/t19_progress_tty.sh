# t19_progress_tty.sh -- the progress line on a terminal: phase2 apply under script(1) on an
# 80-column pseudo-terminal redraws it in place (carriage return, clear to the end of the
# line) and never draws it wider than the terminal: the table's part goes first, then the
# other parts, until it fits.
source "$(dirname "$0")/lib.sh"

PLAN=$ROOT/plans/clerk-to-firebase.json
must_dirs DATA LOGS

# progress_widths FILE: for each progress line drawn in FILE (a terminal's output, split on
# carriage returns and newlines, ANSI sequences removed), its width in columns
progress_widths() {
    python3 - "$1" <<'PY'
import re, sys
raw = open(sys.argv[1], encoding="utf-8", errors="replace").read()
for seg in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)):
    if re.search(r"\d+ of \d+ rows \(\d+%\)", seg):
        print(len(seg), seg)
PY
}

test_case "the progress line on an 80-column terminal is redrawn in place and never wider than 80 columns"
gen_app tty 3000 t19 "$DATA"
must p1 apply -d tty
cmd="stty cols 80 rows 24; exec '$BIN/phase2' apply --plan '$PLAN' --logs-dir '$LOGS' -d tty"
cmd+=" --mapping '$DATA/firebase-export.json' --jobs 2 --batch-size 25 --sleep-ms 40"
assert_exit 0 "phase2 apply under script(1) at 80 columns" -- timeout 120 script -qec "$cmd" /dev/null
printf '%s' "$LAST_OUT" >"$TEST_TMP/tty.out"
widths=$(progress_widths "$TEST_TMP/tty.out")
seen=$(grep -c . <<<"$widths")
[ "$seen" -ge 2 ] || _t_fail "expected progress lines on the terminal, saw $seen:" "$(tail -c 600 "$TEST_TMP/tty.out" | cat -v)"
wide=$(awk '$1 > 80' <<<"$widths")
assert_eq "" "$wide" "no progress line wider than 80 columns"
assert_contains "$LAST_OUT" $'\r\033[K' "redrawn in place: carriage return, clear to the end of the line"
assert_contains "$widths" "job " "the whole job's part is kept"
assert_eq "0" "$(q tty "select count(*) from migration_log where status <> 'done'")" "migration_log: every step done"
assert_eq "t" "$(q tty "select count(firebase_uid) > 2500 from users")" "the fill ran to its end"

test_case "off a terminal the progress line is a line per update, whole"
gen_app notty 3000 t19 "$DATA"
must p1 apply -d notty
assert_exit 0 "phase2 apply, stderr to a file" -- p2 apply -d notty --mapping "$DATA/firebase-export.json" --jobs 2 --batch-size 25 --sleep-ms 40
assert_not_contains "$LAST_ERR" $'\r' "no carriage return"
assert_contains "$LAST_ERR" "changed, batch size" "the whole line, batch size and all"
