#!/usr/bin/env bash
# Cluster fan-out: the same subscribers on 1, 2 and 3 ssehub nodes sharing one Redis (configs
# 1 2 3) or one NATS JetStream server (configs nats1 nats2 nats3), against one node without an
# engine (--memory); events published to node 0. Per configuration:
# deliveries/s, p50/p99 latency (all subscribers, node 0's, the other nodes'), hub CPU summed
# over the nodes, Redis commands and Redis CPU per publish.
#
#   cargo build --release -p ssehub-cli -p ssehub-bench
#   bench/cluster/run.sh                       # 6,000 subscribers, 100 events at 100/s, 3 reps
#   SUBS=3000 REPS=1 CONFIGS="memory 1 3" bench/cluster/run.sh
#   PROCS=8 CONFIGS="1 2 4 8" bench/cluster/run.sh   # Redis CPU per publish as nodes grow
#   CONFIGS="memory 1 nats1 2 nats2" bench/cluster/run.sh   # NATS beside Redis, same run
# (a nats config starts a fresh nats-server -js per run; its CPU goes in *.engine-cpu*.txt)
#
# Results: bench/cluster/results/<UTC time>/ (JSON per run, redis commandstats, summary.md).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SUBS=${SUBS:-6000}
EVENTS=${EVENTS:-100}
RATE=${RATE:-100}
REPS=${REPS:-3}
PUB_CONNS=${PUB_CONNS:-1} # closed-loop publish connections (each waits for its answer)
PROCS=${PROCS:-6} # generator processes: 6 for every configuration (splits evenly over 1, 2, 3 nodes)
CONFIGS=${CONFIGS:-"memory 1 2 3"}
OUT=${OUT:-$REPO/bench/cluster/results/run-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
# shellcheck source=bench/cluster/common.sh
. "$REPO/bench/cluster/common.sh"
trap cleanup EXIT

{
  echo "commit: $(git -C "$REPO" rev-parse --short HEAD) (dirty files: $(git -C "$REPO" status --short -uno | wc -l))"
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -r)"
  echo "SUBS=$SUBS EVENTS=$EVENTS RATE=$RATE PUB_CONNS=$PUB_CONNS REPS=$REPS PROCS=$PROCS CONFIGS=$CONFIGS"
} >"$OUT/run.txt"
start_redis
echo "redis: redis-server --port $RPORT --save '' --appendonly no ($(redis-server --version | cut -d' ' -f3))" >>"$OUT/run.txt"
echo "nats (nats configs): nats-server -js -a 127.0.0.1 -p PORT -sd <fresh dir> per run ($(nats-server --version))" >>"$OUT/run.txt"

for ((rep = 1; rep <= REPS; rep++)); do
  for cfg in $CONFIGS; do
    case $cfg in
      memory) nodes=1 mode=memory ;;
      nats*) nodes=${cfg#nats} mode=nats ;;
      *) nodes=$cfg mode=cluster ;;
    esac
    name="$cfg.$rep"
    redis-cli -p "$RPORT" del ssehub:events >/dev/null
    [[ $mode == nats ]] && start_nats
    start_nodes "$nodes" "$mode" 28081 || exit 1
    gen_node_args
    wait_quiet
    redis-cli -p "$RPORT" config resetstat >/dev/null
    if [[ $mode == nats ]]; then
      engine_cpu "$NATS_PID" "$OUT/$name.engine-cpu0.txt"
    else
      redis-cli -p "$RPORT" info cpu >"$OUT/$name.redis-cpu0.txt"
    fi
    cmd=("$GEN" fanout -n "$SUBS" -k 1 -m "$EVENTS" -r "$RATE" --pub-conns "$PUB_CONNS" --procs "$PROCS"
      --ramp 4000 --src-base "127.50.$rep.2" --label "ssehub-$cfg" --drain-timeout 60
      "${GEN_ARGS[@]}" --json "$OUT/$name.json")
    echo "$name: ${cmd[*]/#$BINDIR\//target/release/}" >>"$OUT/run.txt"
    log "$name: $nodes node(s), $mode"
    timeout 600 "${cmd[@]}" >/dev/null 2>"$OUT/$name.log" || log "$name: generator exited $?"
    if [[ $mode == nats ]]; then
      engine_cpu "$NATS_PID" "$OUT/$name.engine-cpu1.txt"
    else
      redis-cli -p "$RPORT" info commandstats >"$OUT/$name.redis.txt"
      redis-cli -p "$RPORT" info cpu >"$OUT/$name.redis-cpu1.txt"
    fi
    stop_nodes
    [[ $mode == nats ]] && stop_nats
  done
done
python3 "$REPO/bench/cluster/summary.py" "$OUT" | tee "$OUT/summary.md"
