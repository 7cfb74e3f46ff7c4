// What everyone else pays, for bench/path-bench.mjs: real workloads (the
// storm at 1/4 N, the project's tsc build, npm ci offline, git status + log
// over a tree, a tar extraction) bare and under each mode:
//   - the sensor loaded in this process, tracing nothing (no syscall hook attached);
//   - the same with a traced sleeper, the workload untraced: the syscall hooks' floor;
//   - the sensor host-wide (traceAll), counting only: the probes' own cost;
//   - a real `witness daemon` (host-wide, NDJSON file + ledger + store): what a user runs,
//     fresh and warm;
//   - bpftrace printing every open host-wide to a file.
// Why it is built this way (the 2026-12-02 18:37 table gave a tar extraction 2.76x
// host-wide and 1.88x with nothing traced, when no syscall hook is attached):
//   - the disk: a tar extraction's system time here swings from 0.9 to 6 s with what
//     the previous run left dirty or freed (the root filesystem is ext4 mounted with
//     `discard`), even after a `sync`; into a tmpfs it is 0.29 s every time (measured
//     2026-12-02 19:40 UTC), and /tmp is a tmpfs on Debian 13 anyway. So the tar
//     extraction goes into a tmpfs of its own, and every timed run starts synced.
//   - the order: one run each, always bare first, measured the host's mood. Now
//     BENCH_WORKLOAD_RUNS rounds (default 3), the modes' order rotated per round,
//     and each ratio is the median of the per-round ratios against that round's bare run.
// Wall time includes the consumer's competition for one of the 2 CPUs (real);
// the workload's own CPU time (user + sys, GNU time) is printed beside it.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { workloadInputs } from './bench-fixtures.mjs';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The workloads, each a function returning { seconds, cpu } of one timed run (setup excluded). */
function workloads({ root, tmp, storm, N, timed }) {
  const { tree, tarball, ci } = workloadInputs(root, tmp);
  const ram = join(tmp, 'ram');
  mkdirSync(ram);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1g,mode=0755', 'tmpfs', ram]);
  // unmounted by workloadRows when done (before path-bench's exit removes tmp)
  const unmount = () => execFileSync('umount', ['-l', ram]);
  return {
    unmount,
    'storm (1/4 N opens)': () => timed(storm, [String(Math.floor(N / 4))]),
    'tsc build': () => timed(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', join(tmp, 'tsc-out')]),
    'npm ci (offline cache)': (before) => {
      rmSync(join(ci, 'node_modules'), { recursive: true, force: true });
      before();
      return timed('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: ci });
    },
    'git status + log': (before) => {
      execFileSync('touch', [join(tree, 'package.json')]);
      before();
      const a = timed('git', ['-C', tree, 'status', '--porcelain']);
      const b = timed('git', ['-C', tree, 'log', '--stat', '-n', '1']);
      return { seconds: a.seconds + b.seconds, cpu: a.cpu + b.cpu };
    },
    'tar extraction (into tmpfs)': (before) => {
      const dest = join(ram, 'untar');
      rmSync(dest, { recursive: true, force: true });
      mkdirSync(dest);
      before();
      return timed('tar', ['-xf', tarball, '-C', dest]);
    },
  };
}

/** A host-wide `witness daemon` of our own: state, sockets, NDJSON files and store in tmp. */
async function startDaemon(root, tmp) {
  const dir = join(tmp, 'daemon');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'out'), { recursive: true });
  const config = join(dir, 'witness.json');
  writeFileSync(config, JSON.stringify({
    stateDir: join(dir, 'state'), scopeSocket: join(dir, 'scope.sock'), residentSocket: join(dir, 'resident.sock'),
    store: { enabled: true },
    export: { file: { enabled: true, dir: join(dir, 'out') } },
  }));
  const d = spawn(process.execPath, [join(root, 'bin', 'witness.js'), 'daemon', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  d.stderr.on('data', (b) => { err += b; if (err.length > 1 << 20) err = err.slice(-(64 << 10)); });
  for (let i = 0; i < 300 && !err.includes('daemon started') && d.exitCode === null; i++) await sleep(100);
  if (!err.includes('daemon started')) {
    d.kill('SIGKILL');
    throw new Error(`the daemon did not start: ${err.slice(-300)}`);
  }
  return async () => {
    d.kill('SIGTERM');
    await new Promise((r) => (d.exitCode !== null ? r() : d.once('exit', r)));
  };
}

// A resident daemon runs for days: V8 has compiled its hot paths long before a
// workload comes. A fresh one compiles them during its first workload (TurboFan on
// V8's worker threads took ~30 % of a fresh daemon's CPU during its first tar
// extractions, 2026-12-03), so the row above is a cold daemon's and this one's
// daemon first runs every workload once, untimed.
const WARM_DAEMON = '`witness daemon` host-wide, warm (every workload run once, untimed, after its start)';

/** The modes: each starts its observer and returns the function that stops it. */
function modes({ root, tmp, WitnessSensor, haveBpftrace }) {
  const sensor = (traceAll) => async () => {
    const s = WitnessSensor.open({ onEvent: () => {}, traceAll });
    return () => s.close();
  };
  // the hooks' floor: a traced sleeper keeps the syscall dispatchers attached while
  // the workload runs untraced, so each of its syscalls runs the dispatchers' gate and
  // returns; no always-on syscall hook costs less (what host-wide tracing adds is the rest)
  const floor = async () => {
    const s = WitnessSensor.open({ onEvent: () => {} });
    const sleeper = s.spawnTraced('/bin/sleep', ['3600'], { stdio: 'ignore' });
    await sleep(300);
    return async () => {
      sleeper.kill('SIGKILL');
      await s.close();
    };
  };
  const m = {
    'sensor loaded, nothing traced': sensor(false),
    'sensor, a traced tree present (workload untraced): the hooks\' floor': floor,
    'sensor host-wide (traceAll), counting only': sensor(true),
    '`witness daemon` host-wide (NDJSON file + ledger + store)': () => startDaemon(root, tmp),
    [WARM_DAEMON]: () => startDaemon(root, tmp),
  };
  if (haveBpftrace) {
    m['bpftrace printing every open host-wide'] = async () => {
      const out = join(tmp, 'bpftrace-host.txt');
      rmSync(out, { force: true });
      const script = 'tracepoint:syscalls:sys_enter_openat { @f[tid] = args->filename; }\n'
        + 'tracepoint:syscalls:sys_exit_openat /@f[tid] != 0/ { printf("%d %s %s %d\\n", pid, comm, str(@f[tid]), args->ret); delete(@f[tid]); }\n'
        + 'BEGIN { printf("ready\\n"); }';
      const bt = spawn('bpftrace', ['-B', 'full', '-o', out, '-e', script], { stdio: 'ignore' });
      for (let i = 0; i < 300 && !(existsSync(out) && readFileSync(out, 'utf8').includes('ready')); i++) await sleep(100);
      return async () => {
        bt.kill('SIGINT');
        await new Promise((r) => (bt.exitCode !== null ? r() : bt.once('exit', r)));
        rmSync(out, { force: true });
      };
    };
  }
  return m;
}

/**
 * Runs every workload bare and under every mode, BENCH_WORKLOAD_RUNS rounds;
 * returns the table's rows (markdown), the ratios as medians of per-round ratios.
 */
export async function workloadRows(ctx) {
  const { settleMs } = ctx;
  const { unmount, ...w } = workloads(ctx);
  try {
    return await measure(w, modes(ctx), settleMs);
  } finally {
    unmount();
  }
}

async function measure(w, m, settleMs) {
  const rounds = Number(process.env.BENCH_WORKLOAD_RUNS ?? 3);
  const names = ['bare', ...Object.keys(m)];
  // every timed run starts from a synced disk, after a pause
  const before = () => { execFileSync('sync'); };
  const runOne = async (work) => { await sleep(settleMs); if (work.length === 0) before(); return work(before); };
  const res = {}; // res[workload][mode] = [{seconds, cpu}] per round
  const failed = {};
  for (const wn of Object.keys(w)) {
    res[wn] = Object.fromEntries(names.map((n) => [n, []]));
    try { w[wn](() => {}); } catch (err) { failed[wn] = String(err.message).split('\n')[0].slice(0, 120); } // warm caches once
  }
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const mode of order) {
      const stop = mode === 'bare' ? null : await m[mode]();
      try {
        if (mode === WARM_DAEMON) for (const [wn, work] of Object.entries(w)) if (!failed[wn]) await work(() => {});
        for (const [wn, work] of Object.entries(w)) if (!failed[wn]) res[wn][mode].push(await runOne(work));
      } finally {
        if (stop) await stop();
      }
    }
    process.stderr.write(`  workloads round ${r + 1}/${rounds} done (order: ${order.map((n) => n.split(' ')[0]).join(', ')})\n`);
  }
  const x = (v) => v.toFixed(3);
  const rows = [];
  for (const wn of Object.keys(w)) {
    if (failed[wn]) { rows.push(`| ${wn} | not measured: ${failed[wn]} | | | |`); continue; }
    const bare = res[wn].bare;
    rows.push(`| ${wn}: bare | ${median(bare.map((b) => b.seconds)).toFixed(2)} s wall, ${median(bare.map((b) => b.cpu)).toFixed(2)} CPU s | | | ${rounds} rounds |`);
    for (const mode of Object.keys(m)) {
      const runs = res[wn][mode];
      const wall = median(runs.map((t, i) => t.seconds / bare[i].seconds));
      const cpu = median(runs.map((t, i) => t.cpu / Math.max(1e-3, bare[i].cpu)));
      rows.push(`| ${wn}: ${mode} | ${median(runs.map((t) => t.seconds)).toFixed(2)} s wall; workload CPU ${x(cpu)}× bare | ${x(wall)} | bare (wall) | |`);
    }
  }
  return rows;
}
