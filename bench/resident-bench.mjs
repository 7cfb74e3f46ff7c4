#!/usr/bin/env node
// npm run bench:resident: what one `witness run -- /bin/true` costs, with and
// without a running daemon (docs/resident.md), against bare node in the same
// run. Wall time per call, median of BENCH_RUNS; prints figures and ratios,
// asserts nothing. Needs root (the daemon loads the probes once, up front).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin', 'witness.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 11);
const dir = mkdtempSync(join(tmpdir(), 'witness-resident-bench-'));
const sock = join(dir, 'resident.sock');
const state = join(dir, 'state');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (s) => `${(s * 1000).toFixed(1)} ms`;

function timed(cmd, args, env = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env: { ...process.env, WITNESS_STATE_DIR: state, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return s;
}

/** Alternating rounds, so a load change on this shared machine hits every row alike. */
function measure(rows) {
  const times = rows.map(() => []);
  for (let i = 0; i < RUNS; i++) rows.forEach((r, j) => times[j].push(timed(...r.cmd)));
  return rows.map((r, j) => ({ name: r.name, s: median(times[j]) }));
}

const importAll = (files) => files.map((f) => `await import(${JSON.stringify(join(root, 'dist', 'cli', f))});`).join(' ');
const run = (extra, env) => [process.execPath, [BIN, 'run', '--user', 'nobody', '--json', ...extra, '--', '/bin/true'], env];
writeFileSync(join(dir, 'w.json'), JSON.stringify({
  stateDir: join(dir, 'daemon-state'), scopeSocket: join(dir, 'scope.sock'),
  store: { enabled: false }, pulse: { enabled: false }, ledger: { enabled: false },
}));
const daemon = spawn(process.execPath, [BIN, 'daemon', '--config', join(dir, 'w.json')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '' } });
let err = '';
daemon.stderr.on('data', (d) => { err += d; });
try {
  for (let i = 0; i < 600 && !err.includes('resident socket listening'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(sock)) throw new Error(`the daemon did not open its resident socket:\n${err}`);
  const on = { WITNESS_RESIDENT: 'on', WITNESS_RESIDENT_SOCKET: sock };
  const rows = measure([
    { name: 'bare node (node -e 0)', cmd: [process.execPath, ['-e', '0']] },
    { name: 'bare node spawning /bin/true', cmd: [process.execPath, ['-e', "require('child_process').spawnSync('/bin/true')"]] },
    // what `witness run` loads before it knows whether a daemon records the run, and what the own sensor adds
    { name: 'thin client import floor (run-entry + run-resident)', cmd: [process.execPath, ['--input-type=module', '-e', importAll(['main.js', 'run-entry.js', 'run-resident.js'])]] },
    { name: 'own-sensor import floor (+ dist/cli/run.js)', cmd: [process.execPath, ['--input-type=module', '-e', importAll(['main.js', 'run-entry.js', 'run.js'])]] },
    { name: 'witness run, daemon (resident)', cmd: run([], on) },
    { name: 'witness run, own sensor (standalone)', cmd: run(['--no-resident'], on) },
    { name: 'witness run --no-ledger, daemon', cmd: run(['--no-ledger'], on) },
    { name: 'witness run --no-ledger, own sensor', cmd: run(['--no-ledger', '--no-resident'], on) },
  ]);
  const bare = rows[0].s;
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`witness run -- /bin/true: median of ${RUNS} runs each, alternating; load average ${load} (2 cores, shared)`);
  for (const r of rows) console.log(`  ${r.name.padEnd(40)} ${ms(r.s).padStart(10)}   ${(r.s / bare).toFixed(2)}× bare node   ${r.s === bare ? '' : `+${ms(r.s - bare)}`}`);
  const res = rows.find((r) => r.name.startsWith('witness run, daemon')).s;
  const own = rows.find((r) => r.name.startsWith('witness run, own')).s;
  console.log(`  resident saves ${ms(own - res)} per call (${(own / res).toFixed(2)}× faster); target: ≤ 50 ms over bare node, measured +${ms(res - bare)}`);
  const beat = readFileSync('/proc/loadavg', 'utf8').trim();
  console.log(`  /proc/loadavg after: ${beat}`);
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
