# t04_install.sh -- make install PREFIX=/usr DESTDIR=<tmp> installs the three binaries, which
# run from there, their man pages (help2man from --help) that man -l renders with every
# environment variable --help lists, each usage form on its own line and one EXIT STATUS
# section, the plans (found by name from any directory) and the docs; run logs default to
# the XDG state directory; make uninstall removes exactly those files.
source "$(dirname "$0")/lib.sh"

DEST=$TEST_TMP/dest
fresh_dir "$DEST"
# the build the suite runs (make check SANITIZE=1 must not be relinked plain halfway)
SAN=""; [ "$(cat "$ROOT/build/mode" 2>/dev/null)" = sanitize ] && SAN=1

test_case "make install DESTDIR: binaries, man pages, plans and docs where a client's go"
assert_exit 0 "make install" -- make -s -C "$ROOT" install SANITIZE="$SAN" PREFIX=/usr DESTDIR="$DEST"
for n in 1 2 3; do
    [ -x "$DEST/usr/bin/phase$n" ] || _t_fail "no executable $DEST/usr/bin/phase$n"
    assert_exit 0 "installed phase$n --version" -- "$DEST/usr/bin/phase$n" --version
    assert_contains "$LAST_OUT" "phase$n (phasemig)" "phase$n --version"
    [ -f "$DEST/usr/share/man/man1/phase$n.1" ] || _t_fail "no man page phase$n.1"
done
for f in plans/clerk-to-firebase.json plans/string-to-uuid.json; do
    cmp -s "$ROOT/$f" "$DEST/usr/share/phasemig/$f" || _t_fail "$f not installed as it is"
done
[ -f "$DEST/usr/share/doc/phasemig/runbook.md" ] || _t_fail "docs/runbook.md not installed"

test_case "man -l renders each page: its name, options, environment and exit status"
for n in 1 2 3; do
    assert_exit 0 "man -l phase$n.1" -- env MANWIDTH=100 man -l -P cat "$DEST/usr/share/man/man1/phase$n.1"
    page=$LAST_OUT
    assert_contains "$page" "PHASE$n(1)" "phase$n.1: the title"
    for want in "--plan=FILE" "--dbname=CONNINFO" "ENVIRONMENT" "DATABASE_URL" "PGPASSFILE" "EXIT STATUS"; do
        assert_contains "$page" "$want" "phase$n.1"
    done
    # every environment variable --help names is in the page (its source: the rendered
    # text may hyphenate a long name at the end of a line)
    src=$(<"$DEST/usr/share/man/man1/phase$n.1")
    for var in $("$ROOT/bin/phase$n" --help | sed -n '/^Environment:/,/^$/p' | grep -oE '\b[A-Z][A-Z_]{3,}\b' | sort -u); do
        assert_contains "$src" "$var" "phase$n.1 lists $var"
    done
done

test_case "man -l at 80 columns: each usage form on a line of its own, one EXIT STATUS section listing 0 to 4"
for n in 1 2 3; do
    page=$(MANWIDTH=80 man -l -P cat "$DEST/usr/share/man/man1/phase$n.1" 2>/dev/null)
    # the usage forms --help lists ("Usage: phaseN ..." and "  or:  phaseN ..."), as the page's SYNOPSIS shows them
    forms=$("$ROOT/bin/phase$n" --help | sed -n 's/^\(Usage:\|  or: \) *\(phase.*\)$/\2/p')
    [ "$(wc -l <<<"$forms")" -ge 4 ] || _t_fail "phase$n --help: expected at least 4 usage forms, got: $forms"
    synopsis=$(sed -n '/^SYNOPSIS$/,/^[A-Z]/{/^ /p}' <<<"$page" | sed 's/^ *//; s/ *$//')
    assert_eq "$forms" "$synopsis" "phase$n.1: SYNOPSIS has each usage form on a line of its own"
    assert_eq "1" "$(grep -c '^EXIT STATUS$' <<<"$page")" "phase$n.1: one EXIT STATUS section"
    assert_not_contains "$page" "Exit status:" "phase$n.1: no exit status subsection left in another section"
    codes=$(sed -n '/^EXIT STATUS$/,/^[a-z]/p' <<<"$page" | grep -oE '^ {7}[0-9] {2,}' | tr -d ' ' | tr '\n' ' ')
    assert_eq "0 1 2 3 4 " "$codes" "phase$n.1: EXIT STATUS lists 0 to 4, each code starting its own paragraph"
    assert_eq "" "$(sed -n '/^EXIT STATUS$/,$p' <<<"$page" | sed 1d | grep -E '^[A-Z]')" "phase$n.1: no other section after EXIT STATUS"
done

test_case "installed binaries: --plan NAME is the installed plan, run logs go to XDG_STATE_HOME/phasemig/DB/PLAN (0700)"
gen_app inst 20 t04 "$TEST_TMP/data"
ELSEWHERE=$TEST_TMP/elsewhere STATE=$TEST_TMP/xdg-state
fresh_dir "$ELSEWHERE"; rm -rf "$STATE"
# from a directory of its own, with no plans/ beside it: the name finds the installed plan
run env -C "$ELSEWHERE" XDG_STATE_HOME="$STATE" "$DEST/usr/bin/phase1" apply --plan string-to-uuid -d inst
[ "$LAST_RC" = 0 ] || _t_fail "installed phase1 apply --plan string-to-uuid: exit $LAST_RC" "$(tail -5 <<<"$LAST_ERR")"
assert_contains "$LAST_ERR" "plan \"string-to-uuid\" ($DEST/usr/share/phasemig/plans/string-to-uuid.json)" "the start line names the installed plan file"
assert_contains "$LAST_ERR" "logs: $STATE/phasemig/inst/string-to-uuid" "the start says where the logs go"
assert_eq "done" "$(q inst "select status from public.migration_log where phase = 1 and operation = 'apply'")" "phase1 applied, recorded in migration_log"
assert_eq "uuid" "$(q inst "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'public.users'::regclass and attname = 'id_uuid'")" "the shadow column was added"
run_id=$(q inst "select run_id from public.migration_log where phase = 1 and operation = 'apply'")
[ -f "$STATE/phasemig/inst/string-to-uuid/$run_id.log" ] || _t_fail "no run log $STATE/phasemig/inst/string-to-uuid/$run_id.log" "$(find "$STATE" 2>&1)"
assert_contains "$(head -n 1 "$STATE/phasemig/inst/string-to-uuid/$run_id.log" 2>&1)" "apply: plan \"string-to-uuid\"" "the run log starts with the start line, said before it had a place"
for d in "$STATE/phasemig" "$STATE/phasemig/inst" "$STATE/phasemig/inst/string-to-uuid"; do
    assert_eq "700" "$(stat -c %a "$d")" "$d is private (0700)"
done
assert_eq "" "$(ls -A "$ELSEWHERE")" "nothing written in the current directory (no ./logs)"
# PHASEMIG_LOGS wins over XDG_STATE_HOME; --logs-dir over both
run env -C "$ELSEWHERE" XDG_STATE_HOME="$STATE" PHASEMIG_LOGS="$TEST_TMP/plogs" "$DEST/usr/bin/phase1" rollback --plan string-to-uuid -d inst
[ "$LAST_RC" = 0 ] || _t_fail "installed phase1 rollback: exit $LAST_RC" "$(tail -5 <<<"$LAST_ERR")"
assert_contains "$LAST_ERR" "logs: $TEST_TMP/plogs" "PHASEMIG_LOGS is the logs directory"
assert_eq "1" "$(ls "$TEST_TMP/plogs"/*.log | wc -l)" "the rollback's log is in PHASEMIG_LOGS"
assert_eq "" "$(col_type inst public.users id_uuid)" "rolled back: the shadow is gone"
# a name no plan has: exit 2 saying where it looked, nothing done
run env -C "$ELSEWHERE" XDG_STATE_HOME="$STATE" "$DEST/usr/bin/phase1" apply --plan no-such-plan -d inst
assert_eq "2" "$LAST_RC" "an unknown plan name exits 2"
assert_contains "$LAST_ERR" "no plan named \"no-such-plan\": looked for $DEST/usr/bin/../share/phasemig/plans/no-such-plan.json" "says where it looked"
assert_eq "1" "$(q inst "select count(*) from public.migration_log where phase = 1 and operation = 'apply'")" "nothing recorded"

test_case "make uninstall removes what install put there, and nothing else"
touch "$DEST/usr/bin/other-tool" || _t_fail "could not create a bystander file"
assert_exit 0 "make uninstall" -- make -s -C "$ROOT" uninstall PREFIX=/usr DESTDIR="$DEST"
left=$(cd "$DEST" && find . -type f | sort)
assert_eq "./usr/bin/other-tool" "$left" "files left under DESTDIR"
