#!/usr/bin/env bash
# The test command (`npm test`): compile, run every suite, print one plain
# summary line. With WITNESS_REQUIRE_KERNEL=1 (CI) a skipped real-kernel test
# is a failure: a kernel suite that skipped proves nothing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The Node the quick start set up (.node/bin first on PATH); an unsupported Node stops here
# with one line naming the version it needs, before vitest dies on a missing node:util API.
source scripts/node-env.sh
npx tsc -p tsconfig.json || { echo "tests: typecheck failed"; exit 1; }
# the thin `witness run` client's bundle, as `npm run build:ts` makes it: the suites run what a user runs
node scripts/bundle-thin.mjs || { echo "tests: the thin client's bundle failed"; exit 1; }
mkdir -p .test-results
report=.test-results/vitest.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
node scripts/test-summary.mjs "$report" || rc=1
exit $rc
