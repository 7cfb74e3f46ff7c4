#!/usr/bin/env node
// What the syscall hooks cost processes nobody traces, and what they cost to
// detach — this tree's design against another revision's, in one run.
//
//   node bench/hooks-bench.mjs                 this tree only
//   BENCH_COMPARE_REV=<rev>[,<rev>...] node bench/...
//                                              also each <rev> (its bpf/ + native/
//                                              built into /tmp), runs interleaved
//   BENCH_ROUNDS (default 5), BENCH_EVENTS (default 1000000), BENCH_RO_PATHS
//   (default /etc/hostname,/dev/null: read-only opens on the filesystem that
//   holds /etc/shadow, in a directory with sensitive names, so nothing can be
//   skipped; and on one that holds no sensitive identity)
//   BENCH_HOST_WIDE=1 instead measures real workloads (tsc build, npm ci
//   offline, git status + log, tar extraction) bare and under a host-wide
//   sensor (traceAll, the daemon's mode), per design, CPU-time ratios
//   HOOKS_STATS=1 also prints the kernel's mean ns per dispatcher run
//   (bpf_enable_stats; it slows every run, so the ratios of such a run are
//   not comparable with a run without it)
//
// Every figure is a ratio of the storm's CPU time (user + system, from wait4)
// to the bare storm's in the same round (bench/hooks-cost.c); CPU time rather
// than wall because this machine is shared and waiting for a CPU is not cost.
// Each read-only storm also runs untraced while a traced tree exists (its
// floor: what every process pays then); "over its floor" is what tracing the
// storm adds to that, per round, as a ratio and in ns per open+close.
// `uptime` is printed before and after: a busy neighbour still moves numbers.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workloadInputs } from './bench-fixtures.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = process.env.BENCH_ROUNDS ?? '5';
const N = process.env.BENCH_EVENTS ?? '1000000';
const RO_PATHS = (process.env.BENCH_RO_PATHS ?? '/etc/hostname,/dev/null').split(',');
const rev = process.env.BENCH_COMPARE_REV;
const out = join(root, 'build-c');
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts });
const inc = sh('bash', [join(root, 'scripts/build-deps.sh'), '--print-include']).trim();
const libs = sh('bash', [join(root, 'scripts/build-deps.sh'), '--print-libs']).trim().split(/\s+/);

mkdirSync(out, { recursive: true });
sh('make', ['-s', '-C', join(root, 'native')], { stdio: 'inherit' }); // gen/ skeleton up to date
sh('cc', ['-O2', '-o', join(out, 'open-storm'), join(root, 'bench/open-storm.c')]);

/** hooks-cost linked against the loader and BPF object of `tree` (gen/ under it) */
function buildHarness(tree, gen, name) {
  const loaders = ['loader.c', 'loader_hooks.c', 'loader_maps.c', 'loader_stats.c', 'uprobe_attach.c']
    .map((f) => join(tree, 'native', f)).filter((f) => { try { sh('test', ['-f', f]); return true; } catch { return false; } });
  const bin = join(out, name);
  sh('cc', ['-O2', '-w', `-I${inc}`, `-I${gen}`, `-I${join(tree, 'native')}`, '-o', bin, join(root, 'bench/hooks-cost.c'), ...loaders, ...libs, '-lpthread']);
  return bin;
}

const designs = [{ name: 'this tree', bin: buildHarness(root, join(root, 'gen'), 'hooks-cost') }];
for (const r of rev ? rev.split(',') : []) {
  const tree = join('/tmp', `witness-bench-${r}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  execFileSync('sh', ['-c', `git -C "${root}" archive "${r}" bpf native scripts | tar -x -C "${tree}"`]);
  sh('bash', [join(tree, 'scripts/build-bpf.sh'), join(tree, 'gen')], { env: { ...process.env, LIBBPF_INCLUDE: join(root, 'deps/out/include') }, stdio: 'ignore' });
  designs.push({ name: `rev ${r}`, bin: buildHarness(tree, join(tree, 'gen'), `hooks-cost-${r}`) });
}

const load = () => sh('uptime', []).trim().replace(/^.*load/, 'load');
// Another sensor's syscall hooks (a host-wide daemon) run on the bare storms
// too: every ratio then shrinks toward 1. Counted with bpftool when it is there.
const foreignHooks = () => {
  try {
    const n = (sh('bpftool', ['link', 'list'], { stdio: ['ignore', 'pipe', 'ignore'] }).match(/tp 'sys_(enter|exit)'/g) ?? []).length;
    return n ? `  WARNING: ${n} other sys_enter/sys_exit hook(s) attached on this host: the bare storms pay them too` : null;
  } catch {
    return null;
  }
};

// BENCH_HOST_WIDE=1: real workloads bare and under a host-wide sensor (the
// daemon's traceAll), each design in turn within a round; CPU-time ratios.
// BENCH_HOST_WIDE_WORKLOADS picks some by name (comma-separated).
if (process.env.BENCH_HOST_WIDE === '1') {
  const tmp = mkdtempSync(join(tmpdir(), 'wa-hooks-hw-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const { tree, tarball, ci } = workloadInputs(root, tmp);
  const all = {
    'tsc build': ['sh', '-c', `rm -rf ${tmp}/tsc-out && exec node ${root}/node_modules/typescript/bin/tsc -p ${root}/tsconfig.json --outDir ${tmp}/tsc-out`],
    'npm ci (offline cache)': ['sh', '-c', `cd ${ci} && rm -rf node_modules && exec npm ci --offline --ignore-scripts --no-audit --no-fund`],
    'git status + log': ['sh', '-c', `touch ${tree}/package.json && git -C ${tree} status --porcelain && git -C ${tree} log --stat -n 1`],
    'tar extraction': ['sh', '-c', `rm -rf ${tmp}/untar && mkdir ${tmp}/untar && exec tar -xf ${tarball} -C ${tmp}/untar`],
  };
  const pick = process.env.BENCH_HOST_WIDE_WORKLOADS?.split(',');
  const work = Object.entries(all).filter(([k]) => !pick || pick.includes(k));
  const hwBefore = load();
  const res = designs.map((d) => ({ ...d, runs: {} }));
  for (let r = 0; r < Number(ROUNDS); r++) {
    for (const [name, cmd] of work) {
      for (const d of res) (d.runs[name] ??= []).push(JSON.parse(sh(d.bin, ['host-wide', ...cmd])));
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = [`hooks bench, host-wide (traceAll): ${ROUNDS} rounds, CPU time of the workload under the sensor / bare (mean of the bare runs before and after), medians`, `  ${hwBefore}  (before)`];
  for (const d of res) {
    out.push(`  ${d.name}:`);
    for (const [name] of work) {
      const xs = d.runs[name];
      out.push(`    ${name.padEnd(24)} ${med(xs.map((x) => x.all_x)).toFixed(3)}x bare (${med(xs.map((x) => x.bare_s)).toFixed(2)} CPU s bare, ${med(xs.map((x) => x.records))} records)`);
    }
  }
  out.push(`  ${load()}  (after)`);
  process.stdout.write(`${out.join('\n')}\n`);
  process.exit(0);
}
const before = load();
const foreign = foreignHooks();
const results = designs.map((d) => ({ ...d, runs: [] }));
// interleaved: one round of each design at a time, so drift hits both alike
for (let r = 0; r < Number(ROUNDS); r++) {
  for (const d of results) {
    for (const ro of RO_PATHS) {
      const x = JSON.parse(sh(d.bin, ['1', N, join(out, 'open-storm'), ro]));
      // what tracing adds to this storm over the same storm untraced in the same round
      d.runs.push({ ro, ...x, over_x: x.traced_ro_x - x.tree_ro_x, over_ns: ((x.traced_ro_s - x.tree_ro_s) / Number(N)) * 1e9 });
    }
  }
}
const after = load();
const foreignAfter = foreignHooks();
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = [`hooks bench: ${N} open+close per storm, ${ROUNDS} rounds × ${RO_PATHS.length} read-only paths (medians of per-round ratios)`, `  ${before}  (before)`];
if (foreign) lines.push(`${foreign} (before)`);
if (foreignAfter) lines.push(`${foreignAfter} (after)`);
for (const d of results) {
  const m = (k) => med(d.runs.map((x) => x[k]));
  const mro = (ro, k) => med(d.runs.filter((x) => x.ro === ro).map((x) => x[k]));
  lines.push(`  ${d.name}:`,
    `    untraced storm, no traced tree      ${m('idle_x').toFixed(3)}x bare (${m('bare_s').toFixed(3)} CPU s bare)`,
    `    untraced storm, traced tree present ${m('tree_x').toFixed(3)}x bare`,
    ...RO_PATHS.flatMap((ro) => [
      `    untraced storm of ${ro.padEnd(13)}      ${mro(ro, 'tree_ro_x').toFixed(3)}x bare, traced tree present (its floor)`,
      `    traced read-only storm of ${ro.padEnd(10)} ${mro(ro, 'traced_ro_x').toFixed(3)}x bare (${mro(ro, 'bare_ro_s').toFixed(3)} CPU s bare)`,
      `      over its floor: +${mro(ro, 'over_x').toFixed(3)}x, ${mro(ro, 'over_ns').toFixed(1)} ns per open+close`,
    ]),
    `    sensor open (load + attach)         ${m('open_s').toFixed(3)} s`,
    `    sensor close (detach + free)        ${m('close_s').toFixed(3)} s`,
    `    syscall hooks attach / idle detach  ${(m('attach_s') * 1e3).toFixed(2)} ms / ${(m('detach_s') * 1e3).toFixed(2)} ms (0: always attached)`);
  const ns = (k) => {
    const xs = d.runs.map((x) => x[k]).filter(Boolean);
    return xs.length ? `${med(xs.map((x) => x[0])).toFixed(1)} / ${med(xs.map((x) => x[1])).toFixed(1)} ns` : null;
  };
  if (ns('stats_tree_ns')) {
    lines.push(`    ns per run, sys_enter / sys_exit dispatcher (bpf_stats on):`,
      `      untraced storm, traced tree present ${ns('stats_tree_ns')}`,
      ...RO_PATHS.map((ro) => `      traced read-only storm of ${ro.padEnd(10)} ${med(d.runs.filter((x) => x.ro === ro).map((x) => x.stats_ro_ns[0])).toFixed(1)} / ${med(d.runs.filter((x) => x.ro === ro).map((x) => x.stats_ro_ns[1])).toFixed(1)} ns`));
  }
}
lines.push(`  ${after}  (after)`);
process.stdout.write(`${lines.join('\n')}\n`);
