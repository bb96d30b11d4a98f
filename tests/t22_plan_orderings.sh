# t22_plan_orderings.sh -- every plan phasemig accepts rolls back from every phase: each shipped
# plan and generated variants of them (operations reordered, removed, an index added) walked
# through apply and rollback of each phase, the schema fingerprint and the checksums compared
# after EACH rollback with those of the phase it returns to; the variants phasemig refuses are
# refused before anything is created, and agree with an independent reading of the order rules;
# plans with duplicates or operations out of order are refused (exit 2) naming both operations.
source "$(dirname "$0")/lib.sh"

CLERK=$ROOT/plans/clerk-to-firebase.json UUIDP=$ROOT/plans/string-to-uuid.json
must_dirs DATA LOGS PLANS
gen_app t22_app 150 t22 "$DATA"   # the template every walk copies
RANDOM=22                         # the generated variants are the same on every run

copy_db() { printf '%s\n' 'DROP DATABASE IF EXISTS :"n" WITH (FORCE);' 'CREATE DATABASE :"n" TEMPLATE t22_app;' |
    _t_psql postgres -v n="$1" >/dev/null; }
drop_db() { printf '%s\n' 'DROP DATABASE IF EXISTS :"n" WITH (FORCE);' | _t_psql postgres -v n="$1" >/dev/null; }
has_backfill() { grep -Eq '"op": ?"backfill_from_mapping"' "$1"; }
# ph N SUB DB PLAN: phase N's SUB of PLAN on DB (phase2 apply of a plan with a backfill gets the export)
ph() {
    local n=$1 sub=$2 db=$3 plan=$4 extra=()
    [ "$n$sub" = 2apply ] && has_backfill "$plan" && extra=(--mapping "$DATA/firebase-export.json" --generate-missing)
    phase "$n" "$sub" --plan "$plan" --logs-dir "$LOGS" -d "$db" "${extra[@]}"
}
# step WANT N SUB DB PLAN WHAT: one phase run that must exit WANT; false (and the case fails) otherwise
step() {
    local want=$1; shift
    assert_exit "$want" "$5: phase$1 $2" -- ph "$1" "$2" "$3" "$4" && return 0
    return 1
}
# same DB STATE WHAT: the database's schema fingerprint and checksums are STATE
same() { assert_eq "$2" "$(db_state "$1")" "$3"; }

# walk DB PLAN WANT3 WHAT: apply 1, rollback 1; apply 1,2, rollback 2,1; apply 1,2,3, rollback 3,2,1;
# apply 1,2,3 again; the state after each rollback is the state of the phase it returns to, and each
# apply again gives the state that apply gave the first time. WANT3 is phase3 apply's exit: 3 when
# the variant leaves NULLs where a set_not_null wants values (a pre-flight matter: then phase3 must
# change nothing and the walk goes on from phase2).
walk() {
    local db=$1 plan=$2 want3=$3 w=$4 s0 s1 s2 s3
    s0=$(db_state "$db")
    step 0 1 apply "$db" "$plan" "$w" || return
    s1=$(db_state "$db")
    step 0 1 rollback "$db" "$plan" "$w" || return
    same "$db" "$s0" "$w: after phase1 rollback, the start"
    step 0 1 apply "$db" "$plan" "$w" || return
    same "$db" "$s1" "$w: phase1 apply again gives phase1's state"
    step 0 2 apply "$db" "$plan" "$w" || return
    s2=$(db_state "$db")
    step 0 2 rollback "$db" "$plan" "$w" || return
    same "$db" "$s1" "$w: after phase2 rollback, phase1's state"
    step 0 1 rollback "$db" "$plan" "$w" || return
    same "$db" "$s0" "$w: after phase2 and phase1 rollback, the start"
    for n in 1 2; do step 0 $n apply "$db" "$plan" "$w" || return; done
    same "$db" "$s2" "$w: phase1 and phase2 apply again give phase2's state"
    step "$want3" 3 apply "$db" "$plan" "$w" || return
    if [ "$want3" = 3 ]; then
        same "$db" "$s2" "$w: phase3 refused by its pre-flight changed nothing"
    else
        s3=$(db_state "$db")
        step 0 3 rollback "$db" "$plan" "$w" || return
        same "$db" "$s2" "$w: after phase3 rollback, phase2's state"
    fi
    step 0 2 rollback "$db" "$plan" "$w" || return
    same "$db" "$s1" "$w: after phase3 and phase2 rollback, phase1's state"
    step 0 1 rollback "$db" "$plan" "$w" || return
    same "$db" "$s0" "$w: after rollback 3, 2, 1, the start"
    [ "$want3" = 3 ] && return
    for n in 1 2 3; do step 0 $n apply "$db" "$plan" "$w" || return; done
    same "$db" "$s3" "$w: apply 1, 2, 3 again gives phase3's state"
}

# oracle PLAN: what phase1 apply and phase3 apply should exit with ("P1 P3"), read independently of
# phasemig from the plan's JSON and the template's catalog: 2 when an operation touches a column
# before the add_column that adds it or after the drop_column that drops it, or a column neither
# the table nor the plan has; phase3 3 when a set_not_null names a column the plan adds and no
# backfill fills (NULL everywhere)
oracle() {
    _t_psql t22_app -v plan="$(cat "$1")" <<'SQL'
WITH ops AS (SELECT o, ord FROM jsonb_array_elements(:'plan'::jsonb->'operations') WITH ORDINALITY x(o, ord)),
touch AS (
  SELECT ord, o->>'op' AS op, c FROM ops CROSS JOIN LATERAL (
    SELECT o->>'column' UNION ALL SELECT jsonb_array_elements_text(coalesce(o->'columns', '[]'))
    UNION ALL SELECT o->>'match_column' UNION ALL SELECT o->>'email_column'
    UNION ALL SELECT jsonb_object_keys(coalesce(o->'set', '{}'))) t(c)
  WHERE c IS NOT NULL),
bad_order AS (SELECT 1 FROM touch a JOIN touch b USING (c) WHERE a.ord <> b.ord
  AND ((a.op = 'add_column' AND b.ord < a.ord) OR (a.op = 'drop_column' AND b.ord > a.ord))),
missing AS (SELECT 1 FROM touch t WHERE NOT EXISTS (SELECT 1 FROM touch a WHERE a.op = 'add_column' AND a.c = t.c)
  AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = t.c AND NOT attisdropped)),
unfilled AS (SELECT 1 FROM ops n WHERE n.o->>'op' = 'set_not_null'
  AND EXISTS (SELECT 1 FROM ops a WHERE a.o->>'op' = 'add_column' AND a.o->>'column' = n.o->>'column')
  AND NOT EXISTS (SELECT 1 FROM ops f WHERE f.o->>'op' = 'backfill_from_mapping' AND f.o->'set' ? (n.o->>'column')))
SELECT CASE WHEN EXISTS (SELECT 1 FROM bad_order) OR EXISTS (SELECT 1 FROM missing) THEN 2 ELSE 0 END
       || ' ' || CASE WHEN EXISTS (SELECT 1 FROM unfilled) THEN 3 ELSE 0 END
SQL
}
# variant SRC OUT ORDER: OUT is plan SRC with its operations in ORDER (0-based indexes, space separated)
variant() {
    must_write "$2" _t_psql t22_app -v plan="$(cat "$1")" -v ord="$3" <<<"
      select jsonb_pretty(jsonb_set(:'plan'::jsonb, '{operations}', (select jsonb_agg((:'plan'::jsonb->'operations')->(i::int) order by k)
         from unnest(string_to_array(:'ord', ' ')) with ordinality u(i, k))))"
}
# with_op SRC OUT POS OP: OUT is plan SRC with operation OP (JSON) inserted at position POS
with_op() {
    must_write "$2" _t_psql t22_app -v plan="$(cat "$1")" -v pos="$3" -v op="$4" <<<"
      select jsonb_pretty(jsonb_insert(:'plan'::jsonb, array['operations', :'pos'], :'op'::jsonb))"
}
n_ops() { _t_psql t22_app -v plan="$(cat "$1")" <<<"select jsonb_array_length(:'plan'::jsonb->'operations')"; }

test_case "each shipped plan rolls back from every phase to that phase's schema fingerprint and checksums"
for plan in "$ROOT"/plans/*.json; do
    copy_db t22_walk
    want=$(oracle "$plan")
    walk t22_walk "$plan" "${want#* }" "$(basename "$plan")"
done
drop_db t22_walk

test_case "phase1 accepts exactly the generated variants an independent reading of the order rules accepts; a refusal creates nothing"
# The generated variants: CANDIDATES holds "file" lines; each is judged by the oracle and by phase1,
# which must agree; those phase1 accepts are walked.
CANDIDATES=()
add_candidate() { CANDIDATES+=("$1"); }
# reorderings of the Clerk plan: its order with 1 to 6 random swaps of neighbours
n=$(n_ops "$CLERK")
for v in $(seq 1 24); do
    ord=($(seq 0 $((n - 1))))
    swaps=$((1 + RANDOM % 6))   # RANDOM in the test's own shell: a subshell's is not seeded
    for ((s = 0; s < swaps; s++)); do
        i=$((RANDOM % (n - 1))); t=${ord[$i]}; ord[$i]=${ord[$((i + 1))]}; ord[$((i + 1))]=$t
    done
    variant "$CLERK" "$PLANS/reorder-$v.json" "${ord[*]}"
    add_candidate "$PLANS/reorder-$v.json"
done
# the Clerk plan without one of its operations, each in turn
for k in $(seq 0 $((n - 1))); do
    variant "$CLERK" "$PLANS/without-$k.json" "$(seq 0 $((n - 1)) | grep -vx "$k" | tr '\n' ' ' | sed 's/ $//')"
    add_candidate "$PLANS/without-$k.json"
done
# an index on another column (duplicating none of the plan's), at random places of each plan
for v in 1 2 3; do
    with_op "$CLERK" "$PLANS/clerk-index-$v.json" $((RANDOM % (n + 1))) \
      '{"op": "create_index", "name": "users_display_name_idx", "columns": ["display_name"]}'
    add_candidate "$PLANS/clerk-index-$v.json"
done
for pos in 0 1; do
    with_op "$UUIDP" "$PLANS/uuid-index-$pos.json" "$pos" '{"op": "create_index", "name": "users_email_lower_idx", "columns": ["email"]}'
    add_candidate "$PLANS/uuid-index-$pos.json"
    with_op "$UUIDP" "$PLANS/uuid-notnull-$pos.json" "$pos" '{"op": "set_not_null", "column": "email"}'
    add_candidate "$PLANS/uuid-notnull-$pos.json"
done

copy_db t22_refusals
start=$(db_state t22_refusals)
ACCEPTED=() n_refused=0
declare -A seen
for f in "${CANDIDATES[@]}"; do
    sum=$(grep -v '"comment"' "$f" | md5sum | cut -c1-32)
    [ -n "${seen[$sum]:-}" ] && continue   # swaps that cancel out give a plan already seen
    seen[$sum]=1
    want=$(oracle "$f")
    run phase 1 apply --plan "$f" --logs-dir "$LOGS" -d t22_refusals --dry-run
    if [ "${want% *}" = 0 ]; then
        assert_eq 0 "$LAST_RC" "$(basename "$f") is valid (oracle): phase1 apply --dry-run accepts it; stderr: $(tail -3 <<<"$LAST_ERR")"
        ACCEPTED+=("$f ${want#* }")
    else
        assert_eq 2 "$LAST_RC" "$(basename "$f") is invalid (oracle): phase1 refuses it with exit 2"
        assert_exit 2 "$(basename "$f"): phase1 apply refuses it" -- phase 1 apply --plan "$f" --logs-dir "$LOGS" -d t22_refusals
        [[ $LAST_ERR =~ operations\[[0-9]+\]|step\ [0-9]+ ]] ||
            _t_fail "$(basename "$f"): the refusal names the operations by position:" "$LAST_ERR"
        n_refused=$((n_refused + 1))
    fi
done
same t22_refusals "$start" "the refused variants created nothing"
assert_eq "" "$(q t22_refusals "select to_regclass('public.migration_log')")" "not even migration_log"
echo "# $((${#ACCEPTED[@]} + n_refused)) distinct variants: ${#ACCEPTED[@]} accepted, $n_refused refused" >&2
[ "${#ACCEPTED[@]}" -ge 8 ] || _t_fail "the generator gave only ${#ACCEPTED[@]} valid variants"
[ "$n_refused" -ge 5 ] || _t_fail "the generator gave only $n_refused invalid variants"
drop_db t22_refusals

test_case "accepted variants, two of each kind, roll back from every phase to that phase's schema fingerprint and checksums"
# every accepted variant would take minutes: the first two of each kind (reorder, without,
# clerk-index, uuid-index, uuid-notnull) in the order they were generated
declare -A walked
for a in "${ACCEPTED[@]}"; do
    f=${a% *} kind=$(basename "${a% *}" .json); kind=${kind%-*}
    [ "${walked[$kind]:-0}" -ge 2 ] && continue
    walked[$kind]=$((${walked[$kind]:-0} + 1))
    copy_db t22_walk
    walk t22_walk "$f" "${a#* }" "$(basename "$f")"
done
echo "# walked: $(for k in "${!walked[@]}"; do printf '%s=%s ' "$k" "${walked[$k]}"; done)" >&2
drop_db t22_walk

test_case "plans with an operation twice, out of order or at odds with another over a column: exit 2 naming both, nothing created"
copy_db t22_bad
start=$(db_state t22_bad)
# bad NAME SRC ORDER EXTRA_POS EXTRA_OP EXPECTED...: plan SRC in ORDER, with EXTRA_OP inserted at EXTRA_POS
# (none when empty), must be refused before anything is created with a message holding each EXPECTED
bad() {
    local name=$1 src=$2 ord=$3 pos=$4 op=$5 e f=$PLANS/bad-$1.json; shift 5
    variant "$src" "$f" "$ord"
    [ -n "$op" ] && with_op "$f" "$f" "$pos" "$op"
    assert_exit 2 "$name: phase1 apply" -- phase 1 apply --plan "$f" --logs-dir "$LOGS" -d t22_bad
    for e in "$@"; do assert_contains "$LAST_ERR" "$e" "$name: the message"; done
    assert_exit 2 "$name: phase1 plan, without a database" -- phase 1 plan --plan "$f"
    assert_exit 2 "$name: phase3 rollback" -- phase 3 rollback --plan "$f" --logs-dir "$LOGS" -d t22_bad
}
all=$(seq 0 11 | tr '\n' ' ' | sed 's/ $//')
backfill=$(_t_psql t22_app -v plan="$(cat "$CLERK")" <<<"select (:'plan'::jsonb->'operations'->7)::text")
bad dup-backfill "$CLERK" "$all" 8 "$backfill" \
    'operations[8] (backfill_from_mapping firebase_uid) repeats operations[7] (backfill_from_mapping firebase_uid)'
bad drop-first "$CLERK" "11 0 1 2 3 4 5 6 7 8 9 10" "" "" \
    'operations[8] (backfill_from_mapping firebase_uid) reads column "clerk_user_id" after operations[0] (drop_column clerk_user_id) drops it'
bad drop-before-backfill "$CLERK" "0 1 2 3 4 5 6 11 7 8 9 10" "" "" \
    'operations[8] (backfill_from_mapping firebase_uid) reads column "clerk_user_id" after operations[7] (drop_column clerk_user_id) drops it'
bad second-backfill "$CLERK" "$all" 8 \
    '{"op": "backfill_from_mapping", "match_column": "email", "set": {"display_name": "localId"}}' \
    'operations[7] (backfill_from_mapping firebase_uid) and operations[8] (backfill_from_mapping display_name): a plan has one backfill_from_mapping'
bad drop-added "$CLERK" "$all" 12 '{"op": "drop_column", "column": "photo_url"}' \
    'operations[12] (drop_column photo_url) drops column "photo_url", which operations[2] (add_column photo_url) adds'
bad index-before-add "$CLERK" "6 0 1 2 3 4 5 7 8 9 10 11" "" "" \
    'operations[0] (create_index users_firebase_uid_idx) reads column "firebase_uid" before operations[1] (add_column firebase_uid) adds it'
bad same-name "$CLERK" "$all" 7 '{"op": "create_index", "name": "users_firebase_uid_key", "columns": ["email"]}' \
    'operations[7] (create_index users_firebase_uid_key) and operations[10] (add_unique users_firebase_uid_key) both create "users_firebase_uid_key"'
bad drop-key "$UUIDP" "0" 1 '{"op": "drop_column", "column": "id"}' \
    'operations[1] (drop_column id) drops column "id", the plan'"'"'s key'
bad uuid-twice "$UUIDP" "0 0" "" "" 'operations[1] (convert_to_uuid id) repeats operations[0] (convert_to_uuid id)'
bad shadow-added "$UUIDP" "0" 0 '{"op": "add_column", "column": "id_uuid", "type": "uuid"}' \
    'operations[0] (add_column id_uuid) and operations[1] (convert_to_uuid id) both add column "id_uuid"'
same t22_bad "$start" "nothing was created by any of them"
assert_eq "" "$(q t22_bad "select to_regclass('public.migration_log')")" "not even migration_log"
drop_db t22_bad
