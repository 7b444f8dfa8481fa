#!/usr/bin/env bash
# Runs every test of ssehub: the Rust unit, conformance and integration tests (each against a
# real hub on an ephemeral port), then the browser tests in headless Chromium against the
# real binary. This is the README's test command; CI runs it through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doc tests.
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
SSEHUB_BIN=target/debug/ssehub bash e2e/run.sh
bash clients/python/run-tests.sh
bash clients/js/run-tests.sh
