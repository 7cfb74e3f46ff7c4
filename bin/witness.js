#!/usr/bin/env node
'use strict';
// The CLI lives in dist/ (compiled from src/ by `npm run build`). This launcher is CommonJS
// (bin/package.json) so that `witness run` through a daemon never starts Node's ES module
// loader (~8 ms of every call, docs/resident.md): it loads the thin client's CommonJS bundle
// (dist/cli/run-thin.cjs, scripts/bundle-thin.mjs) while dist/cli/run-thin.json still names
// every module it was made from at the size and mtime it was made from (any tsc since rewrites
// them: a stale bundle never runs). Every other command, and `run` without a current bundle,
// goes through dist/cli/main.js.
const { readFileSync, statSync } = require('node:fs');
const { join } = require('node:path');

const dist = join(__dirname, '..', 'dist');
const argv = process.argv.slice(2);

function thinBundleIsCurrent() {
  try {
    const { bundled } = JSON.parse(readFileSync(join(dist, 'cli', 'run-thin.json'), 'utf8'));
    return bundled.length > 0 && bundled.every(([rel, size, mtimeMs]) => {
      const st = statSync(join(dist, rel));
      return st.size === size && st.mtimeMs === mtimeMs;
    });
  } catch {
    return false; // no bundle (no bundler installed), or not readable: the modules
  }
}

const entry = argv[0] === 'run' && thinBundleIsCurrent()
  ? Promise.resolve(require(join(dist, 'cli', 'run-thin.cjs')))
  : import('../dist/cli/main.js');
entry.then((m) => m.main(argv)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`witness: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
