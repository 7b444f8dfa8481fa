#!/usr/bin/env bash
# Install the peers for bench/run-all.sh: Debian packages (nginx-light + nchan, pushpin) and the
# npm packages of the Node peers (express, better-sse). Nothing is started.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v nginx >/dev/null || [[ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] || ! command -v pushpin >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light libnginx-mod-nchan pushpin
fi
(cd "$REPO/bench/peers/node" && npm ci --no-audit --no-fund)
echo "peers installed: $(nginx -v 2>&1), pushpin $(pushpin --version 2>&1 | tail -1), node $(node --version)"
