#!/usr/bin/env node
// npm run bench:resident: what one `witness run -- /bin/true` costs, with and
// without a running daemon (docs/resident.md), against bare node in the same
// run. Wall time per call, median of BENCH_RUNS; prints figures and ratios,
// asserts nothing. Needs root (the daemon loads the probes once, up front).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** CPU seconds (user + system) of a process, and of its children it has reaped: /proc/PID/stat, in clock ticks. */
const TICK = 1 / 100;
function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { own: (Number(f[11]) + Number(f[12])) * TICK, reaped: (Number(f[13]) + Number(f[14])) * TICK };
}

/**
 * Alternating rounds, so a load change on this shared machine hits every row alike. Besides the
 * wall time, the CPU of the command and its children, and the daemon's CPU while the command ran
 * (its host-wide work too: the bare-node row shows that background), summed over the rounds and
 * divided by them: tick-grained (10 ms) per call, but not inflated by waiting for a busy machine.
 */
function measure(rows, daemonPid = null) {
  const times = rows.map(() => []);
  const cpu = rows.map(() => 0);
  const dcpu = rows.map(() => 0);
  for (let i = 0; i < RUNS; i++) {
    rows.forEach((r, j) => {
      const a = cpuOf(process.pid); const da = daemonPid ? cpuOf(daemonPid).own : 0;
      times[j].push(timed(...r.cmd));
      const b = cpuOf(process.pid); const db = daemonPid ? cpuOf(daemonPid).own : 0;
      cpu[j] += b.reaped - a.reaped;
      dcpu[j] += db - da;
    });
  }
  return rows.map((r, j) => ({ name: r.name, s: median(times[j]), cpu: cpu[j] / RUNS, daemon: dcpu[j] / RUNS }));
}

const importAll = (files) => files.map((f) => `await import(${JSON.stringify(join(root, 'dist', 'cli', f))});`).join(' ');
const run = (extra, env) => [process.execPath, [BIN, 'run', '--user', 'nobody', '--json', ...extra, '--', '/bin/true'], env];
/** A daemon of our own on our own socket, nothing exported; `sensor` settings on top of the defaults. */
async function withDaemon(sensor, fn) {
  writeFileSync(join(dir, 'w.json'), JSON.stringify({
    stateDir: join(dir, 'daemon-state'), scopeSocket: join(dir, 'scope.sock'),
    store: { enabled: false }, pulse: { enabled: false }, ledger: { enabled: false }, ...(sensor ? { sensor } : {}),
  }));
  // At debug level the daemon logs each run's phases (resident-server.ts): where its share of a call goes.
  // To a file: the timed calls are synchronous, so a pipe would not be read (and could fill) meanwhile.
  const logFile = join(dir, `daemon-${sensor ? 'tuned' : 'default'}.log`);
  const logFd = openSync(logFile, 'w');
  const daemon = spawn(process.execPath, [BIN, 'daemon', '--config', join(dir, 'w.json')], { stdio: ['ignore', 'ignore', logFd], env: { ...process.env, NOTIFY_SOCKET: '', WITNESS_LOG_LEVEL: 'debug' } });
  closeSync(logFd);
  const err = () => readFileSync(logFile, 'utf8');
  try {
    for (let i = 0; i < 600 && !err().includes('resident socket listening'); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(sock)) throw new Error(`the daemon did not open its resident socket:\n${err()}`);
    const r = await fn({ WITNESS_RESIDENT: 'on', WITNESS_RESIDENT_SOCKET: sock }, daemon.pid);
    const phases = {};
    for (const l of err().split('\n')) {
      if (!l.includes('"resident: ')) continue;
      const o = JSON.parse(l);
      for (const [k, v] of Object.entries(o)) if (k.endsWith('Ms') && typeof v === 'number') ((phases[o.ledger ? 'ledger' : 'no-ledger'] ??= {})[k] ??= []).push(v);
    }
    const names = { openMs: 'session open', startSealMs: 'sensor.start sealed (agent held)', barrierMs: "wait for the guardian's exit record", sealMs: 'session seal' };
    for (const [which, p] of Object.entries(phases)) {
      console.log(`  the daemon's phases per resident call (${which}), medians: ${
        Object.entries(names).filter(([k]) => p[k]).map(([k, n]) => `${n} ${median(p[k]).toFixed(1)} ms`).join('; ')}`);
    }
    return r;
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => (daemon.exitCode === null ? daemon.once('exit', r) : r()));
  }
}

function print(title, rows) {
  const bare = rows[0].s;
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`${title}: median of ${RUNS} runs each, alternating; load average ${load} (2 cores, shared)`);
  console.log(`  ${'command'.padEnd(52)} ${'wall'.padStart(10)}   ${'vs bare'.padEnd(15)} ${'over bare'.padStart(11)}   ${'CPU'.padStart(9)} ${'(vs bare)'.padEnd(9)}  daemon CPU meanwhile`);
  for (const r of rows) {
    console.log(`  ${r.name.padEnd(52)} ${ms(r.s).padStart(10)}   ${`${(r.s / bare).toFixed(2)}× bare node`.padEnd(15)} ${(r.s === bare ? '' : `+${ms(r.s - bare)}`).padStart(11)}   ` +
      `${ms(r.cpu).padStart(9)} ${`(${(r.cpu / rows[0].cpu).toFixed(2)}×)`.padEnd(9)}  ${ms(r.daemon)}`);
  }
}

// what `witness run` loads: the CommonJS bundle while it is current (scripts/bundle-thin.mjs, bin/witness.js checks), else main.js and the modules
const THIN = existsSync(join(root, 'dist', 'cli', 'run-thin.cjs'))
  ? { name: 'thin client import floor (run-thin.cjs bundle)', cmd: [process.execPath, ['-e', `require(${JSON.stringify(join(root, 'dist', 'cli', 'run-thin.cjs'))})`]] }
  : { name: 'thin client import floor (main + run-entry + run-resident)', cmd: [process.execPath, ['--input-type=module', '-e', importAll(['main.js', 'run-entry.js', 'run-resident.js'])]] };
const BARE = { name: 'bare node (node -e 0)', cmd: [process.execPath, ['-e', '0']] };
try {
  await withDaemon(null, (on, daemonPid) => {
    const rows = measure([
      BARE,
      { name: 'bare node spawning /bin/true', cmd: [process.execPath, ['-e', "require('child_process').spawnSync('/bin/true')"]] },
      // what `witness run` loads before it knows whether a daemon records the run, and what the own sensor adds
      THIN,
      { name: 'own-sensor import floor (+ dist/cli/run.js)', cmd: [process.execPath, ['--input-type=module', '-e', importAll(['main.js', 'run-entry.js', 'run.js'])]] },
      { name: 'witness run, daemon (resident)', cmd: run([], on) },
      { name: 'witness run, own sensor (standalone)', cmd: run(['--no-resident'], on) },
      { name: 'witness run --no-ledger, daemon', cmd: run(['--no-ledger'], on) },
      { name: 'witness run --no-ledger, own sensor', cmd: run(['--no-ledger', '--no-resident'], on) },
    ], daemonPid);
    print('witness run -- /bin/true', rows);
    const bare = rows[0].s;
    const res = rows.find((r) => r.name.startsWith('witness run, daemon')).s;
    const own = rows.find((r) => r.name.startsWith('witness run, own')).s;
    console.log(`  resident saves ${ms(own - res)} per call (${(own / res).toFixed(2)}× faster); target: ≤ 50 ms over bare node, measured +${ms(res - bare)}`);
  });
  // The daemon's ring is drained every maxLatencyMs (default 20): the end of a run waits for the guardian's
  // exit record, so that wait is up to one period. A second daemon with a 5 ms period, its own bare baseline.
  await withDaemon({ maxLatencyMs: 5 }, (on, daemonPid) => {
    print('same, daemon with sensor.maxLatencyMs 5', measure([
      BARE,
      { name: 'witness run, daemon (resident)', cmd: run([], on) },
      { name: 'witness run --no-ledger, daemon', cmd: run(['--no-ledger'], on) },
    ], daemonPid));
  });
  console.log(`  /proc/loadavg after: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
