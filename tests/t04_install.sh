# t04_install.sh -- make install PREFIX=/usr DESTDIR=<tmp> installs the three binaries, which
# run from there, their man pages (help2man from --help) that man -l renders with every
# environment variable --help lists, the plans and the docs; make uninstall removes exactly
# those files.
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
    for want in "--plan=FILE" "--dbname=CONNINFO" "ENVIRONMENT" "DATABASE_URL" "PGPASSFILE" "Exit status"; do
        assert_contains "$page" "$want" "phase$n.1"
    done
    # every environment variable --help names is in the page (its source: the rendered
    # text may hyphenate a long name at the end of a line)
    src=$(<"$DEST/usr/share/man/man1/phase$n.1")
    for var in $("$ROOT/bin/phase$n" --help | sed -n '/^Environment:/,/^$/p' | grep -oE '\b[A-Z][A-Z_]{3,}\b' | sort -u); do
        assert_contains "$src" "$var" "phase$n.1 lists $var"
    done
done

test_case "make uninstall removes what install put there, and nothing else"
touch "$DEST/usr/bin/other-tool" || _t_fail "could not create a bystander file"
assert_exit 0 "make uninstall" -- make -s -C "$ROOT" uninstall PREFIX=/usr DESTDIR="$DEST"
left=$(cd "$DEST" && find . -type f | sort)
assert_eq "./usr/bin/other-tool" "$left" "files left under DESTDIR"
