#!/usr/bin/env bash
# How many concurrent subscribers this machine holds across local ssehub nodes sharing one
# Redis, with one publish reaching all of them. Stages of increasing size (default 100k, 250k,
# 500k, 1M); each stage: N = ⌈subs / PER_NODE⌉ fresh nodes, one generator with N subscriber
# processes (process p → node p, its own source addresses 127.60.x.y), one event published to
# node 0, then the generator's completeness count. Stops at the first stage that is incomplete,
# fails, or would not fit in memory (estimated from the previous stage).
#
#   cargo build --release -p ssehub-cli -p ssehub-bench
#   bench/cluster/million.sh
#   STAGES="20000 100000" RAMP=10000 bench/cluster/million.sh
#   STAGES=1000000 RAMP=3000 HUB_ARGS="--heartbeat 60" bench/cluster/million.sh
#
# Results: bench/cluster/results/million-<UTC time>/ (JSON + log per stage, memory samples,
# sysctls, summary.md).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
STAGES=${STAGES:-"100000 250000 500000 1000000"}
PER_NODE=${PER_NODE:-19000}
RAMP=${RAMP:-10000}        # new connections per second over all generator processes
READ_BUF=${READ_BUF:-1024} # generator read buffer per connection
RESERVE_MIB=${RESERVE_MIB:-2048}
OUT=${OUT:-$REPO/bench/cluster/results/million-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
# shellcheck source=bench/cluster/common.sh
. "$REPO/bench/cluster/common.sh"
SAMPLER_PID=""
GEN_PID=""
million_cleanup() {
  [[ -n $GEN_PID ]] && stop_pids "$GEN_PID"
  [[ -n $SAMPLER_PID ]] && stop_pids "$SAMPLER_PID"
  cleanup
}
trap million_cleanup EXIT

mem_avail() { awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo; }
mem_used() { free -m | awk '/Mem:/{print $3}'; }
rss_sum() { # PID... -> MiB
  local p s=0 r
  for p in "$@"; do
    r=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    s=$((s + ${r:-0}))
  done
  echo $((s / 1024))
}

# sampler FILE: every 2 s (at most 30 min) one line: time used_mib avail_mib hub_rss_mib
# gen_rss_mib files_open, while $OUT/.sampling exists.
sampler() {
  local i kids
  for ((i = 0; i < 900; i++)); do
    [[ -e $OUT/.sampling ]] || break
    kids=""
    [[ -n ${GEN_PID_S:-} ]] && kids="$GEN_PID_S $(ps -o pid= --ppid "$GEN_PID_S" 2>/dev/null | tr '\n' ' ' || true)"
    # shellcheck disable=SC2086 # pid lists
    echo "$(date -u +%T) $(mem_used) $(mem_avail) $(rss_sum "${NODE_PIDS[@]}") $(rss_sum $kids) $(cut -f1 /proc/sys/fs/file-nr)"
    sleep 2
  done >"$1"
}

{
  echo "commit: $(git -C "$REPO" rev-parse --short HEAD) (dirty files: $(git -C "$REPO" status --short -uno | wc -l))"
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -r)"
  echo "STAGES=$STAGES PER_NODE=$PER_NODE RAMP=$RAMP READ_BUF=$READ_BUF HUB_ARGS=${HUB_ARGS:-}"
  echo "-- kernel settings (read, not changed)"
  sysctls
} >"$OUT/run.txt"
RPORT=28479
start_redis
echo "redis: redis-server --port $RPORT --save '' --appendonly no --maxclients 10000" >>"$OUT/run.txt"

prev_per_conn_kib=0
for subs in $STAGES; do
  nodes=$(((subs + PER_NODE - 1) / PER_NODE))
  avail=$(mem_avail)
  if ((prev_per_conn_kib > 0)); then
    need=$((subs * prev_per_conn_kib / 1024))
    if ((need + RESERVE_MIB > avail)); then
      log "stage $subs: needs ~$need MiB (at $prev_per_conn_kib KiB/subscriber) + $RESERVE_MIB reserve, $avail MiB available; stopping"
      echo "stage $subs: not run: needs ~$need MiB, $avail MiB available" >>"$OUT/run.txt"
      break
    fi
  fi
  redis-cli -p "$RPORT" del ssehub:events >/dev/null
  used0=$(mem_used)
  start_nodes "$nodes" cluster 28101 || break
  gen_node_args
  wait_quiet
  used1=$(mem_used)
  hub0=$(rss_sum "${NODE_PIDS[@]}")
  name="stage-$subs"
  cmd=("$GEN" fanout -n "$subs" -k 1 -m 1 -r 1 --pub-conns 1 --procs "$nodes" --ramp "$RAMP"
    --read-buf "$READ_BUF" --src-base 127.60.0.2 --per-addr 20000 --connect-timeout 120
    --drain-timeout 120 --label "ssehub-x$nodes" "${GEN_ARGS[@]}" --json "$OUT/$name.json")
  echo "$name: $nodes nodes; ${cmd[*]/#$BINDIR\//target/release/}" | sed -E 's/ --hub-pid [0-9]+//g' >>"$OUT/run.txt"
  log "$name: $nodes nodes, $subs subscribers at $RAMP/s"
  touch "$OUT/.sampling"
  timeout $((subs / RAMP + 600)) "${cmd[@]}" >/dev/null 2>"$OUT/$name.log" &
  GEN_PID=$!
  GEN_PID_S=$(sleep 1; pgrep -P "$GEN_PID" | head -1 || true) # timeout's child: the coordinator
  sampler "$OUT/$name.samples.txt" &
  SAMPLER_PID=$!
  rc=0
  wait "$GEN_PID" || rc=$?
  GEN_PID=""
  rm -f "$OUT/.sampling"
  wait "$SAMPLER_PID" || true
  SAMPLER_PID=""
  {
    echo "$name: generator exit $rc; memory used before nodes ${used0} MiB, after nodes ${used1} MiB, hub RSS before subscribers ${hub0} MiB"
    echo "  peak (time used avail hubRSS genRSS files): $(sort -k2 -n "$OUT/$name.samples.txt" | tail -1)"
    echo "  free -m at the peak sample time is in $name.samples.txt; conntrack now: $(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo absent)"
  } >>"$OUT/run.txt"
  stop_nodes
  sleep 5 # let the kernel free the sockets before the next stage
  python3 - "$OUT/$name.json" "$subs" <<'PY' || { log "$name: incomplete or failed; stopping"; break; }
import json, sys
j = json.load(open(sys.argv[1])); n = int(sys.argv[2])
ok = j["connections"]["live"] == n and j["delivery"]["received"] == n
print(f'{sys.argv[1]}: live {j["connections"]["live"]}/{n}, received {j["delivery"]["received"]}', file=sys.stderr)
sys.exit(0 if ok else 1)
PY
  peak=$(sort -k2 -n "$OUT/$name.samples.txt" | tail -1 | awk '{print $2}')
  procs_peak=$(awk '{s = $4 + $5; if (s > m) m = s} END {print m + 0}' "$OUT/$name.samples.txt")
  # Machine memory per subscriber (others' processes move it too), at least the processes' RSS.
  prev_per_conn_kib=$(((peak - used0) * 1024 / subs + 1))
  floor=$(((procs_peak - hub0) * 1024 / subs + 1))
  ((prev_per_conn_kib < floor)) && prev_per_conn_kib=$floor
  log "$name: complete; ~$prev_per_conn_kib KiB of machine memory per subscriber (hub + generator + kernel)"
done
python3 "$REPO/bench/cluster/million_summary.py" "$OUT" | tee "$OUT/summary.md"
