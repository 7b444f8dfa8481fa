#!/usr/bin/env bash
# Fan-out over HTTP/2 (bench/h2-fanout.js: STREAMS streams over CONNS h2c connections, Node's
# http2 client) and over HTTP/1 (ssehub-bench fanout: STREAMS connections), same hub binary,
# same events, rate and publish connections, alternating, REPEAT times each.
#
#   STREAMS=10000 CONNS=50 EVENTS=100 RATE=100 PUB_CONNS=4 REPEAT=3 [H2_ARGS="--stream-window N"] \
#     bench/h2-vs-h1.sh [OUT]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${RUN_DIR:-$REPO/bench/run-h2}"
source "$REPO/bench/lib.sh"
STREAMS="${STREAMS:-10000}" CONNS="${CONNS:-50}" EVENTS="${EVENTS:-100}" RATE="${RATE:-100}"
PUB_CONNS="${PUB_CONNS:-4}" REPEAT="${REPEAT:-3}" WAIT_OTHERS="${WAIT_OTHERS:-300}"
OUT="${1:-$BENCH_DIR/results/h2-vs-h1-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT" "$RUN_DIR/bin"
cp "$GEN" "$RUN_DIR/bin/ssehub-bench"
cp "$SSEHUB" "$RUN_DIR/bin/ssehub"
GEN="$RUN_DIR/bin/ssehub-bench" SSEHUB="$RUN_DIR/bin/ssehub"
echo "# run $(date -u +%FT%TZ): repo $(cd "$REPO" && git rev-parse --short HEAD), ssehub sha256 $(sha256sum "$SSEHUB" | cut -c1-12), node $(node --version)" >>"$OUT/run.txt"

note_machine() {
  local waited=0
  while ((waited < WAIT_OTHERS)) && pgrep -x ssehub-bench >/dev/null; do sleep 5; waited=$((waited + 5)); done
  {
    echo "== $1 $(date -u +%FT%TZ) (waited ${waited}s for other ssehub-bench; still running: $(pgrep -x ssehub-bench | tr '\n' ' '))"
    uptime
    top -b -n 2 -d 1 -w 160 | awk '/^top -/{n++} n==2' | sed -n '7,13p'
  } >>"$OUT/machine.txt"
}

export SSEHUB_ARGS="--heartbeat 3600"
for rep in $(seq 1 "$REPEAT"); do
  note_machine "h2 $rep"
  # shellcheck disable=SC2086 # H2_ARGS is a word list on purpose
  cmd=(node "$BENCH_DIR/h2-fanout.js" --streams "$STREAMS" --conns "$CONNS" --events "$EVENTS" --rate "$RATE" ${H2_ARGS:-}
    --pub-conns "$PUB_CONNS" --bin "$SSEHUB" --json "$OUT/h2.fanout.$rep.json")
  echo "h2 $rep: ${cmd[*]}" >>"$OUT/run.txt"
  log "h2 / run $rep"
  timeout 600 "${cmd[@]}" >/dev/null 2>"$OUT/h2.fanout.$rep.log" || echo "h2 $rep: failed" >>"$OUT/run.txt"

  note_machine "h1 $rep"
  start_peer ssehub-memory 27480 # --memory, as the HTTP/2 side (h2-fanout.js) starts it
  peer_args ssehub-memory 27480
  cmd=("$GEN" fanout -n "$STREAMS" -m "$EVENTS" -r "$RATE" --pub-conns "$PUB_CONNS" --drain-timeout 120
    "${PEER_ARGS[@]}" --src-base "127.$((60 + rep)).0.2" --json "$OUT/h1.fanout.$rep.json")
  echo "h1 $rep: hub $(tr '\0' ' ' <"/proc/$PEER_PID/cmdline"); generator ${cmd[*]}" >>"$OUT/run.txt"
  log "h1 / run $rep"
  timeout 600 "${cmd[@]}" >/dev/null 2>"$OUT/h1.fanout.$rep.log" || echo "h1 $rep: failed" >>"$OUT/run.txt"
  stop_peer
done
log "results: $OUT"
