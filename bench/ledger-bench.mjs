// Ledger benchmark: `npm run bench:ledger` (build first: npx tsc -p tsconfig.json).
// Prints figures only. Compares append and verify throughput with raw SHA-256
// over the same event bytes, measured in the same run on the same machine.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

const dist = new URL('../dist/ledger/', import.meta.url);
if (!fs.existsSync(new URL('index.js', dist))) {
  console.error('bench/ledger-bench.mjs: dist/ledger not built; run `npx tsc -p tsconfig.json` first');
  process.exit(2);
}
const { SessionWriter, verifyPath } = await import(new URL('index.js', dist).href);

const N = Number(process.env.LEDGER_BENCH_EVENTS ?? 400_000);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mb = (bytes, ms) => (bytes / 1048576) / (ms / 1000);

function makeEvents(n) {
  const lines = new Array(n);
  for (let i = 0; i < n; i++) {
    lines[i] = JSON.stringify({
      time: `2026-11-22T03:28:57.${String(i % 1e9).padStart(9, '0')}Z`,
      event: i % 3 === 0 ? 'process.exec' : 'file.write',
      attributes: { 'process.pid': 1000 + (i % 4000), 'process.executable.path': '/usr/bin/node', 'file.path': `/home/agent/project/src/module-${i % 5000}/index.ts`, 'witness.bytes': i % 65536 },
    });
  }
  return lines;
}

function time(fn) { const t = performance.now(); fn(); return performance.now() - t; }

const lines = makeEvents(N);
const bufs = lines.map((l) => Buffer.from(l));
const totalBytes = bufs.reduce((n, b) => n + b.length, 0);
console.log(`events: ${fmt(N)}, ${(totalBytes / N).toFixed(0)} bytes average, ${(totalBytes / 1048576).toFixed(1)} MiB; node ${process.version}, ${os.availableParallelism()} CPUs`);

// --- Baseline: raw SHA-256 of each event's bytes (one digest per event) ----
const hasOneShot = typeof crypto.hash === 'function';
const rawMs = time(() => { for (const b of bufs) hasOneShot ? crypto.hash('sha256', b, 'buffer') : crypto.createHash('sha256').update(b).digest(); });
const rawRate = N / (rawMs / 1000);
const streamMs = time(() => { const h = crypto.createHash('sha256'); for (const b of bufs) h.update(b); h.digest(); });
console.log(`raw sha256 per event:          ${fmt(rawRate)} events/s (${mb(totalBytes, rawMs).toFixed(0)} MiB/s)`);
console.log(`raw sha256 streaming:          ${mb(totalBytes, streamMs).toFixed(0)} MiB/s`);

// --- Hashing patterns for leaf + chain + node (3 digests per event) -------
const pre = Buffer.from('\x00agent-witness.v1.event\n', 'latin1');
const preStr = '\u0000agent-witness.v1.event\n';
const scratch = Buffer.alloc(65536); pre.copy(scratch);
const s65 = Buffer.alloc(65);
const h64 = 'ab'.repeat(32);
// The ledger uses the last pattern: one-shot crypto.hash with hex-string digests
// (strings are cheaper to allocate than Buffers; records store hex anyway).
const patterns = {
  'createHash, Buffer digests': () => { for (const b of bufs) { crypto.createHash('sha256').update(pre).update(b).digest(); crypto.createHash('sha256').update(s65).digest(); crypto.createHash('sha256').update(s65).digest(); } },
  '@noble/hashes, Buffer digests': () => { for (const l of lines) { const n = scratch.write(l, pre.length); nobleSha256(scratch.subarray(0, pre.length + n)); nobleSha256(s65); nobleSha256(s65); } },
  'crypto.hash, Buffer digests': () => { for (const l of lines) { const n = scratch.write(l, pre.length); crypto.hash('sha256', scratch.subarray(0, pre.length + n), 'buffer'); crypto.hash('sha256', s65, 'buffer'); crypto.hash('sha256', s65, 'buffer'); } },
  'crypto.hash, hex digests (used)': () => { for (const l of lines) { crypto.hash('sha256', preStr + l, 'hex'); s65.write(h64, 1, 'hex'); s65.write(h64, 33, 'hex'); crypto.hash('sha256', s65, 'hex'); s65.write(h64, 1, 'hex'); s65.write(h64, 33, 'hex'); crypto.hash('sha256', s65, 'hex'); } },
};
for (const [name, fn] of Object.entries(patterns)) {
  if (name.startsWith('crypto.hash') && !hasOneShot) continue;
  const ms = time(fn);
  console.log(`pattern ${name.padEnd(32)} ${fmt(N / (ms / 1000))} events/s (leaf + chain + node digests)`);
}

// --- Append through the real SessionWriter --------------------------------
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-bench-'));
try {
  const key = crypto.generateKeyPairSync('ed25519').privateKey;
  const dir = path.join(root, 'session');
  const w = await SessionWriter.create({ dir, stateDir: path.join(root, 'state'), signKey: key, command: ['bench'], checkpointEveryEvents: 10_000, checkpointEverySeconds: 0 });
  const appendMs = time(() => { for (const l of lines) w.append(l); });
  const t = performance.now();
  await w.close({ exitCode: 0, counters: {}, drops: {} });
  const closeMs = performance.now() - t;
  const appendRate = N / (appendMs / 1000);
  const fileBytes = fs.statSync(path.join(dir, 'events.ndjson')).size;
  console.log(`append (leaf+chain+frontier, write, checkpoint/10k): ${fmt(appendRate)} events/s = ${(appendRate / rawRate).toFixed(2)}x raw sha256; close ${closeMs.toFixed(0)} ms; ledger ${(fileBytes / 1048576).toFixed(1)} MiB`);

  const pub = crypto.createPublicKey(key);
  for (const [label, opts] of [
    ['verify --full (1 thread)', { mode: 'full', pinned: pub, parallelMinBytes: Number.MAX_SAFE_INTEGER }],
    ['verify --full (workers) ', { mode: 'full', pinned: pub, parallelMinBytes: 0 }],
    ['verify --fast (32 samples)', { mode: 'fast', pinned: pub, samples: 32 }],
  ]) {
    const t0 = performance.now();
    const r = await verifyPath(dir, opts);
    const ms = performance.now() - t0;
    if (!r.verified) throw new Error(`${label}: ${JSON.stringify(r.failure)}`);
    const rate = N / (ms / 1000);
    console.log(`${label.padEnd(26)} ${ms.toFixed(0).padStart(6)} ms  ${fmt(rate)} events/s = ${(rate / rawRate).toFixed(2)}x raw sha256`);
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
