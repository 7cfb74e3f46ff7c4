#!/usr/bin/env bash
# TypeScript into dist/ (tsc -p tsconfig.json). `npm run prepare` and the quick start use it
#   --if-changed  skip when src/, tsconfig.json and the lockfile are what dist/ was built from
#                 (a no-op tsc costs ~25 s on 2 cores; the quick start's second run should not).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stamp_file=dist/.inputs-sha256
inputs_hash() {
  { find src -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum tsconfig.json package-lock.json; } |
    sha256sum | cut -d' ' -f1
}
want=$(inputs_hash)
if [[ ${1:-} == --if-changed && -f $stamp_file && $(cat "$stamp_file") == "$want" ]]; then
  echo "tsc: dist/ is current (src/ unchanged); not recompiled"
  exit 0
fi
rm -f "$stamp_file"
npx tsc -p tsconfig.json
# the thin `witness run` client as one module (skipped without rolldown; main.js checks it is current)
node scripts/bundle-thin.mjs
echo "$want" >"$stamp_file"
echo "tsc: compiled src/ into dist/"
