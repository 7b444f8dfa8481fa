# Shared helpers for the benchmark scripts: start/stop a peer on loopback, and the generator
# arguments that drive it. Source it; it needs REPO (the repository root).
# Peers: ssehub (the default durable store, a fresh --data-dir per run), ssehub-memory
# (--memory), bare, node-express, better-sse, nchan, pushpin.
# STORE=default|memory|both picks which ssehub peers "ssehub" stands for (store_peers).

BENCH_DIR="${BENCH_DIR:-$REPO/bench}"
RUN_DIR="${RUN_DIR:-$BENCH_DIR/run}"
GEN="${GEN:-$REPO/target/release/ssehub-bench}"
SSEHUB="${SSEHUB:-$REPO/target/release/ssehub}"
mkdir -p "$RUN_DIR"
# Every process here has a hard limit of 20,000 open files; use all of it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log() { echo "[bench] $*" >&2; }

wait_port() { # PORT SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start_peer PEER PORT: starts it in its own session; sets PEER_PID (the pid to measure,
# descendants included) and PEER_STOP (pids to stop, in order).
start_peer() {
  local peer=$1 port=$2 dir="$RUN_DIR/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  PEER_STOP=""
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "port $port is already in use by something else; not starting $peer"
    return 1
  fi
  case "$peer" in
    ssehub)
      # The default store: the durable log, in a data directory of this run only.
      # shellcheck disable=SC2086 # SSEHUB_ARGS is a word list on purpose
      setsid "$SSEHUB" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" ${SSEHUB_ARGS:-} >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    ssehub-memory)
      # shellcheck disable=SC2086
      setsid "$SSEHUB" serve --listen "127.0.0.1:$port" --memory ${SSEHUB_ARGS:-} ${SSEHUB_MEMORY_ARGS:-} >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    bare)
      # shellcheck disable=SC2086 # BARE_ARGS is a word list on purpose (e.g. --write-times)
      setsid "$GEN" bare-server --listen "127.0.0.1:$port" ${BARE_ARGS:-} >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    bare-per-event)
      # shellcheck disable=SC2086
      setsid "$GEN" bare-server --per-event-writes --listen "127.0.0.1:$port" ${BARE_ARGS:-} >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    node-express)
      setsid node "$BENCH_DIR/peers/node/express-broadcast.js" "$port" >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    better-sse)
      setsid node "$BENCH_DIR/peers/node/better-sse.js" "$port" >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    nchan)
      mkdir -p "$dir/body" "$dir/proxy"
      sed -e "s#@PORT@#$port#g" -e "s#@PREFIX@#$dir#g" "$BENCH_DIR/peers/nchan/nginx.conf.in" >"$dir/nginx.conf"
      setsid nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" >"$dir/out.log" 2>&1 &
      PEER_PID=$! ;;
    pushpin)
      local origin=$((port + 1)) pubport=$((port + 2)) z=$((port + 3))
      mkdir -p "$dir/run" "$dir/log"
      echo "* 127.0.0.1:$origin" >"$dir/routes"
      sed -e "s#@PORT@#$port#g" -e "s#@PREFIX@#$dir#g" -e "s#@PUBPORT@#$pubport#g" \
        -e "s#@ZMQBASE0@#$z#g" -e "s#@ZMQBASE2@#$((z + 1))#g" -e "s#@ZMQBASE3@#$((z + 2))#g" \
        "$BENCH_DIR/peers/pushpin/pushpin.conf.in" >"$dir/pushpin.conf"
      setsid python3 "$BENCH_DIR/peers/pushpin/origin.py" "$origin" >"$dir/origin.log" 2>&1 &
      PEER_STOP="$!"
      setsid pushpin --config "$dir/pushpin.conf" >"$dir/out.log" 2>&1 &
      PEER_PID=$!
      wait_port "$pubport" 30 || { log "pushpin publish port did not open"; }
      ;;
    *) log "unknown peer $peer"; return 1 ;;
  esac
  PEER_STOP="$PEER_PID $PEER_STOP"
  if ! wait_port "$port" 30; then
    log "$peer did not open port $port; see $dir"
    stop_peer
    return 1
  fi
  sleep 1 # let it finish starting (and its RSS settle) before the baseline sample
  if ! kill -0 "$PEER_PID" 2>/dev/null; then
    log "$peer exited after start (port $port taken by something else?); see $dir"
    stop_peer
    return 1
  fi
  log "$peer up on 127.0.0.1:$port (pid $PEER_PID)"
}

# descendants PID: the pid and every descendant, by walking /proc (pids only, no names).
descendants() {
  local p=$1 c
  echo "$p"
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do descendants "$c"; done
}

stop_peer() {
  local p i
  PEER_TREE=""
  for p in $PEER_STOP; do PEER_TREE="$PEER_TREE $(descendants "$p" | tr '\n' ' ')"; done
  for p in $PEER_STOP; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $PEER_STOP; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  # nginx workers and pushpin's services leave with their parent; make sure, by pid.
  for p in $PEER_TREE; do
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  PEER_STOP=""
  sleep 1
}

# peer_args PEER PORT: fills the array PEER_ARGS with the generator options for that peer.
peer_args() {
  local peer=$1 port=$2 base="http://127.0.0.1:$2"
  PEER_ARGS=(--label "$peer" --hub-pid "$PEER_PID")
  case "$peer" in
    ssehub | ssehub-memory | bare | bare-per-event)
      PEER_ARGS+=(--sub-url "$base/events/{topic}" --pub-url "$base/publish") ;;
    node-express)
      PEER_ARGS+=(--sub-url "$base/events/{topic}" --pub-url "$base/broadcast"
        --pub-body '{"topic":"{topic}","message":"{payload}"}') ;;
    better-sse)
      PEER_ARGS+=(--sub-url "$base/events/{topic}" --pub-url "$base/publish") ;;
    nchan)
      PEER_ARGS+=(--sub-url "$base/sub/{topic}" --pub-url "$base/pub/{topic}"
        --pub-content-type text/plain --pub-body '{payload}') ;;
    pushpin)
      PEER_ARGS+=(--sub-url "$base/events/{topic}" --pub-url "http://127.0.0.1:$((port + 2))/publish/"
        --pub-body '{"items":[{"channel":"{topic}","id":"{seq}","formats":{"http-stream":{"content":"id: {seq}\nevent: message\ndata: {payload}\n\n"}}}]}'
        --ramp 500) ;;
  esac
}

# store_peers "PEERS": the list with "ssehub" replaced by the ssehub peers of STORE:
# default → ssehub, memory → ssehub-memory, both (the default) → ssehub ssehub-memory.
store_peers() {
  local p out=""
  for p in $1; do
    if [[ $p == ssehub ]]; then
      case "${STORE:-both}" in
        default) out="$out ssehub" ;;
        memory) out="$out ssehub-memory" ;;
        both) out="$out ssehub ssehub-memory" ;;
        *) log "STORE must be default, memory or both, not $STORE"; return 1 ;;
      esac
    else
      out="$out $p"
    fi
  done
  echo "${out# }"
}

# Which scenarios a peer can run at all (replay needs history).
peer_supports() { # PEER SCENARIO
  case "$2" in
    replay*) [[ $1 == ssehub || $1 == ssehub-memory || $1 == nchan ]] ;;
    *) true ;;
  esac
}
