#!/usr/bin/env bash
# Tests of the Python client against a real hub: a venv in clients/python/.venv (installs
# python3-venv when the venv module is missing), the package with its test extras, pytest.
# SSEHUB_BIN names the hub binary (default target/debug/ssehub, built when missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  rm -rf .venv
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q "$here[test]"

export SSEHUB_BIN="${SSEHUB_BIN:-$root/target/debug/ssehub}"
case "$SSEHUB_BIN" in /*) ;; *) SSEHUB_BIN="$root/$SSEHUB_BIN" ;; esac
if [ ! -x "$SSEHUB_BIN" ]; then
  (cd "$root" && cargo build -p ssehub-cli)
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
