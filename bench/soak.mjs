#!/usr/bin/env node
// npm run soak: the daemon (host-wide, NDJSON file + signed ledger + store +
// pulse) under a steady write-open load for a long time. Samples the daemon's
// RSS and CPU every SOAK_SAMPLE_SECONDS, then stops it and prints RSS slope
// and max, CPU, the rate delivered and the counts of every stage from the
// daemon's own final report, with emitted = delivered + dropped checked.
// Knobs: SOAK_SECONDS (600), SOAK_RATE (50000 opens/s), SOAK_SAMPLE_SECONDS (10).
// Prints a table; asserts nothing (the exit code is 1 when a stage does not balance).
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const RATE = Number(process.env.SOAK_RATE ?? 50_000);
const SAMPLE = Number(process.env.SOAK_SAMPLE_SECONDS ?? 10);
const tmp = mkdtempSync(join(tmpdir(), 'wa-soak-'));
chmodSync(tmp, 0o755);
process.on('exit', () => { if (process.env.SOAK_KEEP !== '1') rmSync(tmp, { recursive: true, force: true }); });
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const paced = join(tmp, 'paced');
execFileSync('cc', ['-O2', '-o', paced, join(root, 'bench', 'paced.c')]);
const out = join(tmp, 'out');
mkdirSync(out);
const config = join(tmp, 'witness.json');
writeFileSync(config, JSON.stringify({
  stateDir: join(tmp, 'state'),
  scopeSocket: join(tmp, 'scope.sock'),
  residentSocket: join(tmp, 'resident.sock'),
  heartbeat: '10s',
  // every event through every stage: the soak measures the pipeline, not the fairness budget
  sensor: { budgetEvents: 0 },
  store: { enabled: true, maxBytes: 256 << 20 },
  export: { file: { enabled: true, dir: out, maxBytes: 64 << 20, keep: 3 } },
  ledger: { enabled: true, segmentMaxBytes: 64 << 20, maxBytes: 512 << 20 },
}));

// SOAK_NODE_ARGS (e.g. --heapsnapshot-signal=SIGUSR2) go to the daemon's node; SOAK_SNAPSHOT_AT=20,80 sends
// SIGUSR2 at those seconds (snapshots land in the soak's temporary directory: SOAK_KEEP=1 keeps it)
const nodeArgs = (process.env.SOAK_NODE_ARGS ?? '').split(' ').filter(Boolean);
const snapshotAt = (process.env.SOAK_SNAPSHOT_AT ?? '').split(',').filter(Boolean).map(Number);
const daemon = spawn(process.execPath, [...nodeArgs, join(root, 'bin', 'witness.js'), 'daemon', '--config', config], { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
daemon.stderr.on('data', (d) => { stderr += d; if (stderr.length > 4 << 20) stderr = stderr.slice(-(1 << 20)); });
const exited = new Promise((r) => daemon.once('exit', (code, sig) => r({ code, sig })));
for (let i = 0; i < 300 && !stderr.includes('daemon started'); i++) await sleep(100);
if (!stderr.includes('daemon started')) throw new Error(`daemon did not start:\n${stderr.slice(-2000)}`);

const TICK = 100; // /proc/<pid>/stat counts clock ticks (USER_HZ = 100 on Linux)
function sample() {
  const status = readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const stat = readFileSync(`/proc/${daemon.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { t: process.hrtime.bigint(), rssMb: rssKb / 1024, cpuS: (Number(f[11]) + Number(f[12])) / TICK };
}

// The daemon's latest heartbeat (its memory split, longest event-loop hold since the previous beat,
// queue bytes, process table), read incrementally from the ledger's segments: the ledger keeps every
// line (the file sink may drop one). Ledger records are {"seq":N,"event":<the line>}.
const beatTail = { path: '', off: 0 };
let latestBeat = null;
function lastBeat() {
  const base = join(tmp, 'state', 'daemon');
  let segs = [];
  try {
    for (const epoch of readdirSync(base)) {
      for (const f of readdirSync(join(base, epoch))) if (/^segment-\d{6}\.ndjson$/.test(f)) segs.push(join(base, epoch, f));
    }
  } catch { return latestBeat; }
  segs = segs.sort().filter((p) => p >= beatTail.path);
  for (const path of segs) {
    if (path !== beatTail.path) { beatTail.path = path; beatTail.off = 0; }
    let fd;
    try { fd = openSync(path, 'r'); } catch { continue; } // pruned by retention meanwhile
    try {
      const size = fstatSync(fd).size;
      while (beatTail.off < size) {
        const buf = Buffer.allocUnsafe(Math.min(size - beatTail.off, 8 << 20));
        readSync(fd, buf, 0, buf.length, beatTail.off);
        const lastNl = buf.lastIndexOf(10);
        if (lastNl < 0) break;
        const hit = buf.subarray(0, lastNl).lastIndexOf('"sensor.heartbeat"');
        if (hit >= 0) {
          const from = buf.lastIndexOf(10, hit) + 1;
          try { latestBeat = JSON.parse(buf.toString('utf8', from, buf.indexOf(10, hit))).event.attributes; } catch { /* not a record */ }
        }
        beatTail.off += lastNl + 1;
      }
    } finally { closeSync(fd); }
  }
  return latestBeat;
}
const MiB = (b) => (b === undefined ? '?' : (b / 1048576).toFixed(0));

process.stderr.write(`soak: ${SECONDS}s at ${RATE} write-opens/s through the daemon (NDJSON file + ledger + store + pulse); load ${load()}\n`);
const load0 = load();
const t0 = sample();
const work = spawn(paced, [String(RATE), String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
let workOut = '';
work.stdout.on('data', (d) => { workOut += d; });
const workDone = new Promise((r) => work.once('exit', r));
const samples = [];
let last = t0;
let done = false;
void workDone.then(() => { done = true; });
for (const at of snapshotAt) setTimeout(() => { if (!done) daemon.kill('SIGUSR2'); }, at * 1000).unref();
while (!done) {
  for (let i = 0; i < SAMPLE * 10 && !done; i++) await sleep(100);
  if (done) break;
  const s = sample();
  const cpuPct = ((s.cpuS - last.cpuS) / (Number(s.t - last.t) / 1e9)) * 100;
  const b = lastBeat();
  samples.push({ at: Number(s.t - t0.t) / 1e9, rssMb: s.rssMb, cpuPct, holdMs: b?.['witness.daemon.loop_delay_max_ms'] });
  const beat = b ? `  heap ${MiB(b['witness.daemon.heap_used_bytes'])}/${MiB(b['witness.daemon.heap_total_bytes'])} ext ${MiB(b['witness.daemon.external_bytes'])} ab ${MiB(b['witness.daemon.array_buffers_bytes'])} MiB`
    + `  hold ${b['witness.daemon.loop_delay_max_ms']} ms  queued file ${MiB(b['witness.export.file.queued_bytes'])} store ${MiB(b['witness.export.store.queued_bytes'])} MiB`
    + `  procs ${b['witness.identity.processes'] ?? '?'}` : '  (no heartbeat in the ledger)';
  process.stderr.write(`  ${samples.at(-1).at.toFixed(0).padStart(5)}s  RSS ${s.rssMb.toFixed(1)} MiB  CPU ${cpuPct.toFixed(0)}%  load ${load()}${beat}\n`);
  last = s;
}
const end = sample();
const wallS = Number(end.t - t0.t) / 1e9;
daemon.kill('SIGTERM');
const { code } = await exited;
const did = JSON.parse(workOut.trim() || '{}');

// the daemon's own final accounting: its last heartbeat (kernel stages) and the 'daemon stopped' log line (sinks after their drain)
const stoppedLine = stderr.split('\n').filter((l) => l.includes('"daemon stopped"')).pop();
const stopped = stoppedLine ? JSON.parse(stoppedLine) : null;
const files = readdirSync(out).filter((f) => f.endsWith('.ndjson')).sort();
let finalBeat = null;
for (const f of files.reverse()) {
  const lines = readFileSync(join(out, f), 'utf8').trimEnd().split('\n');
  for (let i = lines.length - 1; i >= 0 && !finalBeat; i--) {
    if (!lines[i].includes('"sensor.heartbeat"')) continue;
    const e = JSON.parse(lines[i]);
    if (e.attributes['witness.sensor.final'] === true) finalBeat = e.attributes;
  }
  if (finalBeat) break;
}

// least-squares RSS slope, over all samples and over the second half (after warm-up)
function slope(xs) {
  if (xs.length < 2) return NaN;
  const n = xs.length;
  const mx = xs.reduce((a, s) => a + s.at, 0) / n;
  const my = xs.reduce((a, s) => a + s.rssMb, 0) / n;
  const num = xs.reduce((a, s) => a + (s.at - mx) * (s.rssMb - my), 0);
  const den = xs.reduce((a, s) => a + (s.at - mx) ** 2, 0);
  return (num / den) * 60;
}
const half = samples.slice(Math.floor(samples.length / 2));
const a = finalBeat ?? {};
const emitted = Object.entries(a).filter(([k]) => k.startsWith('witness.kernel.emitted.')).reduce((s, [, v]) => s + v, 0);
const records = a['witness.records'] ?? NaN;
const kernelDrops = a['witness.drops.kernel'] ?? NaN;
const userDrops = a['witness.drops.user'] ?? NaN;
const received = a['witness.pipeline.received'] ?? NaN;
const lines = [];
const say = (s) => { lines.push(s); };
say(`soak: ${SECONDS}s requested at ${RATE} write-opens/s; the workload did ${did.opens} opens + ${did.children} children in ${did.seconds}s (${did.ticks_behind} of ${Math.round(SECONDS * 100)} ticks late); load average ${load0} at start, ${load()} at end`);
say('');
say('| measure | value |');
say('|---|---|');
say(`| daemon RSS max | ${Math.max(t0.rssMb, ...samples.map((s) => s.rssMb)).toFixed(1)} MiB (start ${t0.rssMb.toFixed(1)}, end ${end.rssMb.toFixed(1)}) |`);
say(`| RSS slope, all ${samples.length} samples / second half | ${slope(samples).toFixed(2)} / ${slope(half).toFixed(2)} MiB per minute |`);
say(`| daemon CPU | ${(((end.cpuS - t0.cpuS) / wallS) * 100).toFixed(0)}% of one core (${(end.cpuS - t0.cpuS).toFixed(1)} CPU s in ${wallS.toFixed(0)} s) |`);
say(`| delivered rate (host-wide: includes other processes) | ${(records / wallS / 1e3).toFixed(1)}k records/s |`);
// the probes count a record as emitted once it is in the ring, and as dropped when the ring had no room:
// attempts = emitted + dropped; every emitted record must reach user space (delivered)
say(`| kernel: records attempted = into the ring + dropped (ring full) | ${emitted + kernelDrops} = ${emitted} + ${kernelDrops} (${((kernelDrops / (emitted + kernelDrops)) * 100).toFixed(2)}% dropped in the kernel) |`);
say(`| ring: emitted = delivered | ${emitted} = ${records} ${emitted === records ? '(balances)' : '(DOES NOT BALANCE)'} |`);
say(`| user space: delivered = decoded + user drops | ${records} = ${a['witness.decoded']} + ${userDrops} (decode errors ${a['witness.decode_errors']}) |`);
say(`| pipeline: received, emitted (events + findings + control + pulse) | ${received}, ${stopped?.emitted ?? '?'} |`);
for (const [name, st] of Object.entries(stopped?.sinks ?? {})) {
  say(`| sink ${name}: written + dropped + queued | ${st.written} + ${st.dropped} + ${st.queued ?? 0} = ${st.written + st.dropped + (st.queued ?? 0)} of ${stopped.emitted} ${st.written + st.dropped + (st.queued ?? 0) === stopped.emitted ? '(balances)' : '(DOES NOT BALANCE)'} |`);
}
const holds = samples.map((x) => x.holdMs).filter((x) => x !== undefined);
say(`| longest event-loop hold (heartbeats seen: ${holds.length}) | ${holds.length ? Math.max(...holds) : '?'} ms |`);
for (const k of ['witness.identity.processes', 'witness.identity.evicted', 'witness.store.trimmed_size', 'witness.store.trimmed_age', 'witness.store.orphans']) {
  if (a[k] !== undefined) say(`| ${k} (final) | ${a[k]} |`);
}
say(`| daemon exit | ${code} |`);
say('');
say(`RSS samples (MiB every ${SAMPLE}s): ${samples.map((s) => s.rssMb.toFixed(0)).join(' ')}`);
process.stdout.write(`${lines.join('\n')}\n`);
// the ring stage balances when every record in the ring was delivered (ring-full drops never entered it: the kernel row above)
const balanced = emitted === records && Object.values(stopped?.sinks ?? {}).every((st) => st.written + st.dropped + (st.queued ?? 0) === stopped.emitted);
process.exitCode = balanced && stopped && finalBeat ? 0 : 1;
