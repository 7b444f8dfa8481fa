#!/usr/bin/env bash
# Publish throughput measured with wrk (an independent generator): ssehub with its default
# durable store (a fresh --data-dir), ssehub --memory and nchan, each in turn, ROUNDS rounds
# interleaved (every round runs each target once, one after the other, so a busy machine
# weighs on all alike). No subscribers. Per run: wrk's publishes/s and latency, the server's
# CPU per publish (utime+stime of it and its children from /proc, before/after), the hub's
# fsyncs and events published (/metrics) and the history it holds afterwards.
#
#   bench/publish-wrk.sh [--rounds 3] [--duration 10] [--conns 64] [--scenarios "single batch"]
#                        [--out DIR] [TARGET...]
#
# TARGET is LABEL[=BINARY]: `nchan`; a label starting with `memory` (ssehub --memory); any
# other label is ssehub with the default durable store. BINARY defaults to
# target/release/ssehub; A/B runs name two builds (`default-before=/tmp/old default`).
# Default targets: default memory nchan.
# Scenarios: `single` (one event a request, a 100-byte payload, --conns connections; nchan
# gets the same 100 bytes on its pub location), `form` = `single`, `json` (the same event as a
# JSON body), `batch` (WRK_BATCH=1000 events a request as a JSON array, --batch-conns
# connections; ssehub only), `ndjson` (the same events as NDJSON).
# Pinning: the server on SERVER_CPUS (default 0), wrk (one thread) on WRK_CPUS (default 1).
# Results: OUT/results.tsv (one line a run), OUT/<label>.<scenario>.<round>.wrk (wrk's
# output), OUT/run.txt (every command), OUT/machine.txt; OUT/summary.md from the medians.
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=3 DURATION=10 CONNS=64 BATCH_CONNS=8 SCENARIOS="single"
OUT="$REPO/bench/results/publish-wrk-$(date -u +%Y%m%dT%H%MZ)"
SERVER_CPUS=${SERVER_CPUS:-0} WRK_CPUS=${WRK_CPUS:-1}
export WRK_BATCH=${WRK_BATCH:-1000}
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --batch-conns) BATCH_CONNS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) break ;;
  esac
done
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(default memory nchan)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
# The hubs' fresh data directories and nginx's files: a temp dir, removed at the end.
RUN_DIR=$(mktemp -d /tmp/publish-wrk-run.XXXXXX)
export RUN_DIR
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
PORT=27590 NCHAN_PORT=27630
# Private copies of the builds (outside OUT, so nothing binary lands in the results), so a
# rebuild of target/release mid-run changes nothing here.
BIN=$(mktemp -d /tmp/publish-wrk-bin.XXXXXX)
trap 'rm -rf "$BIN" "$RUN_DIR"' EXIT

{
  echo "# $(date -u +%FT%TZ) repo $(cd "$REPO" && git rev-parse --short HEAD)"
  echo "uptime: $(uptime)"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "pinning: server on CPU $SERVER_CPUS, wrk (1 thread) on CPU $WRK_CPUS"
  ps -eo pcpu,comm --sort=-pcpu | head -8
} >"$OUT/machine.txt"
for t in "${TARGETS[@]}"; do
  [[ $t == nchan ]] && continue
  label=${t%%=*} bin=$REPO/target/release/ssehub
  [[ $t == *=* ]] && bin=${t#*=}
  cp "$bin" "$BIN/ssehub.$label"
  echo "# $label: $bin, sha256 $(sha256sum "$BIN/ssehub.$label" | cut -c1-12)" >>"$OUT/run.txt"
done

cpu_ticks() { # PID...: utime+stime of the processes, in clock ticks
  local p total=0 t
  for p in "$@"; do
    t=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null) || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

metric() { # NAME: a metric of the hub on PORT, 0 if absent
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2; f=1} END {if (!f) print 0}'
}

start_hub() { # LABEL: the hub's build for LABEL on PORT, pinned; sets PEER_PID, PEER_STOP
  local label=$1 dir="$RUN_DIR/$1" store
  rm -rf "$dir" && mkdir -p "$dir"
  if [[ $label == memory* ]]; then
    store=(--memory --history 100000000)
  else
    # The default store and sync mode; no count or size limit, so the history check can
    # count all (the default 1 GiB size limit trims a long batch run's oldest events).
    store=(--data-dir "$dir/data" --retain-events 0 --retain-bytes 0)
  fi
  HUB_CMD=(taskset -c "$SERVER_CPUS" "$BIN/ssehub.$label" serve --listen "127.0.0.1:$PORT" "${store[@]}")
  setsid "${HUB_CMD[@]}" >"$dir/out.log" 2>&1 &
  PEER_PID=$! PEER_STOP=$!
  wait_port "$PORT" 30 || { log "$label did not open $PORT; see $dir"; stop_peer; return 1; }
}

printf 'label\tscenario\tround\trequests_per_s\tevents_per_s\tcpu_us_per_event\tfsyncs\tevents_published\thistory_events\tnon_2xx\tp50\tp99\tload1\n' >"$OUT/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for sc in $SCENARIOS; do
    for t in "${TARGETS[@]}"; do
      label=${t%%=*}
      body=form conns=$CONNS per=1 path=/publish port=$PORT
      case $sc in
        single | form) ;;
        json) body=json ;;
        batch) body=batch conns=$BATCH_CONNS per=$WRK_BATCH ;;
        ndjson) body=ndjson conns=$BATCH_CONNS per=$WRK_BATCH ;;
        *) log "unknown scenario $sc"; exit 1 ;;
      esac
      if [[ $label == nchan ]]; then
        [[ $sc == single || $sc == form ]] || continue
        body=raw path=/pub/bench port=$NCHAN_PORT
        start_peer nchan "$NCHAN_PORT" || continue
        for p in $(descendants "$PEER_PID"); do taskset -apc "$SERVER_CPUS" "$p" >/dev/null; done
        pids=$(descendants "$PEER_PID")
        HUB_CMD=(nginx -c "$RUN_DIR/nchan/nginx.conf" "(bench/peers/nchan/nginx.conf.in, 2 workers)")
      else
        start_hub "$label" || continue
        pids=$PEER_PID
        f0=$(metric ssehub_store_fsync_seconds_count) e0=$(metric ssehub_events_published_total)
      fi
      load=$(cut -d' ' -f1 /proc/loadavg)
      # shellcheck disable=SC2086 # pids is a word list
      c0=$(cpu_ticks $pids)
      cmd=(taskset -c "$WRK_CPUS" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$REPO/bench/publish-wrk.lua" "http://127.0.0.1:$port$path")
      echo "$label $sc $round (load $(cut -d' ' -f1-3 /proc/loadavg)): WRK_BODY=$body WRK_BATCH=$WRK_BATCH ${cmd[*]}; server: ${HUB_CMD[*]}" >>"$OUT/run.txt"
      WRK_BODY=$body "${cmd[@]}" >"$OUT/$label.$sc.$round.wrk" 2>&1
      # shellcheck disable=SC2086
      c1=$(cpu_ticks $pids)
      w=$OUT/$label.$sc.$round.wrk
      requests=$(awk '/requests in/ {print $1}' "$w")
      secs=$(awk '/requests in/ {sub(/s,/, "", $4); print $4}' "$w")
      non2xx=$(awk '/Non-2xx/ {print $NF}' "$w")
      p50=$(awk '$1 == "50%" {print $2}' "$w") p99=$(awk '$1 == "99%" {print $2}' "$w")
      fsyncs=- published=- history=-
      if [[ $label != nchan ]]; then
        fsyncs=$(($(metric ssehub_store_fsync_seconds_count) - f0))
        published=$(($(metric ssehub_events_published_total) - e0))
        history=$(metric ssehub_history_events)
      else
        # nchan's channel info: "queued messages: N"
        history=$(curl -s "http://127.0.0.1:$port$path" | tr -d '\r' | awk -F': ' '/queued messages/ {print $2}')
      fi
      stop_peer
      awk -v l="$label" -v s="$sc" -v r="$round" -v n="${requests:-0}" -v t="${secs:-1}" -v per="$per" \
        -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v f="$fsyncs" -v e="$published" -v h="${history:-?}" \
        -v x="${non2xx:-0}" -v p50="$p50" -v p99="$p99" -v ld="$load" 'BEGIN {
          ev = n * per
          printf "%s\t%s\t%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l, s, r, n / t, ev / t,
            (ev ? c / hz * 1e6 / ev : 0), f, e, h, x, p50, p99, ld }' >>"$OUT/results.tsv"
      tail -n 1 "$OUT/results.tsv" >&2
    done
  done
done
echo "uptime after: $(uptime)" >>"$OUT/machine.txt"

# Medians over the rounds, and ratios against nchan's single-event figure.
python3 - "$OUT/results.tsv" >"$OUT/summary.md" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = {}
for r in rows:
    groups.setdefault((r["label"], r["scenario"]), []).append(r)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
nchan = {s: med(rs, "requests_per_s") for (l, s), rs in groups.items() if l == "nchan"}
nchan_cpu = {s: med(rs, "cpu_us_per_event") for (l, s), rs in groups.items() if l == "nchan"}
print("| target | scenario | runs | publishes/s (median) | events/s | CPU µs per event | vs nchan (publishes/s) | vs nchan (CPU) | fsyncs per request | history holds every event published |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (l, s), rs in groups.items():
    rps, eps, cpu = med(rs, "requests_per_s"), med(rs, "events_per_s"), med(rs, "cpu_us_per_event")
    ratio = f"{rps / nchan[s]:.2f}×" if s in nchan and l != "nchan" else ""
    cratio = f"{cpu / nchan_cpu[s]:.2f}×" if s in nchan_cpu and l != "nchan" else ""
    fs = ""
    if rs[0]["fsyncs"] != "-":
        reqs = sum(float(r["events_per_s"]) / max(float(r["requests_per_s"]), 1) for r in rs) / len(rs)
        fs = f"{statistics.median(float(r['fsyncs']) / max(float(r['events_published']) / reqs, 1) for r in rs):.2f}"
    if l == "nchan":
        held = "n/a (queued: " + ", ".join(r["history_events"] for r in rs) + ")"
    else:
        held = "yes" if all(r["events_published"] == r["history_events"] for r in rs) else "NO"
    print(f"| {l} | {s} | {len(rs)} | {rps:,.0f} | {eps:,.0f} | {cpu:.2f} | {ratio} | {cratio} | {fs} | {held} |")
EOF
cat "$OUT/summary.md" >&2
