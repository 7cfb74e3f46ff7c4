#!/usr/bin/env bash
# One command from a fresh Debian 12 (as root) to a running sensor:
#   bash scripts/quickstart.sh                 host-wide daemon on the embedded default
#   bash scripts/quickstart.sh -- CMD [ARGS]   trace one command tree with `witness run`, as an
#                                              unprivileged user: $WITNESS_AGENT_USER, else the
#                                              sudo caller, else nobody (never root)
# Installs packages, builds deps/addon/TypeScript, prints the probe table, then
# runs the daemon (SQLite store + signed ledger in the state dir, NDJSON on
# stdout; Ctrl-C stops it cleanly) or CMD under `witness run`.
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
  echo "quickstart: host-wide daemon; state in ${WITNESS_STATE_DIR:-/var/lib/agent-witness}; Ctrl-C to stop" >&2
  exec node bin/witness.js daemon --config deploy/quickstart.json
fi
agent_user=${WITNESS_AGENT_USER:-${SUDO_USER:-nobody}}
[ "$agent_user" = root ] && agent_user=nobody
echo "quickstart: tracing $1 as $agent_user (the agent must not be able to touch the witness)" >&2
exec node bin/witness.js run --user "$agent_user" -- "$@"
