#!/usr/bin/env python3
"""Table of a bench/cluster/run.sh results directory: medians over repeats per configuration."""
import glob, json, os, re, statistics, sys

d = sys.argv[1]
runs = {}
for f in sorted(glob.glob(os.path.join(d, "*.json"))):
    cfg, rep = os.path.basename(f)[:-5].rsplit(".", 1)
    j = json.load(open(f))
    red = {}
    rf = f[:-5] + ".redis.txt"
    if os.path.exists(rf):
        for line in open(rf):
            m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
            if m and not m.group(1).startswith(("config", "info")):
                red[m.group(1)] = int(m.group(2))
    ev = j["publish"]["ok"] or 1
    def redis_cpu(suffix):
        path = f[:-5] + suffix
        if not os.path.exists(path):
            return None
        vals = dict(re.findall(r"^(used_cpu_(?:sys|user)):([0-9.]+)", open(path).read(), re.M))
        return sum(float(v) for v in vals.values())
    c0, c1 = redis_cpu(".redis-cpu0.txt"), redis_cpu(".redis-cpu1.txt")
    if c0 is None:  # a NATS run: nats-server's CPU in the same format
        c0, c1 = redis_cpu(".engine-cpu0.txt"), redis_cpu(".engine-cpu1.txt")
    by_url = j["delivery"].get("latency_by_sub_url") or []
    p50s = [u["p50_ms"] for u in by_url if u.get("count")]
    runs.setdefault(cfg, []).append({
        "nodes": len(j.get("hub_pids") or []),
        "delivered": j["delivery"]["received"], "expected": j["delivery"]["expected"],
        "dps": j["delivery"]["deliveries_per_s"],
        "p50": j["delivery"]["latency"]["p50_ms"], "p99": j["delivery"]["latency"]["p99_ms"],
        "pub_p50": j["publish"]["request_latency"]["p50_ms"],
        "rate": j["publish"]["achieved_rate"],
        "cpu_m": j["hub"]["cpu_s_per_million_deliveries"],
        "rss": j["hub"]["at_end"]["rss_kib"] / 1024,
        "busy": j["box_busy_cores"],
        "xadd": red.get("xadd", 0) / ev, "xread": red.get("xread", 0) / ev,
        "other": sum(v for k, v in red.items() if k not in ("xadd", "xread")) / ev,
        "all": sum(red.values()) / ev,
        "events": ev,
        "redis_ms": (c1 - c0) * 1000 / ev if c0 is not None and c1 is not None else float("nan"),
        "p50_node0": p50s[0] if p50s else float("nan"),
        "p50_others": max(p50s[1:]) if len(p50s) > 1 else float("nan"),
    })
med = lambda rs, k: statistics.median(r[k] for r in rs)
order = sorted(runs, key=lambda c: (c != "memory", c.startswith("nats"), c))
print(f"Results in {d} (medians over {max(len(v) for v in runs.values())} repeat(s))\n")
print("| config | nodes | delivered (all repeats) | deliveries/s | p50 / p99 ms | p50 ms on node 0 / worst other node | publish answer p50 ms | achieved publish rate /s | hub CPU-s per 1M deliveries (all nodes) | hub RSS MiB (all nodes) | engine (Redis / nats-server) CPU ms per publish | machine busy cores |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for c in order:
    rs = runs[c]
    name = ("1 node, --memory (no engine)" if c == "memory"
            else f"{c[4:]} node(s) + NATS" if c.startswith("nats") else f"{c} node(s) + Redis")
    dl = f"{sum(r['delivered'] for r in rs):,} / {sum(r['expected'] for r in rs):,}"
    print(f"| {name} | {rs[0]['nodes']} | {dl} | {med(rs,'dps'):,.0f} | {med(rs,'p50'):.1f} / {med(rs,'p99'):.1f} | "
          f"{med(rs,'p50_node0'):.1f} / {med(rs,'p50_others'):.1f} | "
          f"{med(rs,'pub_p50'):.2f} | {med(rs,'rate'):.1f} | {med(rs,'cpu_m'):.2f} | {med(rs,'rss'):.1f} | "
          f"{med(rs,'redis_ms'):.3f} | {med(rs,'busy'):.2f} |")
print("\nRedis commands per publish (`info commandstats` after `config resetstat`, whole run incl. connect):\n")
print("| config | XADD | XREAD | other (presence/counts: HSET, EXPIRE, KEYS, HGETALL, MULTI/EXEC, DEL) | total |")
print("|---|---|---|---|---|")
for c in order:
    if c == "memory" or c.startswith("nats"):
        continue
    rs = runs[c]
    print(f"| {c} node(s) | {med(rs,'xadd'):.2f} | {med(rs,'xread'):.2f} | {med(rs,'other'):.2f} | {med(rs,'all'):.2f} |")
if "memory" in runs:
    m = runs["memory"]
    print("\nCluster hop, against one node without an engine (differences of medians; CPU as a ratio):\n")
    for c in order:
        if c == "memory":
            continue
        rs = runs[c]
        base = "nats1" if c.startswith("nats") else "1"
        print(f"- {c} node(s): p50 {med(rs,'p50') - med(m,'p50'):+.1f} ms, p99 {med(rs,'p99') - med(m,'p99'):+.1f} ms, "
              f"publish answer p50 {med(rs,'pub_p50') - med(m,'pub_p50'):+.2f} ms, "
              f"hub CPU per 1M deliveries ×{med(rs,'cpu_m') / max(med(m,'cpu_m'), 1e-9):.2f}"
              + (f" (×{med(rs,'cpu_m') / max(med(runs[base],'cpu_m'), 1e-9):.2f} of 1 node on the same engine)" if base in runs else "")
              + f"; publish answer ×{med(rs,'pub_p50') / max(med(m,'pub_p50'), 1e-9):.2f}")
