#!/usr/bin/env node
// node bench/net-bench.mjs: what the network-depth probes (read/write/recv/
// send/close hooks) cost processes that are NOT traced, and what a user pays
// for `witness run -- /bin/true`. Every figure is a ratio against a baseline
// measured in the same run; nothing is asserted.
//
//   read/write storm: dd moving 1-byte blocks from /dev/zero to /dev/null,
//   i.e. one read(2) and one write(2) per block: the hottest syscalls on any
//   host, each now hooked at enter and exit.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 500_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
execFileSync('npx', ['tsc', '-p', root], { stdio: 'inherit' });
const { WitnessSensor } = await import(join(root, 'dist', 'sensor', 'sensor.js'));

const settle = () => new Promise((r) => setTimeout(r, Number(process.env.BENCH_SETTLE_MS ?? 3000)));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const secondsOf = (fn) => {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
const storm = () => secondsOf(() => spawnSync('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${BLOCKS}`], { stdio: 'ignore' }));

async function untracedWhileLoaded() {
  const sensor = WitnessSensor.open({ onEvent: () => {} });
  const s = storm();
  await sensor.close();
  return s;
}

function witnessTrue() {
  const dir = mkdtempSync(join(tmpdir(), 'witness-bench-'));
  try {
    return secondsOf(() => spawnSync(process.execPath, [join(root, 'bin', 'witness.js'), 'run', '--user', 'nobody', '--no-ledger', '--out', join(dir, 'out.ndjson'), '--', '/bin/true'], { stdio: 'ignore' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
for (let i = 0; i < RUNS; i++) {
  await settle(); const bare = storm();
  await settle(); const loaded = await untracedWhileLoaded();
  await settle(); const run = witnessTrue();
  rows.push({ bare, loaded, run });
}
const bare = median(rows.map((r) => r.bare));
const loaded = median(rows.map((r) => r.loaded));
process.stdout.write([
  `net-bench: dd ${BLOCKS} x 1-byte read+write, ${RUNS} runs, medians`,
  `  read/write storm, no sensor        ${bare.toFixed(3)}s`,
  `  read/write storm, untraced, loaded ${loaded.toFixed(3)}s  ${(loaded / bare).toFixed(3)}x bare`,
  `  witness run -- /bin/true (wall)    ${median(rows.map((r) => r.run)).toFixed(3)}s`,
].join('\n') + '\n');
