#!/usr/bin/env bash
# The quick start, from a fresh Debian 12 or 13 (as root), in one command:
#   bash scripts/quickstart.sh                 set up, then the host-wide daemon on the embedded
#                                              default (SQLite store + signed ledger in the state
#                                              dir, NDJSON on stdout; Ctrl-C stops it cleanly)
#   bash scripts/quickstart.sh --test          set up, plus the test-only packages, then the tests
#   bash scripts/quickstart.sh -- CMD [ARGS]   set up, then trace one command tree (witness run)
# Set up = Debian packages (scripts/apt-packages.txt; --test adds apt-packages-test.txt), a
# supported Node (scripts/setup-node.sh), PIC static deps, npm ci, the addon, the TypeScript.
# Every step is skipped when its inputs are unchanged, so a second run goes straight to the
# daemon, the command or the tests. Long steps print a progress line every 15 s; their output
# is in .quickstart-logs/.
#                                              as an unprivileged user: $WITNESS_AGENT_USER, else
#                                              the sudo caller, else nobody (never root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (the sensor loads eBPF programs)" >&2; exit 1; }
mode=daemon
case "${1:-}" in
  --test) mode=test; shift ;;
  --) mode=run; shift; [ $# -gt 0 ] || { echo "quickstart: -- needs a command" >&2; exit 2; } ;;
  "") ;;
  *) echo "usage: bash scripts/quickstart.sh [--test [VITEST ARGS] | -- CMD [ARGS]]" >&2; exit 2 ;;
esac
source scripts/progress.sh

started=$SECONDS
if [ "$mode" = test ]; then run_step packages bash scripts/setup-host.sh --test; else run_step packages bash scripts/setup-host.sh; fi
run_step node bash scripts/setup-node.sh
source scripts/node-env.sh
run_step deps bash scripts/build-deps.sh
run_step npm-ci bash scripts/npm-ci.sh
run_step addon bash scripts/build-native.sh --if-changed
run_step tsc bash scripts/build-ts.sh --if-changed
echo "quickstart: set up in $((SECONDS - started))s (node $(node --version), $(command -v node))" >&2

[ "$mode" = test ] && exec bash scripts/test.sh "$@"
probe=$(node bin/witness.js probe) || { echo "$probe"; echo "quickstart: witness probe: the core probes did not attach (table above)" >&2; exit 1; }
head -n 5 <<<"$probe"  # not a pipe: under set -o pipefail, head closing early could SIGPIPE echo and end the quick start
if [ "$mode" = run ]; then
  agent_user=${WITNESS_AGENT_USER:-${SUDO_USER:-nobody}}
  [ "$agent_user" = root ] && agent_user=nobody
  echo "quickstart: tracing $1 as $agent_user (the agent must not be able to touch the witness)" >&2
  exec node bin/witness.js run --user "$agent_user" -- "$@"
fi
echo "quickstart: host-wide daemon; state in ${WITNESS_STATE_DIR:-/var/lib/agent-witness}; Ctrl-C to stop" >&2
exec node bin/witness.js daemon --config deploy/quickstart.json
