#!/usr/bin/env bash
# npm ci, skipped when node_modules/ was installed from this very package-lock.json by this
# Node (native dependencies such as better-sqlite3 are built for one Node ABI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/node-env.sh
stamp_file=node_modules/.ci-inputs-sha256
want=$( { sha256sum package-lock.json; node -p 'process.version + " " + process.versions.modules'; echo "$npm_config_nodedir"; } |
  sha256sum | cut -d' ' -f1)
if [[ -f $stamp_file && $(cat "$stamp_file") == "$want" ]]; then
  echo "npm-ci: node_modules/ matches package-lock.json and Node $(node --version); not reinstalled"
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" >"$stamp_file"
echo "npm-ci: installed node_modules/ from package-lock.json for Node $(node --version)"
