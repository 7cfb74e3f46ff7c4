#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ (compiled from src/ by `npm run build`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`witness: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
