#!/usr/bin/env python3
"""Table of a bench/cluster/million.sh results directory."""
import glob, json, os, re, sys

d = sys.argv[1]
print(f"Results in {d}\n")
print("| subscribers asked | nodes | held (live) | received the one event | connect s | publish → last receive s | hub RSS sum MiB (peak) | generator RSS MiB (peak) | machine memory used MiB (before → peak) | open files, system (peak) |")
print("|---|---|---|---|---|---|---|---|---|---|")
runtxt = open(os.path.join(d, "run.txt")).read() if os.path.exists(os.path.join(d, "run.txt")) else ""
for f in sorted(glob.glob(os.path.join(d, "stage-*.json")), key=lambda f: int(re.findall(r"\d+", os.path.basename(f))[0])):
    n = int(re.findall(r"\d+", os.path.basename(f))[0])
    j = json.load(open(f))
    samples = [l.split() for l in open(f[:-5] + ".samples.txt") if len(l.split()) == 6]
    peak = lambda i: max((int(s[i]) for s in samples), default=0)
    m = re.search(rf"stage-{n}: generator exit \d+; memory used before nodes (\d+)", runtxt)
    before = m.group(1) if m else "?"
    c, dl = j["connections"], j["delivery"]
    print(f"| {n:,} | {len(j.get('hub_pids') or [])} | {c['live']:,} (failed {c['failed']:,}) | {dl['received']:,} ({dl['completeness']*100:.3f} %) | "
          f"{c.get('connect_s', 0):.1f} | {dl['window_s']:.2f} | {peak(3):,} | {peak(4):,} | {before} → {peak(1):,} | {peak(5):,} |")
for f in sorted(glob.glob(os.path.join(d, "stage-*.log"))):
    if not os.path.exists(f[:-4] + ".json"):
        print(f"\n{os.path.basename(f)} (no JSON report): " + " / ".join(open(f).read().strip().splitlines()[-3:]))
