# t02_layers.sh -- the layers of common/ (common/README.md): no file includes a header of a
# layer above its own, and the checker does catch one that does (on a copy of the tree).
source "$(dirname "$0")/lib.sh"

test_case "no include in common/ goes up a layer (core < engine < ops)"
out=$("$ROOT/scripts/check-layers" 2>&1) || _t_fail "scripts/check-layers failed:" "$out"

test_case "scripts/check-layers fails on a core file that includes the engine"
copy=$TEST_TMP/layers
mkdir -p "$copy/scripts" "$copy/common" || _t_fail "could not make $copy"
cp "$ROOT/scripts/check-layers" "$copy/scripts/" && cp -r "$ROOT/common/." "$copy/common/" \
    || _t_fail "could not copy the tree to $copy"
printf '#include "engine/run.h"\n' >>"$copy/common/core/strbuf.c"
if out=$("$copy/scripts/check-layers" 2>&1); then
    _t_fail "it passed: $out"
else
    assert_contains "$out" 'common/core/strbuf.c' "the checker's message"
fi
