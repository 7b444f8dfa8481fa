#!/usr/bin/env bash
# The latency scenarios with the hub and the generator on separate cores: the hub under
# `taskset -c $HUB_CPU` (default 0), the generator under `taskset -c $GEN_CPU` (default 1), so
# neither queues behind the other. Same generator arguments as run-all.sh's latency10k and
# latency1k. The bare per-event loop runs with --write-times: one line per publish with the
# time from its first to its last write (saved as bare-per-event.<scenario>.<rep>.writes.txt).
#
#   bench/pinned-latency.sh [--peers "ssehub bare-per-event"] [--scenarios "latency10k latency1k"]
#                           [--repeat 3] [--out DIR] [--wait-others SECONDS]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${RUN_DIR:-$REPO/bench/run-pinned}"
source "$REPO/bench/lib.sh"

PEERS="ssehub bare-per-event"
SCENARIOS="latency10k latency1k"
REPEAT=3
WAIT_OTHERS=300
HUB_CPU="${HUB_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --peers) PEERS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --wait-others) WAIT_OTHERS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PEERS=$(store_peers "$PEERS") # ssehub: STORE=both (default), default or memory
OUT="${OUT:-$BENCH_DIR/results/pinned-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT" "$RUN_DIR/bin"

# Private copies of the binaries, and wrappers that pin the served side (exec keeps the pid).
cp "$GEN" "$RUN_DIR/bin/ssehub-bench"
cp "$SSEHUB" "$RUN_DIR/bin/ssehub"
REAL_GEN="$RUN_DIR/bin/ssehub-bench"
for b in ssehub ssehub-bench; do
  printf '#!/bin/sh\nexec taskset -c %s %s "$@"\n' "$HUB_CPU" "$RUN_DIR/bin/$b" >"$RUN_DIR/bin/$b-pinned"
  chmod +x "$RUN_DIR/bin/$b-pinned"
done
SSEHUB="$RUN_DIR/bin/ssehub-pinned"
GEN="$RUN_DIR/bin/ssehub-bench-pinned"
export BARE_ARGS="--write-times"
export SSEHUB_ARGS=""

scenario_args() {
  case "$1" in
    latency10k) SC_ARGS=(-n 10000 -m 100 -r 10 --pub-conns 1 --drain-timeout 60) ;;
    latency1k) SC_ARGS=(-n 1000 -m 100 -r 10 --pub-conns 1) ;;
    *) log "unknown scenario $1"; return 1 ;;
  esac
}
peer_port() { case "$1" in ssehub) echo 27380 ;; ssehub-memory) echo 27385 ;; *) echo 27395 ;; esac; }

{
  echo "# pinned run $(date -u +%FT%TZ) on $(nproc) cores: hub on CPU $HUB_CPU, generator on CPU $GEN_CPU"
  echo "# repo $(cd "$REPO" && git rev-parse --short HEAD); ssehub sha256 $(sha256sum "$RUN_DIR/bin/ssehub" | cut -c1-12)"
} >>"$OUT/run.txt"

k=40
for sc in $SCENARIOS; do
  scenario_args "$sc"
  for rep in $(seq 1 "$REPEAT"); do
    for peer in $PEERS; do
      waited=0
      while ((waited < WAIT_OTHERS)) && pgrep -x ssehub-bench >/dev/null; do sleep 5; waited=$((waited + 5)); done
      {
        echo "== $peer $sc $rep $(date -u +%FT%TZ) (waited ${waited}s for other ssehub-bench; still running: $(pgrep -x ssehub-bench | tr '\n' ' '))"
        uptime
        top -b -n 2 -d 1 -w 160 | awk '/^top -/{n++} n==2' | sed -n '7,13p'
      } >>"$OUT/machine.txt"
      port=$(peer_port "$peer")
      start_peer "$peer" "$port" || { echo "$peer $sc $rep: did not start" >>"$OUT/run.txt"; continue; }
      peer_args "$peer" "$port"
      k=$((k + 1))
      json="$OUT/$peer.$sc.$rep.json"
      cmd=(taskset -c "$GEN_CPU" "$REAL_GEN" fanout "${SC_ARGS[@]}" "${PEER_ARGS[@]}" --src-base "127.$k.0.2" --json "$json")
      echo "$peer $sc $rep: hub $(tr '\0' ' ' <"/proc/$PEER_PID/cmdline") (affinity $(taskset -cp "$PEER_PID" | sed 's/.*: //')); generator ${cmd[*]}" >>"$OUT/run.txt"
      log "$peer / $sc / run $rep (hub on CPU $HUB_CPU, generator on CPU $GEN_CPU)"
      timeout 600 "${cmd[@]}" >/dev/null 2>"$OUT/$peer.$sc.$rep.log" || echo "$peer $sc $rep: generator failed" >>"$OUT/run.txt"
      tail -n 7 "$OUT/$peer.$sc.$rep.log" >&2 || true
      stop_peer
      if [[ $peer == bare* ]]; then cp "$RUN_DIR/$peer/out.log" "$OUT/$peer.$sc.$rep.writes.txt"; fi
    done
  done
done
python3 "$BENCH_DIR/report.py" "$OUT" >"$OUT/results.md"
log "results: $OUT/results.md"
