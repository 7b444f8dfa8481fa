#!/usr/bin/env bash
# Bridges (issue 12 item 5): events from each source through its bridge into a durable hub
# (the default store, not --memory) and out to SSE subscribers, against a direct POST /publish
# baseline in the same run. For each of baseline and the sources, a fresh hub and:
#   latency:    --subs subscribers, --lat-events events at --lat-rate/s, --lat-reps times (the
#               table has the medians); p50/p99 source → subscriber
#   throughput: --subs subscribers, --tput-events events flat out, --tput-reps times; events/s at
#               the subscribers and into the hub (ssehub_bridge_published_total on /metrics)
#   ingest:     no subscribers, --ingest-events flat out, the hub given --ingest-s to take them,
#               --tput-reps times: the bridge and the store alone
#   floor:      pg-notify, pg-outbox, nats and jetstream without the hub (source-floor):
#               --ingest-events flat out, --floor-reps times; and a latency floor, the same
#               producer paced as the latency runs (--lat-events at --lat-rate/s), --lat-reps
#               times (p50/p99 source → bare consumer)
# Added latency = a source's p50/p99 minus the baseline's at the same rate; bridge − floor =
# what the bridge and the hub add to what the source itself takes. --hub-toml adds
# top-level keys to every hub's config file (e.g. 'sync = "never"', to see what the durable
# wait costs a bridge).
# Results: bench/results/bridges-<UTC time>/ (<source>.<run>.json, .log, run.txt, results.md).
#
#   bench/bridges.sh                                   # baseline + all eight sources
#   bench/bridges.sh --sources "pg-outbox nats" --tput-events 20000
#   bench/bridges.sh --sources "pg-outbox pg-notify" --tput-reps 0 --floor-reps 0   # latency only
# --pg-url takes libpq options, e.g. '...?options=-c%20synchronous_commit%3Doff' (every
# session: the producer's commits then do not wait for the WAL flush).
#
# Needs, on loopback: PostgreSQL (5432, user postgres, database test), NATS with JetStream
# (4222), Redis (6379), RabbitMQ (5672, guest); and `mosquitto` on the PATH (the run starts its
# own, see below; --mqtt-url uses a running broker instead). Every name it creates is unique to
# the run and removed at the end.
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/bench/lib.sh"

SOURCES="pg-outbox jetstream pg-notify nats redis-pubsub redis-stream amqp mqtt"
SUBS=1000
LAT_EVENTS=2000
LAT_RATE=200
LAT_REPS=3
TPUT_REPS=3
FLOOR_REPS=3
TPUT_EVENTS=10000
INGEST_EVENTS=50000
INGEST_S=30
BATCH=100
PORT=27910
OUT=""
HUB_TOML=""
PG_URL="postgres://postgres@127.0.0.1:5432/test"
NATS_URL="nats://127.0.0.1:4222"
REDIS_URL="redis://127.0.0.1:6379"
AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
MQTT_URL=""
MQTT_PORT=27911
while (($#)); do
  case "$1" in
    --sources) SOURCES="$2"; shift 2 ;;
    --subs) SUBS="$2"; shift 2 ;;
    --lat-events) LAT_EVENTS="$2"; shift 2 ;;
    --lat-rate) LAT_RATE="$2"; shift 2 ;;
    --lat-reps) LAT_REPS="$2"; shift 2 ;;
    --tput-reps) TPUT_REPS="$2"; shift 2 ;;
    --floor-reps) FLOOR_REPS="$2"; shift 2 ;;
    --hub-toml) HUB_TOML="$2"; shift 2 ;;
    --tput-events) TPUT_EVENTS="$2"; shift 2 ;;
    --ingest-events) INGEST_EVENTS="$2"; shift 2 ;;
    --ingest-s) INGEST_S="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --mqtt-url) MQTT_URL="$2"; shift 2 ;;
    --pg-url) PG_URL="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$REPO/bench/results/bridges-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
TAG="b$$x$(date +%s)"
HUB_URL="http://127.0.0.1:$PORT"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates || echo ' (+ uncommitted changes)')"
  echo "machine: $(nproc) cores, $(uptime)"
  echo "command: bench/bridges.sh --sources \"$SOURCES\" --subs $SUBS --lat-events $LAT_EVENTS --lat-rate $LAT_RATE --lat-reps $LAT_REPS --tput-reps $TPUT_REPS --floor-reps $FLOOR_REPS --pg-url '$PG_URL' --hub-toml '$HUB_TOML' --tput-events $TPUT_EVENTS --ingest-events $INGEST_EVENTS --ingest-s $INGEST_S --batch $BATCH"
} >"$OUT/run.txt"

# MQTT: unless --mqtt-url names a broker, a mosquitto of the run's own on $MQTT_PORT whose
# queue per client holds a whole run (max_queued_messages; the default of 1,000 drops the rest
# of a flat-out run) and which lets a batch's worth be in flight to the bridge at once
# (max_inflight_messages, default 20).
MOSQUITTO_PID=""
if [[ " $SOURCES " == *" mqtt "* && -z "$MQTT_URL" ]]; then
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages %s\n' \
    "$MQTT_PORT" 500 >"$OUT/mosquitto.conf"
  mosquitto -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
  MOSQUITTO_PID=$!
  wait_port "$MQTT_PORT" 10 || log "mosquitto did not open $MQTT_PORT; see $OUT/mosquitto.log"
  echo "mqtt: mosquitto -c $OUT/mosquitto.conf ($(tr '\n' ';' <"$OUT/mosquitto.conf"))" >>"$OUT/run.txt"
fi
MQTT_URL="${MQTT_URL:-mqtt://127.0.0.1:$MQTT_PORT}"

# The source's URL, its target (channel/table/subject/key/queue/topic) and the [[bridge]] table.
source_of() { # SOURCE → sets URL TARGET STREAM BRIDGE_TOML
  local s=$1 name="bench_$s"
  STREAM=""
  case "$s" in
    pg-notify) URL=$PG_URL; TARGET="ssehub_bench_${TAG}"
      BRIDGE_TOML="kind = \"postgres-listen\"
url = \"$URL\"
channels = [\"$TARGET\"]
topic = \"t0\"" ;;
    pg-outbox) URL=$PG_URL; TARGET="ssehub_bench_${TAG}_outbox"
      BRIDGE_TOML="kind = \"postgres-outbox\"
url = \"$URL\"
table = \"$TARGET\"" ;;
    nats) URL=$NATS_URL; TARGET="ssehub_bench.$TAG"
      BRIDGE_TOML="kind = \"nats\"
url = \"$URL\"
channels = [\"$TARGET\"]
topic = \"t0\"" ;;
    jetstream) URL=$NATS_URL; TARGET="ssehub_bench_js.$TAG"; STREAM="SSEHUB_BENCH_$TAG"
      BRIDGE_TOML="kind = \"jetstream\"
url = \"$URL\"
channels = [\"$STREAM\"]
consumer = \"bench_$TAG\"
topic = \"t0\"" ;;
    redis-pubsub) URL=$REDIS_URL; TARGET="ssehub_bench_$TAG"
      BRIDGE_TOML="kind = \"redis-pubsub\"
url = \"$URL\"
channels = [\"$TARGET\"]
topic = \"t0\"" ;;
    redis-stream) URL=$REDIS_URL; TARGET="ssehub_bench_stream_$TAG"
      BRIDGE_TOML="kind = \"redis-stream\"
url = \"$URL\"
channels = [\"$TARGET\"]
group = \"ssehub_bench\"
consumer = \"hub\"
topic = \"{topic}\"" ;;
    amqp) URL=$AMQP_URL; TARGET="ssehub_bench_$TAG"
      BRIDGE_TOML="kind = \"amqp\"
url = \"$URL\"
channels = [\"$TARGET\"]
topic = \"t0\"" ;;
    mqtt) URL=$MQTT_URL; TARGET="ssehub_bench/$TAG"
      BRIDGE_TOML="kind = \"mqtt\"
url = \"$URL\"
channels = [\"$TARGET\"]
consumer = \"ssehub-bench-$TAG\"
topic = \"t0\"" ;;
    baseline) URL=""; TARGET=""; BRIDGE_TOML="" ;;
    *) log "unknown source $s"; return 1 ;;
  esac
  [[ -n "$BRIDGE_TOML" ]] && BRIDGE_TOML="[[bridge]]
name = \"$name\"
$BRIDGE_TOML"
  return 0
}

HUB_PID=""
start_hub() { # SOURCE
  local dir="$RUN_DIR/bridges-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s/data"\n%s\n%s\n' "$PORT" "$dir" "$HUB_TOML" "$BRIDGE_TOML" >"$dir/ssehub.toml"
  setsid "$SSEHUB" serve --config "$dir/ssehub.toml" >"$dir/out.log" 2>&1 &
  HUB_PID=$!
  wait_port "$PORT" 30 || { log "hub did not open $PORT; see $dir/out.log"; return 1; }
  if [[ -n "$BRIDGE_TOML" ]]; then
    local i
    for ((i = 0; i < 100; i++)); do
      curl -s "$HUB_URL/metrics" | grep -q '^ssehub_bridge_up{.*} 1' && return 0
      sleep 0.1
    done
    log "bridge not up after 10 s; see $dir/out.log"
    return 1
  fi
}
stop_hub() {
  [[ -n "$HUB_PID" ]] || return 0
  kill "$HUB_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$HUB_PID" 2>/dev/null
  HUB_PID=""
}
published() { curl -s "$HUB_URL/metrics" | awk '/^ssehub_bridge_published_total/ {s += $NF} END {print s + 0}'; }
# Until the bridge's count stands still for a second (at most 60 s): no backlog between runs.
settle() {
  local a b i
  a=$(published)
  for ((i = 0; i < 60; i++)); do sleep 1; b=$(published); [[ "$a" == "$b" ]] && return; a=$b; done
}

run_gen() { # SOURCE RUN ARGS...
  local s=$1 run=$2; shift 2
  local src=()
  [[ "$s" != baseline ]] && src=(--source "$s" --source-url "$URL" --source-target "$TARGET" --source-batch "$BATCH" --metrics-url "$HUB_URL/metrics")
  local cmd=("$GEN" fanout --label "$s" --sub-url "$HUB_URL/events/{topic}" --pub-url "$HUB_URL/publish"
    --hub-pid "$HUB_PID" --drain-timeout 90 --json "$OUT/$s.$run.json" "${src[@]}" "$@")
  echo "$s.$run: ${cmd[*]}" >>"$OUT/run.txt"
  log "$s $run"
  timeout 300 "${cmd[@]}" >/dev/null 2>"$OUT/$s.$run.log" || log "$s $run failed (see $OUT/$s.$run.log)"
}

# The source alone (ssehub-bench source-floor: the same producer, a bare consumer of the
# bridge's client crate, no hub), where the generator has a bare consumer: --ingest-events
# messages flat out, --floor-reps times; then --lat-events at --lat-rate/s, --lat-reps times
# (the latency floor). JetStream gets a stream of its own (the bridge's would replay), the
# outbox a table of its own.
floor() { # SOURCE
  local s=$1 url=$URL target=$TARGET stream="" batch=$BATCH rep
  case "$s" in
    pg-notify | nats) ;;
    pg-outbox) target="${TARGET}_floor"
      "$GEN" source-admin setup --source "$s" --source-url "$url" --source-target "$target" ||
        { log "$s floor: setup failed"; return; } ;;
    jetstream) target="ssehub_bench_jsf.$TAG"; stream="SSEHUB_BENCH_FLOOR_$TAG"; batch=500
      "$GEN" source-admin setup --source "$s" --source-url "$url" --source-target "$target" --stream "$stream" ||
        { log "$s floor: setup failed"; return; } ;;
    *) return ;;
  esac
  local base=("$GEN" source-floor --source "$s" --source-url "$url" --source-target "$target"
    --stream "$stream" --source-batch "$batch")
  floor_run() { # NAME ARGS...
    local name=$1; shift
    echo "$s.$name: ${base[*]} $*" >>"$OUT/run.txt"
    log "$s $name"
    timeout 300 "${base[@]}" "$@" >"$OUT/$s.$name.json" 2>"$OUT/$s.$name.log" ||
      log "$s $name failed (see $OUT/$s.$name.log)"
  }
  for ((rep = 1; rep <= FLOOR_REPS; rep++)); do
    floor_run "floor.$rep" -m "$INGEST_EVENTS" --timeout "$INGEST_S"
  done
  for ((rep = 1; rep <= LAT_REPS; rep++)); do
    floor_run "latfloor.$rep" -m "$LAT_EVENTS" --rate "$LAT_RATE" --timeout 30
  done
  if [[ -n "$stream" || "$s" == pg-outbox ]]; then
    "$GEN" source-admin teardown --source "$s" --source-url "$url" --source-target "$target" --stream "$stream" --bridge "floor" ||
      log "$s floor: teardown failed"
  fi
}

for s in baseline $SOURCES; do
  source_of "$s" || continue
  if [[ "$s" != baseline ]]; then
    "$GEN" source-admin setup --source "$s" --source-url "$URL" --source-target "$TARGET" --stream "$STREAM" ||
      { log "$s: setup failed"; continue; }
  fi
  if start_hub "$s"; then
    # Baseline publishes on 16 connections flat out (each POST waits for the durable append).
    for ((rep = 1; rep <= LAT_REPS; rep++)); do
      run_gen "$s" "latency.$rep" -n "$SUBS" -m "$LAT_EVENTS" -r "$LAT_RATE" --pub-conns 1
      settle
    done
    for ((rep = 1; rep <= TPUT_REPS; rep++)); do
      run_gen "$s" "throughput.$rep" -n "$SUBS" -m "$TPUT_EVENTS" -r 0 --pub-conns 16
      settle
    done
    # Sent in well under a second by most producers; the hub gets --ingest-s to take them.
    for ((rep = 1; rep <= TPUT_REPS; rep++)); do
      run_gen "$s" "ingest.$rep" -n 0 -m "$INGEST_EVENTS" -r 0 --pub-conns 16 --drain-timeout "$INGEST_S"
      settle
    done
    curl -s "$HUB_URL/metrics" | grep '^ssehub_bridge' >"$OUT/$s.metrics.txt"
  fi
  stop_hub
  floor "$s"
  if [[ "$s" != baseline ]]; then
    "$GEN" source-admin teardown --source "$s" --source-url "$URL" --source-target "$TARGET" --stream "$STREAM" --bridge "bench_$s" ||
      log "$s: teardown failed"
  fi
done
[[ -n "$MOSQUITTO_PID" ]] && kill "$MOSQUITTO_PID"
python3 "$REPO/bench/bridges_report.py" "$OUT" | tee "$OUT/results.md"
log "results in $OUT"
