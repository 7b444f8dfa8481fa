#!/usr/bin/env bash
# The Mercure endpoint against the native API, same hub binary, same load, alternating:
# subscribers on /.well-known/mercure?topic=T (form publishes to /.well-known/mercure) beside
# subscribers on /events/T (JSON publishes to /publish), REPEAT times each. No JWT keys are
# set, so neither API checks a token (both take the same path through the auth layer).
# The hub runs with --memory (HUB_PEER=ssehub-memory); HUB_PEER=ssehub runs the default
# durable store instead. The native side is labelled "ssehub" either way (report.py's base).
#
#   REPEAT=3 SCENARIOS="fanout10k latency10k publish0 publish1k" bench/mercure-vs-native.sh [OUT]
#   bench/report.py OUT   # tables: ssehub (native) and mercure side by side, ratios to native
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${RUN_DIR:-$REPO/bench/run-mercure}"
source "$REPO/bench/lib.sh"
HUB_PEER="${HUB_PEER:-ssehub-memory}" REPEAT="${REPEAT:-3}" WAIT_OTHERS="${WAIT_OTHERS:-300}"
SCENARIOS="${SCENARIOS:-fanout10k latency10k publish0 publish1k}"
OUT="${1:-$BENCH_DIR/results/mercure-vs-native-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT" "$RUN_DIR/bin"
cp "$GEN" "$RUN_DIR/bin/ssehub-bench"
cp "$SSEHUB" "$RUN_DIR/bin/ssehub"
GEN="$RUN_DIR/bin/ssehub-bench" SSEHUB="$RUN_DIR/bin/ssehub"
echo "# run $(date -u +%FT%TZ): repo $(cd "$REPO" && git rev-parse --short HEAD), ssehub sha256 $(sha256sum "$SSEHUB" | cut -c1-12)" >>"$OUT/run.txt"

scenario() { # NAME: sets SC_MODE and SC_ARGS (the sizes of bench/run-all.sh)
  case "$1" in
    fanout10k) SC_MODE=fanout; SC_ARGS=(-n 10000 -m 100 -r 100 --pub-conns 4 --drain-timeout 120) ;;
    latency10k) SC_MODE=fanout; SC_ARGS=(-n 10000 -m 100 -r 10 --pub-conns 1 --drain-timeout 60) ;;
    publish0) SC_MODE=publish; SC_ARGS=(-m 20000 --pub-conns 4) ;;
    publish1k) SC_MODE=publish; SC_ARGS=(-n 1000 -m 1000 --pub-conns 4 --drain-timeout 120) ;;
    *) log "unknown scenario $1"; return 1 ;;
  esac
}

api_args() { # API PORT: the generator's options for that API of the hub on PORT
  local base="http://127.0.0.1:$2"
  case "$1" in
    ssehub) peer_args ssehub "$2" ;;
    mercure)
      PEER_ARGS=(--label mercure --hub-pid "$PEER_PID"
        --sub-url "$base/.well-known/mercure?topic={topic}" --pub-url "$base/.well-known/mercure"
        --pub-content-type application/x-www-form-urlencoded --pub-body 'topic={topic}&data={payload}') ;;
  esac
}

note_machine() {
  local waited=0
  while ((waited < WAIT_OTHERS)) && pgrep -x ssehub-bench >/dev/null; do sleep 5; waited=$((waited + 5)); done
  {
    echo "== $1 $(date -u +%FT%TZ) (waited ${waited}s for other ssehub-bench; still running: $(pgrep -x ssehub-bench | tr '\n' ' '))"
    uptime
  } >>"$OUT/machine.txt"
}

src=60
for rep in $(seq 1 "$REPEAT"); do
  for scen in $SCENARIOS; do
    scenario "$scen"
    for api in ssehub mercure; do
      note_machine "$api $scen $rep"
      start_peer "$HUB_PEER" 27680
      api_args "$api" 27680
      src=$((src + 1))
      cmd=("$GEN" "$SC_MODE" "${SC_ARGS[@]}" "${PEER_ARGS[@]}" --src-base "127.$src.0.2"
        --json "$OUT/$api.$scen.$rep.json")
      echo "$api $scen $rep: hub $(tr '\0' ' ' <"/proc/$PEER_PID/cmdline"); generator ${cmd[*]}" >>"$OUT/run.txt"
      log "$api / $scen / run $rep"
      timeout 600 "${cmd[@]}" >/dev/null 2>"$OUT/$api.$scen.$rep.log" || echo "$api $scen $rep: failed" >>"$OUT/run.txt"
      stop_peer
    done
  done
done
log "results: $OUT (bench/report.py $OUT)"
