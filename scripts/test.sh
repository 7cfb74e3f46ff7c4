#!/usr/bin/env bash
# The test command (`npm test`): compile, run every suite, print one plain
# summary line. With WITNESS_REQUIRE_KERNEL=1 (CI) a skipped real-kernel test
# is a failure: a kernel suite that skipped proves nothing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
npx tsc -p tsconfig.json || { echo "tests: typecheck failed"; exit 1; }
mkdir -p .test-results
report=.test-results/vitest.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
node scripts/test-summary.mjs "$report" || rc=1
exit $rc
