#!/usr/bin/env python3
"""The cost-growth tables of a results directory with costN-K runs (bench/run-all.sh
--scenarios "cost1k-1 ..."): per peer, hub CPU-µs per delivery and hub RSS per subscriber,
subscribers down, topics across, medians over the repeats.
Usage: bench/cost_report.py RESULTS_DIR > cost.md"""
import glob
import json
import os
import re
import sys
from collections import defaultdict

from report import med

SUBS = ["1k", "10k", "19k"]
TOPICS = ["1", "10", "100", "10k"]


def main():
    d = sys.argv[1]
    runs = defaultdict(list)  # (peer, subs, topics) -> reports
    for f in sorted(glob.glob(os.path.join(d, "*.cost*.json"))):
        m = re.match(r"(.+)\.cost(\w+)-(\w+)\.(\d+)\.json$", os.path.basename(f))
        if not m:
            continue
        with open(f) as fh:
            runs[(m.group(1), m.group(2), m.group(3))].append(json.load(fh))
    peers = sorted({p for p, _, _ in runs})
    tables = [
        ("hub CPU-µs per delivery", "hub.cpu_s_per_million_deliveries", 2),
        ("hub RSS per subscriber, KiB (after connecting, before publishing)", "hub.rss_per_sub_kib", 2),
        ("publishes/s achieved", "publish.achieved_rate", 0),
        ("publishes/s asked", "publish.target_rate", 0),
        ("publish request p50 ms", "publish.request_latency.p50_ms", 2),
        ("deliveries/s", "delivery.deliveries_per_s", 0),
        ("completeness", "delivery.completeness", 4),
    ]
    out = []
    for peer in peers:
        for title, path, digits in tables:
            out.append(f"**{peer}: {title}** (runs per cell in brackets)")
            out.append("")
            out.append("| subscribers \\ topics | " + " | ".join(TOPICS) + " |")
            out.append("|---|" + "---|" * len(TOPICS))
            for n in SUBS:
                row = [n]
                for k in TOPICS:
                    rs = runs.get((peer, n, k), [])
                    v = med(rs, path)
                    row.append("–" if v is None else f"{v:,.{digits}f} ({len(rs)})")
                out.append("| " + " | ".join(row) + " |")
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
