#!/usr/bin/env python3
"""The markdown table of a bench/bridges.sh run: bench/bridges_report.py DIR."""

import glob
import json
import os
import statistics
import sys

GOALS = {  # source: (events/s into the hub, added p50 ms or None)
    "pg-outbox": (50_000, 2.0),
    "jetstream": (50_000, 2.0),
    "pg-notify": (100_000, None),
    "nats": (100_000, None),
}
ORDER = ["baseline", "pg-outbox", "jetstream", "pg-notify", "nats",
         "redis-pubsub", "redis-stream", "amqp", "mqtt"]


def load(d, source, run):
    try:
        with open(os.path.join(d, f"{source}.{run}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def latency(d, source):
    """Medians over the latency runs (`<source>.latency.json` or `.latency.<rep>.json`):
    (p50, p99, lowest completeness, runs)."""
    runs = []
    for path in sorted(glob.glob(os.path.join(d, f"{source}.latency*.json"))):
        try:
            with open(path) as f:
                runs.append(json.load(f)["delivery"])
        except (OSError, ValueError, KeyError):
            pass
    if not runs:
        return None, None, None, 0
    med = lambda k: statistics.median(r["latency"][k] for r in runs)  # noqa: E731
    return med("p50_ms"), med("p99_ms"), min(r["completeness"] for r in runs), len(runs)


def into_hub(r):
    """Events/s into the hub: the bridge's counter, or for the baseline the POSTs answered."""
    if r is None:
        return None
    b = r.get("bridge")
    if b:
        return b.get("events_per_s")
    return r["publish"].get("achieved_rate")


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def main(d):
    sources = [s for s in ORDER if glob.glob(os.path.join(d, f"{s}.*.json"))]
    b50, b99, _, _ = latency(d, "baseline")
    rate = None
    for path in glob.glob(os.path.join(d, "baseline.latency*.json")):
        with open(path) as f:
            rate = json.load(f)["params"]["rate"]
    out = []
    out.append(f"Latency at {fmt(rate)} events/s (medians of the runs); throughput flat out; "
               "ms; added = minus the baseline (POST /publish) in the same run.\n")
    out.append("| source | ingest, no subscribers: events/s into the hub | 1k subscribers: "
               "events/s into the hub | events/s at each subscriber | delivered | p50 | p99 "
               "| added p50 | added p99 | goal |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for s in sources:
        tput, ing = load(d, s, "throughput"), load(d, s, "ingest")
        p50, p99, lat_done, reps = latency(d, s)
        ing_rate, hub_rate = into_hub(ing), into_hub(tput)
        at_subs = tput["delivery"]["events_per_s"] if tput else None
        done = (f'{tput["delivery"]["completeness"] * 100:.1f} %' if tput else "–")
        if lat_done is not None and lat_done < 1:
            done += f" (a latency run {lat_done * 100:.1f} %)"
        a50 = p50 - b50 if p50 is not None and b50 is not None and s != "baseline" else None
        a99 = p99 - b99 if p99 is not None and b99 is not None and s != "baseline" else None
        goal = "–"
        if s in GOALS:
            want, want50 = GOALS[s]
            best = max(x for x in (ing_rate, hub_rate, 0) if x is not None)
            ok = best >= want and (want50 is None or (a50 is not None and a50 <= want50))
            goal = (f"≥ {want // 1000}k/s" + (f", ≤ {want50:g} ms added p50" if want50 else "")
                    + (": **met**" if ok else ": **not met**"))
        out.append(f"| {s} | {fmt(ing_rate)} | {fmt(hub_rate)} | {fmt(at_subs)} | {done} | "
                   f"{fmt(p50, 2)} | {fmt(p99, 2)} | {fmt(a50, 2)} | {fmt(a99, 2)} | {goal} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
