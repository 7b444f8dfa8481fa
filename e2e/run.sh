#!/usr/bin/env bash
# Runs the browser tests: headless Debian Chromium, driven by playwright-core, against the real
# hub binary ($SSEHUB_BIN, default target/debug/ssehub; build it first with
# `cargo build -p ssehub-cli`). E2E_TIMEOUT (seconds, default 300) bounds the whole run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if [ ! -x /usr/bin/chromium ]; then
  echo "e2e: /usr/bin/chromium is missing; install with: apt-get install -y chromium" >&2
  exit 1
fi
bin="$(cd .. && realpath -m "${SSEHUB_BIN:-target/debug/ssehub}")"
if [ ! -x "$bin" ]; then
  echo "e2e: hub binary $bin is missing; build it with: cargo build -p ssehub-cli" >&2
  exit 1
fi
export SSEHUB_BIN="$bin"

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
else
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi

# One test file at a time: the machine has two cores and each file runs a browser and a hub.
exec timeout --kill-after=10 "${E2E_TIMEOUT:-300}" \
  node --test --test-concurrency=1 --test-timeout=120000 ./*.test.js
