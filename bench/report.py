#!/usr/bin/env python3
"""Turn a results directory of ssehub-bench JSON files (<peer>.<scenario>.<rep>.json) into
markdown tables, one per scenario, peers side by side, medians over repeats, with ratios to
ssehub. Usage: bench/report.py RESULTS_DIR > results.md"""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict

ORDER = ["ssehub", "ssehub-memory", "bare", "bare-per-event", "node-express", "better-sse", "nchan", "pushpin"]


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def med(runs, path):
    vals = [get(r, path) for r in runs]
    vals = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(vals) if vals else None


def allof(runs, path):
    vals = [get(r, path) for r in runs]
    return all(v is True for v in vals) if vals else None


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or digits == 0 or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(v, base):
    if v is None or base in (None, 0):
        return "–"
    return f"{v / base:.2f}×"


# Per mode: columns as (header, json path, digits, ratio?). Ratios are peer ÷ ssehub.
COLUMNS = {
    "idle": [
        ("held / requested", None, 0, False),
        ("RSS per conn KiB", "hub.rss_per_conn_kib", 2, True),
        ("PSS per conn KiB", "hub.pss_per_conn_kib", 2, False),
        ("hub RSS MiB after hold", "hub.after_hold.rss_kib", 1, False),
        ("hub CPU-s connect", "hub.cpu_s_connect", 2, False),
        ("hub CPU-s hold", "hub.cpu_s_hold", 2, False),
        ("connect s", "connections.connect_s", 1, False),
    ],
    "fanout": [
        ("subs live", "connections.live", 0, False),
        ("publish msg/s (target)", None, 1, False),
        ("delivered / expected", None, 0, False),
        ("deliveries/s", "delivery.deliveries_per_s", 0, True),
        ("p50 ms", "delivery.latency.p50_ms", 2, False),
        ("p90 ms", "delivery.latency.p90_ms", 2, False),
        ("p99 ms", "delivery.latency.p99_ms", 2, True),
        ("max ms", "delivery.latency.max_ms", 1, False),
        ("hub CPU-s / 1M deliveries", "hub.cpu_s_per_million_deliveries", 2, True),
        ("hub RSS per sub KiB", "hub.rss_per_sub_kib", 2, True),
        ("hub cores", "hub.cores", 2, False),
        ("generator cores", "generator.cores", 2, False),
        ("box busy cores", "box_busy_cores", 2, False),
        ("others' cores", "derived.others_cores", 2, False),
    ],
    "publish": [
        ("subs", "connections.live", 0, False),
        ("publishes/s", "publish.achieved_rate", 0, True),
        ("request p50 ms", "publish.request_latency.p50_ms", 2, False),
        ("request p99 ms", "publish.request_latency.p99_ms", 2, False),
        ("hub CPU-s / 1M publishes", "hub.cpu_s_per_million_publishes", 1, True),
        ("delivered / expected", None, 0, False),
        ("deliveries/s", "delivery.deliveries_per_s", 0, True),
        ("hub cores", "hub.cores", 2, False),
    ],
    "replay": [
        ("preload msg/s", "publish.achieved_rate", 0, False),
        ("received / expected", None, 0, False),
        ("complete", "replay.complete", 0, False),
        ("first event s", "replay.first_event_s", 3, False),
        ("all received s", "replay.all_received_s", 3, True),
        ("events/s", "replay.events_per_s", 0, True),
        ("history RSS MiB", "hub.history_rss_kib", 1, False),
        ("hub CPU-s replay", "hub.cpu_s_replay", 2, False),
    ],
    "storm": [
        ("clients", "clients", 0, False),
        ("reconnected / failed", None, 0, False),
        ("all live s", "reconnect.all_live_s", 3, True),
        ("caught up", "reconnect.caught_up", 0, False),
        ("caught up s", "reconnect.caught_up_s", 3, False),
        ("missed events", "reconnect.missing", 0, False),
        ("dups", "reconnect.dups", 0, False),
        ("hub CPU-s", "hub.cpu_s_storm", 2, False),
    ],
}


def cell(mode, header, path, digits, runs):
    if header == "held / requested":
        return f"{fmt(med(runs, 'connections.held_at_end'))} / {fmt(med(runs, 'connections.requested'))}"
    if header == "publish msg/s (target)":
        return f"{fmt(med(runs, 'publish.achieved_rate'), 1)} ({fmt(med(runs, 'publish.target_rate'), 0)})"
    if header in ("delivered / expected",):
        if get(runs[0], "delivery") is None:
            return "–"
        return f"{fmt(med(runs, 'delivery.received'))} / {fmt(med(runs, 'delivery.expected'))}"
    if header == "received / expected":
        return f"{fmt(med(runs, 'replay.received'))} / {fmt(med(runs, 'replay.expected'))}"
    if header == "reconnected / failed":
        return f"{fmt(med(runs, 'reconnect.live'))} / {fmt(med(runs, 'reconnect.failed'))}"
    if header in ("caught up", "complete"):
        return fmt(allof(runs, path))
    v = med(runs, path)
    if path and path.endswith("rss_kib") and "MiB" in header and v is not None:
        v = v / 1024
    return fmt(v, digits)


def main():
    d = sys.argv[1]
    runs = defaultdict(lambda: defaultdict(list))
    scen_order = []
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        base = os.path.basename(f)[:-5]
        parts = base.split(".")
        if len(parts) != 3:
            continue
        peer, scen, _rep = parts
        try:
            with open(f) as fh:
                r = json.load(fh)
                # Cores used by neither the hub nor the generator in the window: the noise.
                b, h, g = get(r, "box_busy_cores"), get(r, "hub.cores"), get(r, "generator.cores")
                if all(isinstance(x, (int, float)) for x in (b, h, g)):
                    r["derived"] = {"others_cores": max(0.0, b - h - g)}
                runs[scen][peer].append(r)
        except (OSError, ValueError):
            continue
        if scen not in scen_order:
            scen_order.append(scen)
    out = []
    listed = []
    run_txt = os.path.join(d, "run.txt")
    if os.path.exists(run_txt):
        with open(run_txt) as fh:
            for line in fh:
                if line.startswith("# scenarios:"):
                    for sc in line.split(":", 1)[1].split(",")[0].split():
                        if sc not in listed:
                            listed.append(sc)
    scen_order.sort(key=lambda s: listed.index(s) if s in listed else len(listed))
    run_txt = os.path.join(d, "run.txt")
    if os.path.exists(run_txt):
        with open(run_txt) as fh:
            head = [l.strip() for l in fh if l.startswith("#")]
        out += ["```", *head, "```", ""]
    out.append("Medians over the repeats of each run; ratio columns are peer ÷ ssehub "
               "(for deliveries/s and events/s below 1× means slower than ssehub; for CPU, "
               "memory, latency and time above 1× means more than ssehub).")
    out.append("")
    for scen in scen_order:
        peers = sorted(runs[scen], key=lambda p: ORDER.index(p) if p in ORDER else 99)
        mode = get(runs[scen][peers[0]][0], "mode")
        cols = COLUMNS.get(mode, [])
        nrep = max(len(runs[scen][p]) for p in peers)
        params = get(runs[scen][peers[0]][0], "argv") or []
        out.append(f"### {scen} ({mode}, {nrep} run(s) per peer)")
        out.append("")
        skip = {"--json", "--label", "--hub-pid", "--src-base", "--sub-url", "--pub-url",
                "--pub-body", "--pub-content-type", "--ramp"}
        shown, i = [], 1
        while i < len(params):
            if params[i] in skip:
                i += 2
                continue
            shown.append(params[i])
            i += 1
        out.append(f"Generator: `ssehub-bench {' '.join(shown)}` (+ the peer's URLs and body; "
                   "see run.txt for every exact command)")
        out.append("")
        header = ["peer"]
        for h, _p, _d, r in cols:
            header.append(h)
            if r:
                header.append("÷ ssehub")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        base = runs[scen].get("ssehub")
        for peer in peers:
            rs = runs[scen][peer]
            row = [peer]
            for h, p, dg, r in cols:
                row.append(cell(mode, h, p, dg, rs))
                if r:
                    row.append(ratio(med(rs, p), med(base, p) if base else None))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
