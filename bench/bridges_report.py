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


def runs(d, source, kind):
    """Every run of a kind (`<source>.<kind>.json` or `.<kind>.<rep>.json`) that finished."""
    out = []
    for path in sorted(glob.glob(os.path.join(d, f"{source}.{kind}*.json"))):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass
    return out


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


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


def latency_floor(d, source):
    """Medians over the latency floors (`<source>.latfloor.<rep>.json`, source-floor at the
    latency runs' rate, no hub): (p50, p99, lowest share consumed, runs)."""
    floors = [r for r in runs(d, source, "latfloor") if r.get("latency", {}).get("count")]
    if not floors:
        return None, None, None, 0
    med = lambda k: statistics.median(r["latency"][k] for r in floors)  # noqa: E731
    got = min(r["consumed"] / r["events"] for r in floors if r.get("events"))
    return med("p50_ms"), med("p99_ms"), got, len(floors)


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
    out, counted = [], []
    out.append(f"Latency at {fmt(rate)} events/s; throughput flat out; every figure the median "
               "of its runs; ms; added = minus the baseline (POST /publish) in the same run.\n")
    out.append("| source | ingest, no subscribers: events/s into the hub | floor, no hub: events/s "
               "| ingest / floor | 1k subscribers: events/s into the hub | events/s at each "
               "subscriber | delivered | p50 | p99 | added p50 | added p99 | goal |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in sources:
        tputs, ings = runs(d, s, "throughput"), runs(d, s, "ingest")
        floors = runs(d, s, "floor")
        p50, p99, lat_done, reps = latency(d, s)
        ing_rate = median(into_hub(r) for r in ings)
        hub_rate = median(into_hub(r) for r in tputs)
        floor = median(r.get("consumed_per_s") for r in floors)
        ratio = f"{ing_rate / floor:.2f}" if ing_rate and floor else "–"
        at_subs = median(r["delivery"]["events_per_s"] for r in tputs)
        done = (f'{min(r["delivery"]["completeness"] for r in tputs) * 100:.1f} %'
                if tputs else "–")
        if lat_done is not None and lat_done < 1:
            done += f" (a latency run {lat_done * 100:.1f} %)"
        a50 = p50 - b50 if p50 is not None and b50 is not None and s != "baseline" else None
        a99 = p99 - b99 if p99 is not None and b99 is not None and s != "baseline" else None
        goal = "– (no throughput runs)" if s in GOALS else "–"
        if s in GOALS and (ings or tputs):
            want, want50 = GOALS[s]
            best = max(x for x in (ing_rate, hub_rate, 0) if x is not None)
            ok = best >= want and (want50 is None or (a50 is not None and a50 <= want50))
            goal = (f"≥ {want // 1000}k/s" + (f", ≤ {want50:g} ms added p50" if want50 else "")
                    + (": **met**" if ok else ": **not met**"))
        counts = f"{len(ings)}/{len(tputs)}/{reps}/{len(floors)}"
        out.append(f"| {s} | {fmt(ing_rate)} | {fmt(floor)} | {ratio} | {fmt(hub_rate)} | "
                   f"{fmt(at_subs)} | {done} | {fmt(p50, 2)} | {fmt(p99, 2)} | {fmt(a50, 2)} | "
                   f"{fmt(a99, 2)} | {goal} |")
        counted.append(f"{s} {counts}")
    out.append("\nRuns in each median (ingest/throughput/latency/floor): " + ", ".join(counted) + ".")
    lat_rows = []
    for s in sources:
        f50, f99, got, freps = latency_floor(d, s)
        if not freps:
            continue
        p50, p99, _, reps = latency(d, s)
        sub = lambda a, b: a - b if a is not None and b is not None else None  # noqa: E731
        added, f_added, over = sub(p50, b50), sub(f50, b50), sub(p50, f50)
        goal = "–"
        want50 = GOALS.get(s, (None, None))[1]
        if want50 is not None and over is not None:
            goal = (f"≤ {want50:g} ms over the floor: "
                    + ("**met**" if over <= want50 else f"**not met** (by {over - want50:.2f} ms)"))
        lat_rows.append(
            f"| {s} | {fmt(p50, 2)} | {fmt(p99, 2)} | {fmt(added, 2)} | {fmt(f50, 2)} | "
            f"{fmt(f99, 2)} | {fmt(f_added, 2)} | {fmt(over, 2)} | {fmt(sub(p99, f99), 2)} | "
            f"{got * 100:.1f} % | {reps}/{freps} | {goal} |")
    if lat_rows:
        out.append(f"\nLatency floor: source-floor at the same {fmt(rate)} events/s (the same "
                   "producer, a bare consumer, no hub); ms, medians; POST = the baseline's p50 "
                   f"({fmt(b50, 2)}); bridge − floor = what the bridge and the hub (with its "
                   "1k subscribers) add to what the source itself takes.\n")
        out.append("| source | bridge p50 | bridge p99 | bridge added p50 vs POST | floor p50 | "
                   "floor p99 | floor added p50 vs POST | bridge − floor p50 | "
                   "bridge − floor p99 | floor consumed | runs (bridge/floor) | goal |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        out.extend(lat_rows)
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
