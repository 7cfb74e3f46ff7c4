#!/usr/bin/env node
// The user-space half of the full path, without the kernel: replays ring
// batches captured from a real storm through decode → enrich → compact →
// NDJSON file + session ledger, in this process, and prints CPU per event.
// Lets `node --cpu-prof` profile the hot path (the live sensor cannot run
// under --cpu-prof) and gives a figure that a shared machine disturbs less
// than wall time.
//   node bench/replay.mjs capture FILE [N]   (root: runs the storm traced, saves the raw batches)
//   node bench/replay.mjs replay FILE [REPEAT]
// REPLAY_LEDGER=0: no session ledger; REPLAY_KEEP=DIR: keep out.ndjson and the session there.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCapturedBatches } from './bench-fixtures.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
const [mode, file, arg] = process.argv.slice(2);

if (mode === 'capture') {
  const { loadNative } = await import(dist('sensor/native.js'));
  const { spawn } = await import('node:child_process');
  const n = Number(arg ?? 1_000_000);
  const storm = join(mkdtempSync(join(tmpdir(), 'wa-replay-')), 'storm');
  execFileSync('cc', ['-O2', '-o', storm, join(root, 'bench', 'storm.c')]);
  const fd = openSync(file, 'w');
  let records = 0;
  const mod = loadNative();
  const clock = mod.clockOffsets();
  const s = new mod.Sensor({
    onBatch: (ab, r) => {
      if (ab === null) return;
      const head = Buffer.alloc(4);
      head.writeUInt32LE(ab.byteLength);
      writeSync(fd, head);
      writeSync(fd, new Uint8Array(ab));
      records += r;
    },
    ringBytes: 64 << 20, batchBytes: 1 << 20, maxLatencyMs: 20, traceAll: false, tracedMax: 0, budgetEvents: 0, budgetWindowMs: 1000, ringSharePct: 0,
  });
  s.start();
  s.armSpawn(process.pid);
  const child = spawn(storm, [String(n)], { stdio: 'ignore' });
  s.disarmSpawn();
  await new Promise((r) => child.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  await s.close();
  closeSync(fd);
  writeSync(2, `captured ${records} records; clock ${clock.realNs - clock.bootNs}\n`);
  rmSync(dirname(storm), { recursive: true, force: true });
} else if (mode === 'replay') {
  const { decodeBatch } = await import(dist('sensor/decode.js'));
  const { runPath } = await import(dist('pipeline/run-path.js'));
  const { SessionWriter } = await import(dist('ledger/index.js'));
  const { AttributionEnricher } = await import(dist('identity/enricher.js'));
  const { NetDepth, enrichThrough } = await import(dist('sensor/netdepth.js'));
  const { ProviderTable } = await import(dist('sensor/llm.js'));
  const batches = readCapturedBatches(file);
  const repeat = Number(arg ?? 1);
  const tmp = mkdtempSync(join(tmpdir(), 'wa-replay-out-'));
  const clock = { bootToEpochNs: 1_700_000_000_000_000_000n };
  const ledger = process.env.REPLAY_LEDGER === '0' ? null : await SessionWriter.create({ dir: join(tmp, 'session'), stateDir: join(tmp, 'state'), command: ['storm'], ...(process.env.REPLAY_CP_EVERY ? { checkpointEveryEvents: Number(process.env.REPLAY_CP_EVERY) } : {}) });
  const fd = openSync(join(tmp, 'out.ndjson'), 'w');
  const path = runPath({ fd, ledger, json: true });
  const enricher = await AttributionEnricher.create({ clock, manifest: null, onLateFinding: path.emit });
  const net = new NetDepth({ providers: new ProviderTable([]) });
  const onEvent = (ev) => { for (const out of enrichThrough(net, ev, clock, (e, env) => enricher.enrich(e, env))) path.emit(out); };
  // the event loop thread's own CPU (the process figure includes the hash and GC threads)
  const mainTicks = () => { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  const m0 = mainTicks();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let events = 0;
  for (let i = 0; i < repeat; i++) for (const b of batches) events += decodeBatch(b, onEvent).events;
  await path.close();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  const mainCpu = (mainTicks() - m0) / 100; // clock ticks (USER_HZ 100)
  await enricher.close();
  if (ledger) await ledger.close({ exitCode: 0, counters: {}, drops: {} });
  closeSync(fd);
  process.stdout.write(`${JSON.stringify({ events, wall, cpu, usPerEvent: (cpu / events) * 1e6, mainUsPerEvent: (mainCpu / events) * 1e6, ratePerS: Math.round(events / wall), outBytes: Number(execFileSync('stat', ['-c', '%s', join(tmp, 'out.ndjson')]).toString()) })}\n`);
  if (process.env.REPLAY_KEEP) execFileSync('cp', ['-r', join(tmp, 'out.ndjson'), join(tmp, 'session'), process.env.REPLAY_KEEP].filter((p) => !p.endsWith('session') || ledger));
  rmSync(tmp, { recursive: true, force: true });
} else {
  process.stderr.write('usage: replay.mjs capture FILE [N] | replay FILE [REPEAT]\n');
  process.exit(2);
}
