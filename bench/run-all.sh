#!/usr/bin/env bash
# Run the same scenarios against ssehub and each peer, one after the other, each on a freshly
# started process, and write JSON per run plus a markdown table (bench/report.py).
#
#   bench/run-all.sh [--peers "ssehub nchan ..."] [--scenarios "fanout1k idle10k ..."]
#                    [--repeat N] [--rep-start K] [--out DIR] [--quick]
#                    [--quiet-below CORES [--quiet-wait SECONDS]] [--wait-others SECONDS]
#
# Peers: ssehub bare node-express better-sse nchan pushpin (bare = the bare write loop,
# the machine's ceiling for the same bytes). "ssehub" runs with the default durable store
# (label ssehub, a fresh data directory each run) and with --memory (label ssehub-memory);
# STORE=default or STORE=memory runs only one of them. Scenarios: see scenario() below, or --list.
# Everything runs on 127.0.0.0/8; each run uses its own block of source addresses.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/bench/lib.sh"

PEERS="ssehub bare node-express better-sse nchan pushpin"
SCENARIOS="idle10k idle19k fanout1k fanout10k latency10k topics5k publish0 publish1k replay100k storm10k"
QUICK_SCENARIOS="idle1k fanout200 topics500 publish0q replay5k storm500"
REPEAT=1
REP_START=1
QUIET_BELOW=""
QUIET_WAIT=300
WAIT_OTHERS=0
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --peers) PEERS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --rep-start) REP_START="$2"; shift 2 ;; # add runs to an existing --out directory
    --quiet-below) QUIET_BELOW="$2"; shift 2 ;; # wait until others use fewer cores than this
    --quiet-wait) QUIET_WAIT="$2"; shift 2 ;;   # ... but at most this many seconds
    --wait-others) WAIT_OTHERS="$2"; shift 2 ;; # wait (≤ s) while another ssehub-bench runs
    --out) OUT="$2"; shift 2 ;;
    --quick) SCENARIOS="$QUICK_SCENARIOS"; shift ;;
    --list) grep -E '^    [a-z0-9]+\)' "$0" | sed 's/).*//; s/^ *//' | tr '\n' ' '; echo; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PEERS=$(store_peers "$PEERS")
OUT="${OUT:-$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

# scenario NAME: sets SC_MODE and SC_ARGS.
scenario() {
  case "$1" in
    # issue 3's sizes
    idle10k) SC_MODE=idle; SC_ARGS=(-n 10000 --hold 20) ;;
    idle19k) SC_MODE=idle; SC_ARGS=(-n 19000 --hold 20) ;;
    fanout1k) SC_MODE=fanout; SC_ARGS=(-n 1000 -m 200 -r 100 --pub-conns 4) ;;
    fanout10k) SC_MODE=fanout; SC_ARGS=(-n 10000 -m 100 -r 100 --pub-conns 4 --drain-timeout 120) ;;
    latency10k) SC_MODE=fanout; SC_ARGS=(-n 10000 -m 100 -r 10 --pub-conns 1 --drain-timeout 60) ;;
    latency1k) SC_MODE=fanout; SC_ARGS=(-n 1000 -m 100 -r 10 --pub-conns 1) ;;
    topics5k) SC_MODE=fanout; SC_ARGS=(-n 5000 -k 5000 -m 20000 -r 1000 --pub-conns 4) ;;
    # issue 15: 19,000 subscribers over 10,000 topics, 100,000 more topics holding one event each
    # and no subscriber; 20,000 events round-robin over the subscribed topics at 2,000/s
    topics19k) SC_MODE=fanout; SC_ARGS=(-n 19000 -k 10000 --prefill 100000 -m 20000 -r 2000
      --pub-conns 4 --procs 2 --drain-timeout 60) ;;
    # the same two, published flat out (8 connections): the most deliveries/s each hub reaches
    topics5kmax) SC_MODE=fanout; SC_ARGS=(-n 5000 -k 5000 -m 20000 -r 0 --pub-conns 8) ;;
    topics19kmax) SC_MODE=fanout; SC_ARGS=(-n 19000 -k 10000 --prefill 100000 -m 20000 -r 0
      --pub-conns 8 --procs 2 --drain-timeout 60) ;;
    # issue 15: cost growth, N subscribers over K topics (costN-K); ~100,000 deliveries/s
    # asked for (publish rate 100,000 × K ÷ N, at most 2,000/s), 5 s of publishing
    cost1k-1) SC_MODE=fanout; SC_ARGS=(-n 1000 -k 1 -m 500 -r 100) ;;
    cost1k-10) SC_MODE=fanout; SC_ARGS=(-n 1000 -k 10 -m 5000 -r 1000) ;;
    cost1k-100) SC_MODE=fanout; SC_ARGS=(-n 1000 -k 100 -m 10000 -r 2000) ;;
    cost10k-1) SC_MODE=fanout; SC_ARGS=(-n 10000 -k 1 -m 50 -r 10 --ramp 5000) ;;
    cost10k-10) SC_MODE=fanout; SC_ARGS=(-n 10000 -k 10 -m 500 -r 100 --ramp 5000) ;;
    cost10k-100) SC_MODE=fanout; SC_ARGS=(-n 10000 -k 100 -m 5000 -r 1000 --ramp 5000) ;;
    cost10k-10k) SC_MODE=fanout; SC_ARGS=(-n 10000 -k 10000 -m 10000 -r 2000 --ramp 5000) ;;
    cost19k-1) SC_MODE=fanout; SC_ARGS=(-n 19000 -k 1 -m 25 -r 5 --procs 2 --ramp 5000) ;;
    cost19k-10) SC_MODE=fanout; SC_ARGS=(-n 19000 -k 10 -m 250 -r 50 --procs 2 --ramp 5000) ;;
    cost19k-100) SC_MODE=fanout; SC_ARGS=(-n 19000 -k 100 -m 2500 -r 500 --procs 2 --ramp 5000) ;;
    cost19k-10k) SC_MODE=fanout; SC_ARGS=(-n 19000 -k 10000 -m 10000 -r 2000 --procs 2 --ramp 5000) ;;
    publish0) SC_MODE=publish; SC_ARGS=(-m 20000 --pub-conns 4) ;;
    publish1k) SC_MODE=publish; SC_ARGS=(-n 1000 -m 1000 --pub-conns 4 --drain-timeout 120) ;;
    replay100k) SC_MODE=replay; SC_ARGS=(-m 100000 --replayers 1 --pub-conns 4 --drain-timeout 120) ;;
    replay20k) SC_MODE=replay; SC_ARGS=(-m 20000 --replayers 1 --pub-conns 4 --drain-timeout 120) ;;
    replay50k) SC_MODE=replay; SC_ARGS=(-m 50000 --replayers 1 --pub-conns 4 --drain-timeout 120) ;;
    storm10k) SC_MODE=storm; SC_ARGS=(-n 10000 --pre-events 5 --gap-events 5 --drain-timeout 60) ;;
    # small versions for a quick check
    idle1k) SC_MODE=idle; SC_ARGS=(-n 1000 --hold 3) ;;
    fanout200) SC_MODE=fanout; SC_ARGS=(-n 200 -m 50 -r 100 --pub-conns 4) ;;
    topics500) SC_MODE=fanout; SC_ARGS=(-n 500 -k 500 -m 500 -r 500 --pub-conns 4) ;;
    publish0q) SC_MODE=publish; SC_ARGS=(-m 2000 --pub-conns 4) ;;
    replay5k) SC_MODE=replay; SC_ARGS=(-m 5000 --replayers 1 --pub-conns 4) ;;
    storm500) SC_MODE=storm; SC_ARGS=(-n 500) ;;
    *) log "unknown scenario $1"; return 1 ;;
  esac
}

# Ports away from the usual 8080/18080 a colleague may be using.
peer_port() {
  case "$1" in
    ssehub) echo 27080 ;; ssehub-memory) echo 27085 ;; bare) echo 27090 ;; bare-per-event) echo 27095 ;;
    node-express) echo 27100 ;; better-sse) echo 27110 ;; nchan) echo 27120 ;; pushpin) echo 27130 ;;
    *) echo 27200 ;;
  esac
}

# A fresh block of source addresses per run (127.K.0.2, 127.K.0.3, ...), so TIME_WAIT sockets
# of one run never collide with the next.
next_src() {
  local f="$RUN_DIR/src-counter" k
  k=$(( ($(cat "$f" 2>/dev/null || echo 20) % 230) + 1 ))
  echo "$k" >"$f"
  echo "127.$((k + 20)).0.2"
}

[[ -x $GEN ]] || { log "build the generator first: cargo build --release -p ssehub-bench"; exit 1; }
for peer in $PEERS; do
  if [[ $peer == ssehub* && ! -x $SSEHUB ]]; then
    log "build the hub first: cargo build --release -p ssehub-cli"; exit 1
  fi
done
# Run private copies, so a colleague rebuilding target/release mid-run changes nothing here.
mkdir -p "$RUN_DIR/bin"
cp "$GEN" "$RUN_DIR/bin/ssehub-bench"
GEN="$RUN_DIR/bin/ssehub-bench"
if [[ -x $SSEHUB ]]; then cp "$SSEHUB" "$RUN_DIR/bin/ssehub"; SSEHUB="$RUN_DIR/bin/ssehub"; fi

# Busy cores of the whole machine over one second (what else is running: the noise).
busy_now() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); printf "%.2f", (y[1]-x[1])/100}'
}

# Before each run: wait (at most --wait-others seconds) until no other generator or bare server
# (a process named ssehub-bench; none of this script's own is alive between runs) is running,
# then note the load average and the busiest processes in machine.txt.
wait_others() {
  local waited=0
  while ((waited < WAIT_OTHERS)) && pgrep -x ssehub-bench >/dev/null; do
    sleep 5; waited=$((waited + 5))
  done
  OTHERS_NOTE="waited ${waited}s for other ssehub-bench"
  if pgrep -x ssehub-bench >/dev/null; then OTHERS_NOTE="$OTHERS_NOTE, still running: $(pgrep -x ssehub-bench | tr '\n' ' ')"; fi
}
machine_note() { # LABEL
  {
    echo "== $1 $(date -u +%FT%TZ) ($OTHERS_NOTE)"
    uptime
    top -b -n 2 -d 1 -w 160 | awk '/^top -/{n++} n==2' | sed -n '7,13p'
  } >>"$OUT/machine.txt"
}
OTHERS_NOTE="no wait"

{
  echo "# run $(date -u +%FT%TZ) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
  echo "# peers: $PEERS (ssehub: default durable store in a fresh --data-dir; ssehub-memory: --memory)"
  echo "# scenarios: $SCENARIOS, repeat $REPEAT"
  echo "# repo $(cd "$REPO" && git rev-parse --short HEAD); ssehub binary sha256 $(sha256sum "$SSEHUB" 2>/dev/null | cut -c1-12) built $(date -u -r "$SSEHUB" +%FT%TZ 2>/dev/null)"
  echo "# versions: $(node --version 2>/dev/null) $(nginx -v 2>&1 | tr -d '\n') pushpin $(pushpin --version 2>/dev/null | tail -1)"
} >>"$OUT/run.txt"

for sc in $SCENARIOS; do
  scenario "$sc"
  for rep in $(seq "$REP_START" $((REP_START + REPEAT - 1))); do
    for peer in $PEERS; do
      if ! peer_supports "$peer" "$sc"; then continue; fi
      port=$(peer_port "$peer")
      # ssehub keeps 10,000 events in memory mode by default; replay needs the whole preload,
      # topics19k its 100,000 prefilled events (nchan gets nchan_message_buffer_length 200000
      # likewise; the durable log keeps 1,000,000 by default).
      if ((WAIT_OTHERS > 0)); then wait_others; fi
      machine_note "$peer $sc $rep"
      export SSEHUB_ARGS=""
      case "$sc" in replay* | topics19k*) export SSEHUB_MEMORY_ARGS="--history 200000" ;; *) export SSEHUB_MEMORY_ARGS="" ;; esac
      if ! start_peer "$peer" "$port"; then
        echo "$peer $sc $rep: did not start" >>"$OUT/run.txt"; continue
      fi
      peer_args "$peer" "$port"
      src=$(next_src)
      json="$OUT/$peer.$sc.$rep.json"
      cmd=("$GEN" "$SC_MODE" "${SC_ARGS[@]}" "${PEER_ARGS[@]}" --src-base "$src" --json "$json")
      busy=$(busy_now)
      if [[ -n $QUIET_BELOW ]]; then
        waited=0
        while awk -v b="$busy" -v q="$QUIET_BELOW" 'BEGIN{exit !(b >= q)}' && ((waited < QUIET_WAIT)); do
          busy=$(busy_now); waited=$((waited + 1))
        done
      fi
      echo "$peer $sc $rep (machine busy before: $busy cores): ${cmd[*]}" >>"$OUT/run.txt"
      log "$peer / $sc / run $rep"
      if ! timeout 900 "${cmd[@]}" >/dev/null 2>"$OUT/$peer.$sc.$rep.log"; then
        log "$peer / $sc failed; see $OUT/$peer.$sc.$rep.log"
        echo "$peer $sc $rep: generator failed" >>"$OUT/run.txt"
      fi
      tail -n 8 "$OUT/$peer.$sc.$rep.log" >&2 || true
      stop_peer
    done
  done
done

python3 "$BENCH_DIR/report.py" "$OUT" >"$OUT/results.md"
log "results: $OUT/results.md"
