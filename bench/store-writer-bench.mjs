#!/usr/bin/env node
// The store's writer thread as the daemon runs it, without the kernel: the
// rows of a capture (`node bench/replay.mjs capture FILE`) go through the
// daemon's Pipeline and the store sink's row choice (src/store/store-rows.ts)
// once, in 1000-row batches as WorkerStoreSink sends them; then, per variant,
// a real writer thread (dist/store/events-worker.js) on a fresh store file
// held at STORE_BENCH_BYTES (32 MiB) by retention is sent those batches one
// at a time. First until retention starts deleting (a full store, as in the
// soak after its first minute), then MEASURE_ROWS more (200k), timed: the
// writer's CPU per row (the process's CPU less this thread's: GC helper
// threads count to the writer), this thread's (posting the batches: their
// structured clone is the daemon's event loop's cost) and wall time.
// STORE_BENCH_BASE=DIR adds a variant 'base': the worker of another build
// (DIR/dist), interleaved round by round with this tree's so a shared
// machine moves both alike; the ratio is against that same-run baseline.
//   node bench/store-writer-bench.mjs FILE [ROUNDS]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { readCapturedBatches } from './bench-fixtures.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
const [file, roundsArg] = process.argv.slice(2);
if (!file) { process.stderr.write('usage: store-writer-bench.mjs FILE [ROUNDS]\n'); process.exit(2); }
const rounds = Number(roundsArg ?? 3);
const maxBytes = Number(process.env.STORE_BENCH_BYTES ?? 32 << 20);
const measureRows = Number(process.env.MEASURE_ROWS ?? 200_000);
const { decodeBatch } = await import(dist('sensor/decode.js'));
const { Pipeline } = await import(dist('daemon/pipeline.js'));
const { AttributionEnricher } = await import(dist('identity/enricher.js'));
const { StoreRows } = await import(dist('store/store-rows.js'));
const { openStore } = await import(dist('store/db.js'));

// the rows, once: what WorkerStoreSink would queue for this capture
const clock = { bootToEpochNs: 1_700_000_000_000_000_000n };
const storeRows = new StoreRows();
const rows = [];
const target = { name: 'store', write: (env, line, whole) => rows.push(storeRows.row(env, line, whole)), stats: () => ({ written: 0, dropped: 0, queued: 0, queuedBytes: 0 }), close: async () => {}, flush: async () => {} };
const enricher = await AttributionEnricher.create({ clock, manifest: null, onLateFinding: () => {} });
const pipeline = new Pipeline(enricher, [target], null, () => clock);
for (const b of readCapturedBatches(file)) decodeBatch(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength), (ev) => pipeline.onSensorEvent(ev));
await enricher.close();
const spanMs = rows.at(-1).timeMs - rows[0].timeMs + 1000;
/** A build's rowBatch (the main side's batch for its worker): src/store/row-batch.ts, or events-worker.ts before it. */
async function rowBatchOf(dir) {
  for (const f of ['row-batch.js', 'events-worker.js']) {
    const m = await import(join(dir, 'dist', 'store', f)).catch(() => null);
    if (m?.rowBatch) return m.rowBatch;
  }
  throw new Error(`no rowBatch in ${dir}/dist/store`);
}
/** batch i of an endless stream: the capture again and again, each pass later by its own span (time keeps order) */
function batchAt(rowBatch, i) {
  const per = Math.ceil(rows.length / 1000);
  const pass = Math.floor(i / per);
  const slice = rows.slice((i % per) * 1000, (i % per) * 1000 + 1000);
  return rowBatch(pass === 0 ? slice : slice.map((r) => ({ ...r, timeMs: r.timeMs + pass * spanMs })));
}

const ticks = (tid) => { const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
const procTicks = () => { const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };

async function once(variant, dir) {
  const tmp = mkdtempSync(join(tmpdir(), 'wa-writer-bench-'));
  const path = join(tmp, 'witness.db');
  const { openStore: open } = await import(join(dir, 'dist', 'store', 'db.js'));
  const rowBatch = await rowBatchOf(dir);
  open(path).close(); // the daemon opens (and migrates) it first
  const worker = new Worker(new URL(`file://${join(dir, 'dist', 'store', 'events-worker.js')}`), { workerData: { path, retention: { maxBytes } }, execArgv: [] });
  let id = 0;
  const ask = (req) => new Promise((resolve) => { worker.once('message', resolve); worker.postMessage({ id: ++id, ...req }); });
  let i = 0;
  for (;; i++) {
    const r = await ask({ op: 'append', batch: batchAt(rowBatch, i), trimRows: 2000 });
    if (r.error) throw new Error(r.error);
    if (r.deletedBySize > 0) break;
  }
  const prefill = i + 1;
  const batches = [];
  for (let n = 0; n < measureRows; n += 1000) batches.push(batchAt(rowBatch, ++i));
  const p0 = procTicks(); const m0 = ticks(process.pid); const w0 = performance.now();
  let written = 0; let deleted = 0;
  for (const b of batches) {
    const r = await ask({ op: 'append', batch: b, trimRows: 2000 });
    written += r.written;
    deleted += r.deletedBySize;
  }
  const wallUs = (performance.now() - w0) * 1000;
  const mainUs = (ticks(process.pid) - m0) * 10_000;
  const workerUs = (procTicks() - p0) * 10_000 - mainUs;
  await ask({ op: 'close' });
  await worker.terminate();
  const s = openStore(path);
  const count = s.db.prepare('SELECT count(*) FROM events').pluck().get();
  s.close();
  rmSync(tmp, { recursive: true, force: true });
  return { variant, prefillBatches: prefill, written, deleted, kept: count, writerUsPerRow: workerUs / written, mainUsPerRow: mainUs / written, wallUsPerRow: wallUs / written };
}

const variants = [['this', root]];
if (process.env.STORE_BENCH_BASE) variants.unshift(['base', process.env.STORE_BENCH_BASE]);
process.stderr.write(`store writer bench: ${rows.length} rows, a store of ${maxBytes >> 20} MiB, ${measureRows} rows timed, ${rounds} rounds; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
const by = Object.fromEntries(variants.map(([v]) => [v, []]));
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < variants.length; k++) {
    const [v, dir] = variants[(k + r) % variants.length];
    const x = await once(v, dir);
    by[v].push(x);
    process.stdout.write(`${JSON.stringify(x)}\n`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const med = Object.fromEntries(Object.entries(by).map(([v, xs]) => [v, Object.fromEntries(['writerUsPerRow', 'mainUsPerRow', 'wallUsPerRow'].map((k) => [k, +median(xs.map((x) => x[k])).toFixed(2)]))]));
const ratio = med.base ? { thisOverBase: Object.fromEntries(Object.keys(med.this).map((k) => [k, +(med.this[k] / med.base[k]).toFixed(3)])) } : {};
process.stdout.write(`${JSON.stringify({ median: med, ...ratio, load: loadavg()[0] })}\n`);
