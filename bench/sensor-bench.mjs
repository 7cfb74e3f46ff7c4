#!/usr/bin/env node
// npm run bench: an openat storm in a traced child, drained three ways in the
// same run — bare workload (no sensor), the C consumer (the ceiling: same BPF
// object, same loader, records only counted), and the Node addon decoding
// into typed TS events. Prints figures and ratios; asserts nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const cBin = join(root, 'build-c', 'witness-c');
const storm = join(root, 'build-c', 'storm');

execFileSync('make', ['-s', '-C', join(root, 'native')], { stdio: 'inherit' });
execFileSync('cc', ['-O2', '-o', storm, join(root, 'bench', 'storm.c')]);
if (!existsSync(join(root, 'dist', 'sensor', 'sensor.js'))) execFileSync('npx', ['tsc', '-p', root], { stdio: 'inherit' });
const { WitnessSensor } = await import(join(root, 'dist', 'sensor', 'sensor.js'));

// A closed sensor's tracepoints are detached by the kernel in the background
// for a second or two (an RCU wait each); measuring during that pollutes the
// next figure, so every measurement starts after a pause.
const settle = () => new Promise((r) => setTimeout(r, Number(process.env.BENCH_SETTLE_MS ?? 3000)));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (n, s) => `${(n / s / 1e6).toFixed(3)}M/s`;

function bare() {
  const t0 = process.hrtime.bigint();
  spawnSync(storm, [String(N)]);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function cDrain(mode, ringMb) {
  // no fairness budget: the storm repeats one path, and the drain is what is measured
  const out = execFileSync(cBin, [mode, storm, String(N)], { env: { ...process.env, WITNESS_RING_MB: String(ringMb), WITNESS_BUDGET_EVENTS: '0' } });
  return JSON.parse(out.toString());
}

/** The storm NOT traced while the sensor is loaded: what every other process on the host pays. */
async function untracedWhileLoaded() {
  let events = 0;
  const t0 = process.hrtime.bigint();
  const sensor = WitnessSensor.open({ onEvent: () => { events++; } });
  const openS = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = bare();
  await sensor.close();
  return { seconds: s, openS, events };
}

/** Live: the storm runs while Node drains. Pre-filled: Node starts after the storm is over. */
async function nodeDrain(prefill) {
  let events = 0;
  let lastAt = 0n;
  const sensor = WitnessSensor.open({
    onEvent: () => { events++; lastAt = process.hrtime.bigint(); },
    ringBytes: prefill ? 256 << 20 : 64 << 20,
    batchBytes: 4 << 20,
    autoStart: !prefill,
    budgetEvents: 0,
  });
  const t0 = process.hrtime.bigint();
  const child = sensor.spawnTraced(storm, [String(N)], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  const drainStart = process.hrtime.bigint();
  if (prefill) sensor.start();
  // +3: the storm's own exec, a libuv /dev/null open, and its exit
  while (events < N + 3 && process.hrtime.bigint() - drainStart < 20_000_000_000n) await new Promise((r) => setTimeout(r, 1));
  const stats = await sensor.close();
  const from = prefill ? drainStart : t0;
  return { events, seconds: Number(lastAt - from) / 1e9, dropped: stats.droppedTotal, decodeErrors: stats.decodeErrors };
}

/** The default fairness budget on: the storm is one path repeated, so past the budget it is counted, not written. */
async function nodeBudget() {
  let events = 0;
  const sensor = WitnessSensor.open({ onEvent: (e) => { if (e.kind !== 'suppressed') events++; }, ringBytes: 64 << 20, batchBytes: 4 << 20 });
  const t0 = process.hrtime.bigint();
  const child = sensor.spawnTraced(storm, [String(N)], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const stats = await sensor.close();
  return { seconds, events, suppressed: stats.kernelSuppressed.file_write, summarized: stats.suppressedSummarized.file_write ?? 0, dropped: stats.droppedTotal };
}

const rows = [];
for (let i = 0; i < RUNS; i++) {
  const row = {};
  await settle(); row.bare = bare();
  await settle(); row.untraced = await untracedWhileLoaded();
  await settle(); row.c = cDrain('drain', 64);
  await settle(); row.node = await nodeDrain(false);
  await settle(); row.cPre = cDrain('drain-prefilled', 256);
  await settle(); row.nodePre = await nodeDrain(true);
  await settle(); row.budget = await nodeBudget();
  rows.push(row);
}

const bareS = median(rows.map((r) => r.bare));
const cS = median(rows.map((r) => r.c.seconds));
const nodeS = median(rows.map((r) => r.node.seconds));
const cPreS = median(rows.map((r) => r.cPre.seconds));
const nodePreS = median(rows.map((r) => r.nodePre.seconds));
const drops = (k) => rows.reduce((a, r) => a + (r[k].dropped ?? 0), 0);
const untracedS = median(rows.map((r) => r.untraced.seconds));
const budgetS = median(rows.map((r) => r.budget.seconds));
const lines = [
  `bench: ${N} opens of /dev/null for write per run, ${RUNS} runs, medians`,
  `  bare workload (no sensor)        ${bareS.toFixed(3)}s  ${rate(N, bareS)}`,
  `  untraced, sensor loaded          ${untracedS.toFixed(3)}s  ${rate(N, untracedS)}  ${(untracedS / bareS).toFixed(3)}x bare  events=${rows.reduce((a, r) => a + r.untraced.events, 0)}`,
  `  sensor open (load + attach)      ${median(rows.map((r) => r.untraced.openS)).toFixed(3)}s`,
  `  traced, C consumer (ceiling)     ${cS.toFixed(3)}s  ${rate(rows[0].c.records, cS)}  drops=${drops('c')}  workload slowdown ${(cS / bareS).toFixed(2)}x`,
  `  traced, Node → typed TS events   ${nodeS.toFixed(3)}s  ${rate(N, nodeS)}  drops=${drops('node')}  decode_errors=${rows.reduce((a, r) => a + r.node.decodeErrors, 0)}`,
  `  ratio Node / C ceiling           ${(cS / nodeS).toFixed(3)}`,
  `  pre-filled ring, C drain         ${cPreS.toFixed(4)}s  ${rate(rows[0].cPre.records, cPreS)}  drops=${drops('cPre')}`,
  `  pre-filled ring, Node drain      ${nodePreS.toFixed(4)}s  ${rate(N, nodePreS)}  drops=${drops('nodePre')}`,
  `  ratio Node / C (pre-filled)      ${(cPreS / nodePreS).toFixed(3)}`,
  `  traced, default budget (Node)    ${budgetS.toFixed(3)}s  workload slowdown ${(budgetS / bareS).toFixed(2)}x  ` +
    `written=${rows[0].budget.events} suppressed=${rows[0].budget.suppressed} summarized=${rows[0].budget.summarized} drops=${drops('budget')}`,
  `  ratio budget / no budget (Node)  ${(budgetS / nodeS).toFixed(3)}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
