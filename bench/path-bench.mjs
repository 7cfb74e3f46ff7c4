#!/usr/bin/env node
// The path a user runs, as ratios against baselines measured in the same run:
//   1. the write-open storm through `witness run --out F` (NDJSON file + ledger)
//      vs the C consumer with the same ring and wakeup settings, vs bpftrace
//      printing the same events; drops per stage; rates divide by what was delivered;
//   2. what everyone else pays: the storm and real workloads (tsc build, npm ci
//      offline, git status + log over a tree, tar extraction) bare, with the sensor
//      loaded but tracing nothing, host-wide (traceAll), under a real `witness daemon`,
//      and under bpftrace (bench/workloads.mjs);
//   3. `witness run -- /bin/true` against bare node.
// Prints one table (and build-c/path-bench.md); asserts nothing. Knobs: BENCH_EVENTS, BENCH_RUNS,
// BENCH_WORKLOADS=0, BENCH_WORKLOAD_RUNS, BENCH_SETTLE_MS. The decode-only figures: npm run bench:decode.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workloadRows } from './workloads.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WORKLOADS = process.env.BENCH_WORKLOADS !== '0';
const cBin = join(root, 'build-c', 'witness-c');
const witness = join(root, 'bin', 'witness.js');
const tmp = mkdtempSync(join(tmpdir(), 'wa-path-bench-'));
// `witness run` runs its agent as nobody (the path a user runs): the storm binary must be reachable
chmodSync(tmp, 0o755);
const storm = join(tmp, 'storm');
const AGENT = ['--user', 'nobody'];
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

execFileSync('make', ['-s', '-C', join(root, 'native')], { stdio: 'inherit' });
execFileSync('cc', ['-O2', '-o', storm, join(root, 'bench', 'storm.c')]);
if (!existsSync(join(root, 'dist', 'sensor', 'sensor.js'))) execFileSync('npx', ['tsc', '-p', root], { stdio: 'inherit' });
const { WitnessSensor } = await import(join(root, 'dist', 'sensor', 'sensor.js'));
const haveBpftrace = spawnSync('bpftrace', ['--version']).status === 0;

const settle = () => new Promise((r) => setTimeout(r, Number(process.env.BENCH_SETTLE_MS ?? 3000)));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const k = (n) => `${(n / 1e3).toFixed(1)}k/s`;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/**
 * Wall time and CPU time (user + sys of the command and its children, via
 * GNU time: less sensitive to a shared machine than wall time) of a command.
 */
function timed(cmd, args, opts = {}) {
  const cpuFile = join(tmp, 'cpu.txt');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-o', cpuFile, '-f', '%U %S', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const seconds = secs(t0);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr?.slice(-500)}`);
  const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { seconds, cpu: u + sy, stderr: r.stderr ?? '' };
}

/** Occurrences of `needle` in a file, streamed (the files are hundreds of MB). */
async function countIn(file, needle) {
  const pat = Buffer.from(needle);
  let n = 0;
  let carry = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) {
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let i = 0;
    while ((i = buf.indexOf(pat, i)) !== -1) { n++; i += pat.length; }
    carry = buf.subarray(Math.max(0, buf.length - pat.length + 1));
  }
  return n;
}

// ---- 1. the storm through the whole path -------------------------------------------------

function cConsumer() {
  const cpuFile = join(tmp, 'cpu-c.txt');
  const out = execFileSync('/usr/bin/time', ['-o', cpuFile, '-f', '%U %S', cBin, 'drain', storm, String(N)], { env: { ...process.env, WITNESS_RING_MB: '16', WITNESS_WAKEUP_KB: '256', WITNESS_BUDGET_EVENTS: '0' } });
  const r = JSON.parse(out.toString());
  const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { seconds: r.seconds, cpu: u + sy, delivered: r.records - 3, dropped: r.dropped };
}

async function fullPath() {
  const out = join(tmp, 'out.ndjson');
  const session = join(tmp, 'session');
  rmSync(out, { force: true });
  rmSync(session, { recursive: true, force: true });
  const t = timed(process.execPath, [witness, 'run', ...AGENT, '--out', out, '--session-dir', session, '--budget-events', '0', '--', storm, String(N)],
    { env: { ...process.env, WITNESS_STATE_DIR: join(tmp, 'state'), WITNESS_RESIDENT: 'off' } });
  const m = /drops=(\d+) \(kernel (\d+), user (\d+), output (\d+)\)/.exec(t.stderr);
  // the agent's release → its tree's last record written to F and appended to the ledger (the C consumer's window)
  const drained = Number(/drained in ([\d.]+) s/.exec(t.stderr)?.[1] ?? NaN);
  const delivered = await countIn(out, '"event":"file.write"');
  const ledger = await countIn(join(session, 'events.ndjson'), '"event":"file.write"');
  const ledgerBytes = readFileSync(join(session, 'events.ndjson')).length; // what a file.write record costs, on average
  const r = { seconds: t.seconds, drained, cpu: t.cpu, delivered, ledger, kernel: Number(m?.[2]), user: Number(m?.[3]), output: Number(m?.[4]), bytesPerRecord: ledgerBytes / (ledger + 6) };
  rmSync(out, { force: true });
  rmSync(session, { recursive: true, force: true });
  return r;
}

/** bpftrace printing one line per write-open of the storm it started (cpid: not other storms on a shared host), to a file. */
function bpftraceStorm() {
  const out = join(tmp, 'bpftrace.txt');
  const script = 'tracepoint:syscalls:sys_enter_openat /pid == cpid/ { @f[tid] = args->filename; @fl[tid] = args->flags; }\n'
    + 'tracepoint:syscalls:sys_exit_openat /@f[tid] != 0/ { if ((@fl[tid] & 3) != 0) { printf("%d %d %s %d %d\\n", pid, tid, str(@f[tid]), @fl[tid], args->ret); } delete(@f[tid]); delete(@fl[tid]); }';
  const t = timed('bpftrace', ['-B', 'full', '-o', out, '-e', script, '-c', `${storm} ${N}`]);
  const text = readFileSync(out, 'utf8');
  const delivered = text.split('\n').filter((l) => l.includes('/dev/null')).length;
  const lost = [...text.matchAll(/Lost (\d+) events/g)].reduce((a, x) => a + Number(x[1]), 0);
  rmSync(out, { force: true });
  return { seconds: t.seconds, cpu: t.cpu, delivered, lost };
}

// ---- 3. witness run -- /bin/true ---------------------------------------------------------

function runTrue() {
  const env = { ...process.env, WITNESS_STATE_DIR: join(tmp, 'state-true'), WITNESS_RESIDENT: 'off' };
  return {
    node: timed(process.execPath, ['-e', '0']).seconds,
    run: timed(process.execPath, [witness, 'run', ...AGENT, '--no-ledger', '--', '/bin/true'], { env }).seconds,
    runLedger: timed(process.execPath, [witness, 'run', ...AGENT, '--', '/bin/true'], { env }).seconds,
  };
}

// ---- run everything, print one table -------------------------------------------------------
//
// `witness run -- /bin/true` through a running daemon (the resident sensor,
// docs/resident.md): a daemon of our own, on a socket of our own, nothing exported.
async function startResidentDaemon() {
  const dir = join(tmp, 'resident');
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'resident.sock');
  const config = join(dir, 'witness.json');
  writeFileSync(config, JSON.stringify({ stateDir: join(dir, 'state'), residentSocket: socket, scopeSocket: join(dir, 'scope.sock'), store: { enabled: false }, pulse: { enabled: false } }));
  const d = spawn(process.execPath, [witness, 'daemon', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  d.stderr.on('data', (b) => { err += b; });
  for (let i = 0; i < 300 && !err.includes('daemon started') && d.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  if (!err.includes('daemon started')) { d.kill('SIGKILL'); return null; }
  return {
    env: { ...process.env, WITNESS_STATE_DIR: join(tmp, 'state-true'), WITNESS_RESIDENT: 'on', WITNESS_RESIDENT_SOCKET: socket },
    stop: async () => { d.kill('SIGTERM'); await new Promise((r) => (d.exitCode !== null ? r() : d.once('exit', r))); },
  };
}

const lines = [];
const say = (s) => { lines.push(s); process.stderr.write(`${s}\n`); };
const loadBefore = load();
process.stderr.write(`path bench: ${N} write-opens per storm, ${RUNS} runs (medians); ${cpus().length} CPUs; load average at start ${loadBefore}\n`);

const rows = [];
for (let i = 0; i < RUNS; i++) {
  const row = {};
  await settle(); const b = timed(storm, [String(N)]); row.bare = b.seconds; row.bareCpu = b.cpu;
  await settle(); row.fixed = timed(process.execPath, [witness, 'run', ...AGENT, '--', '/bin/true'], { env: { ...process.env, WITNESS_STATE_DIR: join(tmp, 'state-true'), WITNESS_RESIDENT: 'off' } });
  await settle(); row.c = cConsumer();
  await settle(); row.full = await fullPath();
  if (haveBpftrace) { await settle(); row.bt = bpftraceStorm(); }
  row.load = load();
  rows.push(row);
  process.stderr.write(`  run ${i + 1}: bare ${row.bare.toFixed(2)}s, C ${row.c.seconds.toFixed(2)}s, witness run ${row.full.seconds.toFixed(2)}s${row.bt ? `, bpftrace ${row.bt.seconds.toFixed(2)}s` : ''}; load ${row.load}\n`);
}
const med = (f) => median(rows.map(f));
const sum = (f) => rows.reduce((a, r) => a + f(r), 0);
const bareS = med((r) => r.bare);
const bareCpu = med((r) => r.bareCpu);
const cRate = med((r) => r.c.delivered / r.c.seconds);
const fullRate = med((r) => r.full.delivered / r.full.seconds);
// the C figure excludes loading and attaching; `witness run -- /bin/true` in the same run is that fixed cost for Node
const fullNet = med((r) => r.full.delivered / Math.max(1e-3, r.full.seconds - r.fixed.seconds));
const fullDrained = med((r) => r.full.delivered / r.full.drained);
const cpuPerM = (cpu) => `${(((cpu - bareCpu) / N) * 1e6).toFixed(2)} CPU s/M over bare`;
const x = (v) => (Number.isFinite(v) ? v.toFixed(3) : '-');

say(`npm run bench — ${N} write-opens per storm, ${RUNS} runs (medians), ${cpus().length} CPUs; load average ${loadBefore} at start (per run: ${rows.map((r) => r.load.split(' ')[0]).join(', ')})`);
say('');
say('| measure | figure | ratio | ratio of | delivered / emitted, drops per stage |');
say('|---|---|---|---|---|');
say(`| storm, no sensor | ${k(N / bareS)} opens, ${bareCpu.toFixed(2)} CPU s | | | |`);
say(`| storm → C consumer (ring 16 MiB, wakeup 256 KiB, counts only) | ${k(cRate)} delivered, ${cpuPerM(med((r) => r.c.cpu))} | 1.000 | C consumer | ${sum((r) => r.c.delivered)}/${RUNS * N}; kernel ${sum((r) => r.c.dropped)} |`);
say(`| storm → \`witness run --out F\` (NDJSON file + signed ledger, same ring and wakeup), whole command | ${k(fullRate)} delivered, ${cpuPerM(med((r) => r.full.cpu))} | ${x(fullRate / cRate)} | C consumer | file ${sum((r) => r.full.delivered)}, ledger ${sum((r) => r.full.ledger)} of ${RUNS * N}; kernel ${sum((r) => r.full.kernel)}, user ${sum((r) => r.full.user)}, output ${sum((r) => r.full.output)} |`);
say(`| same, minus its fixed cost (\`witness run -- /bin/true\` ${med((r) => r.fixed.seconds).toFixed(2)} s, same run) | ${k(fullNet)} | ${x(fullNet / cRate)} | C consumer | |`);
say(`| same, the drain window only (agent released → its last record in F and the ledger, \`drained in\` ${med((r) => r.full.drained).toFixed(2)} s; C: fork → end of drain) | ${k(fullDrained)} | ${x(fullDrained / cRate)} | C consumer | |`);
if (haveBpftrace) {
  const btRate = med((r) => r.bt.delivered / r.bt.seconds);
  say(`| storm → bpftrace (Debian) printf per event to a file | ${k(btRate)} delivered, ${cpuPerM(med((r) => r.bt.cpu))} | ${x(btRate / cRate)} | C consumer | ${sum((r) => r.bt.delivered)}/${RUNS * N}; lost ${sum((r) => r.bt.lost)} |`);
} else {
  say('| storm → bpftrace | not installed (apt-get install bpftrace) | | | |');
}
say(`| ledger bytes per record (file.write records dominate) | ${med((r) => r.full.bytesPerRecord).toFixed(0)} B | | | |`);

if (WORKLOADS) {
  // what everyone else pays (bench/workloads.mjs: synced disk, rotated order, per-round ratios)
  for (const row of await workloadRows({ root, tmp, storm, N, timed, WitnessSensor, haveBpftrace, settleMs: Number(process.env.BENCH_SETTLE_MS ?? 3000) / 3 })) say(row);
}

const tr = [];
// the standalone runs must not find a daemon (they would use it): WITNESS_RESIDENT=off
for (let i = 0; i < RUNS; i++) { await settle(); tr.push(runTrue()); }
const resident = await startResidentDaemon();
if (resident) {
  try {
    for (const r of tr) {
      // its own bare node beside it (the daemon's host-wide tracing is on meanwhile), and proof the run went through it
      await settle(); r.nodeD = timed(process.execPath, ['-e', '0']).seconds;
      await settle(); const t = timed(process.execPath, [witness, 'run', ...AGENT, '--', '/bin/true'], { env: resident.env });
      r.daemon = t.seconds;
      const dir = /witness: session (\S+)/.exec(t.stderr)?.[1];
      r.viaDaemon = dir !== undefined && JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8')).agent?.['witness.sensor.resident_pid'] !== undefined;
    }
  } finally {
    await resident.stop();
  }
}
const nodeS = median(tr.map((r) => r.node));
const plus = (s) => `+${((s - nodeS) * 1000).toFixed(0)} ms`;
say(`| \`witness run --no-ledger -- /bin/true\` | ${median(tr.map((r) => r.run)).toFixed(3)} s (bare \`node -e 0\` ${nodeS.toFixed(3)} s) | ${plus(median(tr.map((r) => r.run)))} | bare node | |`);
say(`| \`witness run -- /bin/true\` (ledger on) | ${median(tr.map((r) => r.runLedger)).toFixed(3)} s | ${plus(median(tr.map((r) => r.runLedger)))} | bare node | |`);
const dS = tr.every((r) => typeof r.daemon === 'number') ? median(tr.map((r) => r.daemon)) : null;
const nodeD = dS === null ? null : median(tr.map((r) => r.nodeD));
say(dS === null
  ? '| `witness run -- /bin/true` through the resident daemon | not measured: the daemon did not start | | | |'
  : !tr.every((r) => r.viaDaemon)
    ? `| \`witness run -- /bin/true\` through the resident daemon | not measured: ${tr.filter((r) => !r.viaDaemon).length} of ${tr.length} runs used their own sensor | | | |`
    : `| \`witness run -- /bin/true\` through the resident daemon | ${dS.toFixed(3)} s (bare \`node -e 0\` beside it ${nodeD.toFixed(3)} s) | +${((dS - nodeD) * 1000).toFixed(0)} ms | bare node | |`);
say('');
say(`load average at end ${load()} (the machine is shared: compare ratios within this run only)`);
mkdirSync(join(root, 'build-c'), { recursive: true });
writeFileSync(join(root, 'build-c', 'path-bench.md'), `${lines.join('\n')}\n`);
process.stdout.write(`${lines.join('\n')}\n`);
