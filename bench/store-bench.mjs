#!/usr/bin/env node
// The daemon's store path without the kernel: replays ring batches captured by
// `node bench/replay.mjs capture FILE` through the daemon's Pipeline (decode →
// enrich → compact) into a StoreSink on a real file (retention on, as the soak
// runs it), and prints the event-loop thread's CPU per record (the sink's
// inserts included: this StoreSink inserts on the event loop). Three variants,
// interleaved round by round so a shared machine moves all alike:
//   compact:   the store keeps the file's compact line (src/store/store-rows.ts)
//   whole:     the whole record from the pipeline's WholeLine (src/export/whole-line.ts), as before migration 6
//   stringify: the store serialises every record itself (JSON.stringify(env))
// STORE_BENCH_DISTINCT=1 gives every file record a path of its own (a tar's
// new files, where WholeLine cannot reuse the previous record's tail).
//   node bench/store-bench.mjs FILE [ROUNDS]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCapturedBatches } from './bench-fixtures.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
const [file, roundsArg] = process.argv.slice(2);
if (!file) { process.stderr.write('usage: store-bench.mjs FILE [ROUNDS]\n'); process.exit(2); }
const { decodeBatch } = await import(dist('sensor/decode.js'));
const { Pipeline } = await import(dist('daemon/pipeline.js'));
const { StoreSink } = await import(dist('daemon/store-sink.js'));
const { openStore } = await import(dist('store/db.js'));
const { AttributionEnricher } = await import(dist('identity/enricher.js'));

const batches = readCapturedBatches(file);
const rounds = Number(roundsArg ?? 3);
const distinct = process.env.STORE_BENCH_DISTINCT === '1';
const VARIANTS = ['compact', 'whole', 'stringify'];
const clock = { bootToEpochNs: 1_700_000_000_000_000_000n };
const mainTicks = () => { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };

async function once(variant) {
  const tmp = mkdtempSync(join(tmpdir(), 'wa-store-bench-'));
  const store = openStore(join(tmp, 'witness.db'));
  const sink = new StoreSink(store, { retention: { maxBytes: 32 << 20 } });
  // whole: the sink is handed the whole line as a whole row (decision 0, WHOLE);
  // stringify: no whole line, so it serialises each envelope itself
  let pipeline = null;
  const asWhole = { decision: 0, get: () => { throw new Error('unused'); } };
  const write = variant === 'compact' ? (env, line, whole) => sink.write(env, line, whole)
    : variant === 'whole' ? (env) => sink.write(env, pipeline.whole.get(), asWhole) : (env, line) => sink.write(env, line);
  const target = { name: 'store', write, stats: () => sink.stats(), close: () => sink.close(), flush: () => sink.flush() };
  const enricher = await AttributionEnricher.create({ clock, manifest: null, onLateFinding: () => {} });
  pipeline = new Pipeline(enricher, [target], null, () => clock);
  let n = 0;
  const onEvent = distinct ? (ev) => { if (typeof ev.path === 'string') ev.path = `${ev.path}/${n++}`; pipeline.onSensorEvent(ev); } : (ev) => pipeline.onSensorEvent(ev);
  const m0 = mainTicks();
  let events = 0;
  for (const b of batches) {
    const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    events += decodeBatch(ab, onEvent).events;
    await new Promise((r) => setImmediate(r)); // a turn per batch, as the daemon's drain: the sink delivers between
  }
  await sink.flush();
  const mainS = (mainTicks() - m0) / 100;
  const st = sink.stats();
  const bytesPerRow = Math.round(sink.events.usedBytes() / sink.events.count());
  await sink.close();
  await enricher.close();
  store.close();
  rmSync(tmp, { recursive: true, force: true });
  return { variant, events, written: st.written, dropped: st.dropped, mainUsPerRecord: (mainS / events) * 1e6, bytesPerRow, reused: pipeline.whole.reused, serialised: pipeline.whole.serialised };
}

process.stderr.write(`store bench: ${batches.length} batches, ${rounds} rounds${distinct ? ', distinct paths' : ''}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
const by = { compact: [], whole: [], stringify: [] };
for (let r = 0; r < rounds; r++) {
  for (const v of VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length])) {
    const x = await once(v);
    by[v].push(x.mainUsPerRecord);
    process.stdout.write(`${JSON.stringify(x)}\n`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const med = Object.fromEntries(VARIANTS.map((v) => [v, median(by[v])]));
process.stdout.write(`${JSON.stringify({ medianUsPerRecord: med, compactOverWhole: med.compact / med.whole, wholeOverStringify: med.whole / med.stringify, load: loadavg()[0] })}\n`);
