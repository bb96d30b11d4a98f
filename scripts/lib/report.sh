# scripts/lib/report.sh -- the facts of a rehearsal and its reports. What the reports say is in FACT
# (name -> value), REASONS (why it failed, if it did) and RUN_JSON (a record per phase command);
# bin/rehearse-report turns them into REPORT_DIR/rehearsal-PLAN-TS.json and renders that as the
# Markdown report and the lines for stdout. Needs util.sh and rehearse's REPORT, work, md_file,
# json_file, LOAD_ROWS_REMOVED, LOAD_FAILED and load.sh's load_comparison.

declare -A FACT=()
declare -a REASONS=()
fail_because() { REASONS+=("$*"); say "FAILED: $*"; }

# write_facts: FACT, the verdict and the reasons into $work/report.facts, NUL-separated key=value
write_facts() {
    local k
    FACT[passed]=$([ ${#REASONS[@]} -eq 0 ] && echo true || echo false)
    FACT[reasons]=$([ ${#REASONS[@]} -eq 0 ] || printf '%s\n' "${REASONS[@]}")
    FACT[runs_completed]=${#RUN_JSON[@]}
    for k in "${!FACT[@]}"; do printf '%s=%s\0' "$k" "${FACT[$k]}"; done >"$work/report.facts"
}

json_report_file() {
    write_facts && "$REPORT" json "$work/report.facts" "$work/runs.json" >"$json_file.tmp" 2>>"$work/report.err" &&
        mv "$json_file.tmp" "$json_file"
}

write_reports() {
    REPORTED=1
    FACT[load_removed]=$LOAD_ROWS_REMOVED
    # a failure under the load counts against phasemig only beyond what the hold-out (the same load,
    # no phasemig command running) had: more of a kind, or a kind it never had
    if [ "${FACT[with_load]:-}" = true ]; then
        load_comparison >"$work/load-comparison.tsv"
        FACT[load_comparison]=$(<"$work/load-comparison.tsv")
        FACT[load_failed_total]=$LOAD_FAILED FACT[load_attributable]=$LOAD_ATTRIBUTABLE
        if [ "$LOAD_ATTRIBUTABLE" -gt 0 ]; then
            fail_because "$LOAD_ATTRIBUTABLE application transactions failed under the load beyond what the same load had without phasemig (the hold-out): $(load_comparison_text)"
        elif [ "$LOAD_FAILED" -gt 0 ]; then
            say "note: $LOAD_FAILED application transactions failed under the load, no more than and no other kinds than on the hold-out: the workload's own"
        fi
    fi
    FACT[finished_at]=$(date -Is)
    { printf '['; (IFS=,; printf '%s' "${RUN_JSON[*]}"); printf ']\n'; } >"$work/runs.json"
    if json_report_file || { [ ${#REASONS[@]} -eq 0 ] &&
            fail_because "could not build the JSON report (see $work/report.err)" && json_report_file; }; then
        "$REPORT" markdown "$json_file" >"$md_file" 2>>"$work/report.err" || {
            say "error: could not render the Markdown report (see $work/report.err)"
            "$REPORT" short-markdown "$work/report.facts" >"$md_file"
        }
        "$REPORT" summary "$json_file" 2>>"$work/report.err" || short_summary
    else   # the runs could not be read: a short report, without them
        say "error: could not build the full report (see $work/report.err); writing a short one"
        rm -f "$json_file.tmp"
        write_facts
        "$REPORT" short "$work/report.facts" >"$json_file" 2>>"$work/report.err"
        "$REPORT" short-markdown "$work/report.facts" >"$md_file" 2>>"$work/report.err"
        short_summary
    fi
    [ -s "$work/report.err" ] || rm -f "$work/report.err"
    echo "report: $md_file"
    echo "json:   $json_file"
}

# load_comparison_text: the rounds and phases with failures beyond the hold-out, as "apply phase2:
# 55P03=3 (hold-out: none)", from $work/load-comparison.tsv
load_comparison_text() {
    awk -F'\t' '$9 > 0 { printf "%s%s phase%s: %s (hold-out: %s)", n++ ? "; " : "", $1, $2, $4,
        $5 == "" ? "not run" : $8 == "" ? "none" : $8 }' "$work/load-comparison.tsv"
}

# the verdict for stdout when even bin/rehearse-report fails
short_summary() {
    echo "rehearsal of ${FACT[plan]}: FAILED"
    printf '  FAILED: %s\n' "${REASONS[@]}"
}
