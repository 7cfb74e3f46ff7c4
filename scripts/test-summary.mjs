#!/usr/bin/env node
// Reads vitest's JSON report; prints "tests: N passed, N failed, N skipped".
// Exits 1 when nothing ran, or when WITNESS_REQUIRE_KERNEL=1 (CI, as root) and
// any test did not run: real-kernel suites under test/kernel/ and root-only
// suites elsewhere (sockets, permissions, cgroups) alike. The only skips CI
// tolerates are the optional-tool tests listed in OPTIONAL below, each of
// which has its own switch to make the tool mandatory.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`tests: no report at ${file} (${err.message})`);
  process.exit(1);
}
// file (relative to test/) → why a skip there is not a lost guarantee
const OPTIONAL = new Map([
  ['test/daemon-systemd.test.ts', 'systemd-analyze absent (WITNESS_REQUIRE_SYSTEMD=1 makes it mandatory)'],
  ['test/pulse-digest.test.ts', 'chromium absent (CI=true makes it mandatory)'],
]);
let passed = 0, failed = 0, skipped = 0;
const requiredSkipped = [];
for (const suite of report.testResults ?? []) {
  const rel = suite.name.replace(/.*\/test\//, 'test/');
  const optional = OPTIONAL.has(rel);
  for (const t of suite.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else {
      skipped++;
      if (!optional) requiredSkipped.push(`${rel}: ${t.fullName}`);
    }
  }
  if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) failed++; // a file that failed to load
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
let bad = failed > 0 || passed === 0;
if (process.env.WITNESS_REQUIRE_KERNEL === '1' && requiredSkipped.length > 0) {
  console.log(`tests were skipped but WITNESS_REQUIRE_KERNEL=1 (a skipped root-only test proves nothing):\n  ${requiredSkipped.join('\n  ')}`);
  bad = true;
}
process.exit(bad ? 1 : 0);
