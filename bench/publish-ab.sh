#!/usr/bin/env bash
# Publish throughput, builds of ssehub against each other and nchan, interleaved: every
# repetition runs each scenario once per hub, one hub after the other, so a busy machine
# weighs on all alike. Ports 27580 (ssehub builds) and 27620 (nchan), its own run directory,
# so it does not collide with a bench/run-all.sh running at the same time; before each run it
# waits (at most 600 s) while any other ssehub-bench runs. Results: OUT/<label>.<scenario>.<rep>.json
# and .log, and OUT/run.txt with every exact command and how busy the machine was.
#
#   bench/publish-ab.sh OUT REPEAT "publish0 publish1k" ssehub-before=/path/ssehub ssehub=/path/ssehub nchan
#   bench/report.py OUT          # tables; ratios are against the hub labelled ssehub
#
# Each build runs with the default durable store (label as given, a fresh data directory per
# run) and with --memory (label-memory); STORE=default or STORE=memory runs only one.
#
# Scenarios as in run-all.sh: idle19k and fanout10k (for memory and fan-out), publish0 (20,000 publishes on 4 connections, no subscribers),
# publish1k (1,000 publishes, 1,000 subscribers), and publish100k (100,000 publishes, no
# subscribers: a longer window, steadier CPU figures).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT=$1 REPEAT=$2 SCENARIOS=$3
shift 3
# Absolute: the peers (nginx for nchan) run in directories below it.
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
export RUN_DIR="${RUN_DIR:-$OUT/run}"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
mkdir -p "$OUT/bin"
cp "$GEN" "$OUT/bin/ssehub-bench" && GEN="$OUT/bin/ssehub-bench"

busy_now() { # busy cores of the whole machine over one second
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", (b-a)/100}'
}

echo "# run $(date -u +%FT%TZ), repo $(cd "$REPO" && git rev-parse --short HEAD), hubs: $*" >>"$OUT/run.txt"
# Private copies of the builds, so a rebuild of target/release mid-run changes nothing here.
for hub in "$@"; do
  [[ $hub == nchan ]] && continue
  cp "${hub#*=}" "$OUT/bin/ssehub.${hub%%=*}"
  echo "# ${hub%%=*}: ${hub#*=}, sha256 $(sha256sum "$OUT/bin/ssehub.${hub%%=*}" | cut -c1-12)" >>"$OUT/run.txt"
done
# One entry per run: label=path=peer, peer being ssehub (default store) or ssehub-memory.
RUNS=()
for hub in "$@"; do
  if [[ $hub == nchan ]]; then RUNS+=(nchan); continue; fi
  for p in $(store_peers ssehub); do
    suffix=${p#ssehub}
    RUNS+=("${hub%%=*}$suffix=${hub#*=}=$p")
  done
done
k=0
for rep in $(seq 1 "$REPEAT"); do
  for sc in $SCENARIOS; do
    MODE=publish
    case $sc in
      publish0) ARGS=(-m 20000 --pub-conns 4) ;;
      publish100k) ARGS=(-m 100000 --pub-conns 4) ;;
      publish1k) ARGS=(-n 1000 -m 1000 --pub-conns 4 --drain-timeout 120) ;;
      idle19k) MODE=idle ARGS=(-n 19000 --hold 20) ;;
      fanout10k) MODE=fanout ARGS=(-n 10000 -m 100 -r 100 --pub-conns 4 --drain-timeout 120) ;;
      *) log "unknown scenario $sc"; exit 1 ;;
    esac
    for hub in "${RUNS[@]}"; do
      waited=0
      while pgrep -x ssehub-bench >/dev/null && ((waited < 600)); do sleep 2; waited=$((waited + 2)); done
      if [[ $hub == nchan ]]; then
        label=nchan peer=nchan port=27620
      else
        label=${hub%%=*} peer=${hub##*=} port=27580
        bin=${label%-memory}
        export SSEHUB="$OUT/bin/ssehub.$bin"
      fi
      export SSEHUB_ARGS="" SSEHUB_MEMORY_ARGS=""
      if ! start_peer "$peer" "$port"; then
        echo "$label $sc $rep: did not start" >>"$OUT/run.txt"
        continue
      fi
      peer_args "$peer" "$port"
      PEER_ARGS[1]=$label
      k=$((k + 1))
      json="$OUT/$label.$sc.$rep.json"
      cmd=("$GEN" "$MODE" "${ARGS[@]}" "${PEER_ARGS[@]}" --src-base "127.$((k % 100 + 60)).0.2" --json "$json")
      busy=$(busy_now)
      echo "$label $sc $rep (waited ${waited}s for others; machine busy before: $busy cores; load $(cut -d' ' -f1-3 /proc/loadavg)): ${cmd[*]}" >>"$OUT/run.txt"
      timeout 300 "${cmd[@]}" >/dev/null 2>"$OUT/$label.$sc.$rep.log" ||
        echo "$label $sc $rep: generator failed" >>"$OUT/run.txt"
      tail -n 4 "$OUT/$label.$sc.$rep.log" >&2
      stop_peer
    done
  done
done
