#!/usr/bin/env node
// Reads vitest's JSON report; prints "tests: N passed, N failed, N skipped".
// Exits 1 when nothing ran, or when WITNESS_REQUIRE_KERNEL=1 and a test under
// test/kernel/ did not run.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`tests: no report at ${file} (${err.message})`);
  process.exit(1);
}
let passed = 0, failed = 0, skipped = 0;
const kernelSkipped = [];
for (const suite of report.testResults ?? []) {
  const isKernel = /\/test\/kernel\//.test(suite.name);
  for (const t of suite.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else {
      skipped++;
      if (isKernel) kernelSkipped.push(`${suite.name.replace(/.*\/test\//, 'test/')}: ${t.fullName}`);
    }
  }
  if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) failed++; // a file that failed to load
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
let bad = failed > 0 || passed === 0;
if (process.env.WITNESS_REQUIRE_KERNEL === '1' && kernelSkipped.length > 0) {
  console.log(`real-kernel tests were skipped but WITNESS_REQUIRE_KERNEL=1:\n  ${kernelSkipped.join('\n  ')}`);
  bad = true;
}
process.exit(bad ? 1 : 0);
