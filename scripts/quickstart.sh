#!/usr/bin/env bash
# One command from a fresh Debian 12 (as root) to a running sensor:
#   bash scripts/quickstart.sh [-- CMD [ARGS...]]
# Installs packages, builds deps/addon/TypeScript, prints the probe table, then
# runs CMD under `witness run` (default: a small demo workload).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (the sensor loads eBPF programs)" >&2; exit 1; }
export npm_config_nodedir=/usr

bash scripts/setup-host.sh
bash scripts/build-deps.sh
npm ci --no-audit --no-fund
npm run build:native
npx tsc -p tsconfig.json
node bin/witness.js probe | head -5

[ "${1:-}" = "--" ] && shift
if [ $# -eq 0 ]; then
  set -- sh -c 'echo witness > /tmp/agent-witness-demo; cat /etc/shadow >/dev/null; rm /tmp/agent-witness-demo'
fi
exec node bin/witness.js run -- "$@"
