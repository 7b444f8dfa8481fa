#!/usr/bin/env bash
# Tests of the JavaScript client: the parser against the shared SSE vectors, the client in
# Node and its browser build in headless Chromium, each against a real hub binary
# (SSEHUB_BIN, default target/debug/ssehub, built when missing). Dev dependencies come from
# the committed package-lock.json (npm ci).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if ! command -v node >/dev/null 2>&1; then
  echo "clients/js: node (>= 20) is missing; install with: apt-get install -y nodejs npm" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "clients/js: /usr/bin/chromium is missing; install with: apt-get install -y chromium" >&2
  exit 1
fi
export SSEHUB_BIN="${SSEHUB_BIN:-$root/target/debug/ssehub}"
case "$SSEHUB_BIN" in /*) ;; *) SSEHUB_BIN="$root/$SSEHUB_BIN" ;; esac
if [ ! -x "$SSEHUB_BIN" ]; then
  (cd "$root" && cargo build -p ssehub-cli)
fi

npm ci --no-audit --no-fund --loglevel=error >/dev/null
exec timeout --kill-after=10 "${CLIENT_JS_TIMEOUT:-600}" npm test --silent -- "$@"
