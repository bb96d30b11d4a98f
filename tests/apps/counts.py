#!/usr/bin/env python3
"""tests/apps/counts.py -- t44's table of the applications' counts, and what is wrong with them.

    counts.py TIMELINE MIN OVERLAP RESULT.json...

TIMELINE: one line per phasemig step, "<step>\\t<app> <app>...": the applications that ran
through that step. Each RESULT.json is the line an application (app.js, app.py) wrote when it
stopped: its statements and failures per step, where "<step>" counts the statements it began
while phasemig's command ran and "after <step>" those of the seconds after it. Prints a table
(statements, and failures by SQLSTATE where there are any, per step and application: during +
after), then one "problem: ..." line for each application that failed a statement or
reconnected, for each application listed for a step that ran fewer than MIN statements in it
(during and after together), and for each listed for a step named in OVERLAP (steps separated
by "|": the ones whose command walks batches for seconds) that ran none while its command ran;
exits 1 when there is a problem.
"""
import json
import sys

timeline_file, minimum, overlap, files = sys.argv[1], int(sys.argv[2]), sys.argv[3].split("|"), sys.argv[4:]
timeline = []
for line in open(timeline_file):
    label, _, apps = line.rstrip("\n").partition("\t")
    timeline.append((label, apps.split()))
results = [json.load(open(f)) for f in files]
by_name = {r["name"]: r for r in results}
problems = []


def counts(r, label):
    for s in r["steps"]:
        if s["step"] == label:
            return s
    return {"statements": 0, "failed": 0, "failures": {}}


def cell(r, label):
    d, a = counts(r, label), counts(r, "after " + label)
    text = f"{d['statements']}+{a['statements']}"
    failed = d["failed"] + a["failed"]
    if failed:
        codes = {}
        for c in (d, a):
            for k, v in c["failures"].items():
                codes[k] = codes.get(k, 0) + v
        text += " FAILED " + ",".join(f"{k}:{v}" for k, v in sorted(codes.items()))
    return text, d["statements"] + a["statements"]


names = [r["name"] for r in results]
labels = [t[0] for t in timeline]
# steps an application counted that the timeline does not list (its start, a held transaction)
for r in results:
    for s in r["steps"]:
        base = s["step"][6:] if s["step"].startswith("after ") else s["step"]
        if base not in labels:
            labels.append(base)
expected = dict(timeline)
width = max(len(label) for label in labels + ["step"])
print(f"{'step':<{width}}  " + "  ".join(f"{n:>22}" for n in names))
for label in labels:
    row = []
    for n in names:
        text, total = cell(by_name[n], label)
        if n in expected.get(label, []) and total < minimum:
            problems.append(f"{n} ran {total} statements in step '{label}' (fewer than {minimum})")
        if n in expected.get(label, []) and label in overlap and counts(by_name[n], label)["statements"] == 0:
            problems.append(f"{n} ran no statement while the command of step '{label}' ran")
        row.append(text if total or n in expected.get(label, []) else "-")
    print(f"{label:<{width}}  " + "  ".join(f"{c:>22}" for c in row))
print(f"{'total':<{width}}  " + "  ".join(f"{by_name[n]['statements']:>22}" for n in names))
print(f"{'failed':<{width}}  " + "  ".join(f"{by_name[n]['failed']:>22}" for n in names))
for label, apps in timeline:
    for n in apps:
        if n not in by_name:
            problems.append(f"{n}, listed for step '{label}', left no result")
for r in results:
    if r["failed"]:
        problems.append(f"{r['name']} ({r['driver']}, {r['version']} version): {r['failed']} failed statements "
                        f"of {r['statements']}: {json.dumps(r['failures'], sort_keys=True)}")
    if r["reconnects"]:
        problems.append(f"{r['name']}: reconnected {r['reconnects']} times")
    if not r["users"]:
        problems.append(f"{r['name']}: no user of its own left at the end")
for p in problems:
    print("problem: " + p)
sys.exit(1 if problems else 0)
