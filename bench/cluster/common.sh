# Shared helpers for bench/cluster/*.sh (source it; needs REPO). Everything on loopback; every
# wait is bounded; only processes started here are stopped, by pid.

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
BINDIR=$(mktemp -d /tmp/ssehub-cluster-bin.XXXXXX)
# Private copies: the shared target/ may be rebuilt by others while we run.
cp "$REPO/target/release/ssehub" "$REPO/target/release/ssehub-bench" "$BINDIR/"
HUB="$BINDIR/ssehub"
GEN="$BINDIR/ssehub-bench"
MY_PIDS=""   # every long-lived process started here (hubs, redis)

log() { echo "[cluster $(date -u +%H:%M:%S)] $*" >&2; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # PORT SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_busy "$1" && return 0
    sleep 0.1
  done
  return 1
}

# free_port FROM: first port >= FROM nobody listens on.
free_port() {
  local p=$1
  while port_busy "$p" && ((p < $1 + 500)); do p=$((p + 1)); done
  echo "$p"
}

# Total waiting for others over the whole script: WAIT_BUDGET seconds (default 20 min).
WAIT_DEADLINE=$((SECONDS + ${WAIT_BUDGET:-1200}))

# wait_quiet: wait (30 s steps, at most 20 min) until nobody else's benchmark runs
# (`run-all.sh` or `ssehub-bench` processes that are not ours); then note the machine state.
wait_quiet() {
  local i others
  for ((i = 0; i < 40 && ${NO_WAIT:-0} == 0 && SECONDS < WAIT_DEADLINE; i++)); do
    others=$(pgrep -f 'run-all.sh|ssehub-bench' | grep -vxF -e "$$" -e "$BASHPID" | while read -r p; do
      grep -q "$BINDIR" "/proc/$p/cmdline" 2>/dev/null || echo "$p"; done | tr '\n' ' ' || true)
    [[ -z $others ]] && break
    ((i == 0)) && log "others' benchmark running (pids $others); waiting up to 20 min"
    sleep 30
  done
  machine_state "before run (NO_WAIT=${NO_WAIT:-0}): others' bench pids still running: ${others:-none}"
}

machine_state() { # NOTE -> appends to $OUT/machine.txt
  {
    echo "== $(date -u +%FT%TZ) $1"
    echo "loadavg: $(cat /proc/loadavg)"
    free -m
    echo "compilers running: $(pgrep -c -x rustc || true); others' bench: $(pgrep -f 'run-all.sh|ssehub-bench' | while read -r p; do
      grep -q "$BINDIR" "/proc/$p/cmdline" 2>/dev/null || echo "$p"; done | wc -l) process(es)"
  } >>"$OUT/machine.txt"
}

start_redis() { # sets RPORT
  RPORT=$(free_port "${RPORT:-28379}")
  setsid redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --maxclients 10000 >"$OUT/redis.log" 2>&1 &
  REDIS_PID=$!
  MY_PIDS="$MY_PIDS $REDIS_PID"
  local i
  for ((i = 0; i < 100; i++)); do
    redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  log "redis-server on $RPORT (pid $REDIS_PID)"
}

start_nats() { # a fresh nats-server -js (new store dir); sets NPORT, NATS_PID
  NPORT=$(free_port "${NPORT:-28422}")
  NATS_DIR=$(mktemp -d /tmp/ssehub-cluster-nats.XXXXXX)
  setsid nats-server -js -a 127.0.0.1 -p "$NPORT" -sd "$NATS_DIR" >>"$OUT/nats.log" 2>&1 &
  NATS_PID=$!
  MY_PIDS="$MY_PIDS $NATS_PID"
  wait_port "$NPORT" 10 || log "nats-server did not start on $NPORT"
  log "nats-server on $NPORT (pid $NATS_PID, store $NATS_DIR)"
}

stop_nats() {
  stop_pids "$NATS_PID"
  rm -rf "$NATS_DIR"
}

# engine_cpu PID FILE: the process's CPU seconds so far, as redis `info cpu` writes them.
engine_cpu() {
  local tck stat
  tck=$(getconf CLK_TCK)
  read -r -a stat <"/proc/$1/stat"
  printf 'used_cpu_user:%s\nused_cpu_sys:%s\n' "$(echo "scale=3; ${stat[13]} / $tck" | bc)" \
    "$(echo "scale=3; ${stat[14]} / $tck" | bc)" >"$2"
}

# start_nodes COUNT MODE(memory|cluster|nats) FIRSTPORT: sets NODE_PIDS and NODE_PORTS
start_nodes() {
  local count=$1 mode=$2 port=$3 i args pid
  NODE_PIDS=() NODE_PORTS=()
  for ((i = 0; i < count; i++)); do
    port=$(free_port "$port")
    if [[ $mode == memory ]]; then
      args=(--memory --history 100000)
    elif [[ $mode == nats ]]; then
      args=(--engine "nats://127.0.0.1:$NPORT" --history 100000)
    else
      args=(--redis-url "redis://127.0.0.1:$RPORT" --history 100000)
    fi
    # shellcheck disable=SC2086 # HUB_ARGS: extra hub options, a word list on purpose
    setsid "$HUB" serve --listen "127.0.0.1:$port" "${args[@]}" ${HUB_ARGS:-} >>"$OUT/hub-$i.log" 2>&1 &
    pid=$!
    NODE_PIDS+=("$pid") NODE_PORTS+=("$port")
    MY_PIDS="$MY_PIDS $pid"
    port=$((port + 1))
  done
  for ((i = 0; i < count; i++)); do
    if ! wait_port "${NODE_PORTS[$i]}" 30 || ! kill -0 "${NODE_PIDS[$i]}" 2>/dev/null; then
      log "node $i (port ${NODE_PORTS[$i]}) did not start; see $OUT/hub-$i.log"
      return 1
    fi
  done
  sleep 1
}

stop_pids() { # PID...
  local p i
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  return 0
}

stop_nodes() {
  stop_pids "${NODE_PIDS[@]}"
  NODE_PIDS=()
}

cleanup() {
  # shellcheck disable=SC2086 # a pid list
  stop_pids $MY_PIDS
  rm -rf "$BINDIR"
}

# gen_node_args: --pub-url node 0, --sub-url node 0, --sub-url-extra the others, --hub-pid all.
gen_node_args() {
  local i
  GEN_ARGS=(--pub-url "http://127.0.0.1:${NODE_PORTS[0]}/publish"
    --sub-url "http://127.0.0.1:${NODE_PORTS[0]}/events/{topic}")
  for ((i = 1; i < ${#NODE_PORTS[@]}; i++)); do
    GEN_ARGS+=(--sub-url-extra "http://127.0.0.1:${NODE_PORTS[$i]}/events/{topic}")
  done
  for i in "${NODE_PIDS[@]}"; do GEN_ARGS+=(--hub-pid "$i"); done
}

sysctls() {
  local f
  for f in fs/file-max fs/nr_open fs/file-nr net/core/somaxconn net/ipv4/tcp_mem \
    net/ipv4/tcp_max_syn_backlog net/ipv4/ip_local_port_range net/ipv4/tcp_rmem net/ipv4/tcp_wmem \
    net/netfilter/nf_conntrack_max net/netfilter/nf_conntrack_count net/core/netdev_max_backlog; do
    printf '%s = %s\n' "${f//\//.}" "$(tr '\t' ' ' <"/proc/sys/$f" 2>/dev/null || echo absent)"
  done
  echo "ulimit -n (soft/hard): $(ulimit -Sn)/$(ulimit -Hn)"
  echo
}
