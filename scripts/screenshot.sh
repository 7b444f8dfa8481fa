#!/usr/bin/env bash
# Regenerates docs/dashboard.png, the README's picture of the built-in page: starts the hub
# (`ssehub serve --demo` on a temporary data dir, $SSEHUB_BIN or target/debug/ssehub),
# drives a minute of varying load and takes the picture in headless Debian Chromium.
# Needs what the browser tests need (e2e/run.sh): /usr/bin/chromium and node.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "screenshot: /usr/bin/chromium is missing; install with: apt-get install -y chromium" >&2
  exit 1
fi
if [ -z "${SSEHUB_BIN:-}" ]; then
  cargo build -p ssehub-cli
  export SSEHUB_BIN=target/debug/ssehub
fi
(cd e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
exec node scripts/screenshot.js
