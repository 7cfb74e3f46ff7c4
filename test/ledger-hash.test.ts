import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { EventHasher } from '../src/ledger/hash.js';
import { HexFrontier, hexSegmentHasher } from '../src/ledger/merkle-hex.js';
import { consistencyProofWith, verifyConsistency } from '../src/ledger/merkle.js';
import { jsBatchHasher, LedgerHashState, type BatchHasher } from '../src/ledger/log-hash.js';
import { LedgerLog } from '../src/ledger/log-writer.js';
import { verifyLog } from '../src/ledger/verify-log.js';
import { PACKAGE_ROOT } from '../src/sensor/native.js';

const require = createRequire(import.meta.url);
// the addon is built with the project (test/native.test.ts needs it too); its batch hasher must exist
const native = (require('node-gyp-build')(PACKAGE_ROOT) as { ledgerHash: BatchHasher }).ledgerHash;

/** Records of varied length and content (multi-byte UTF-8, block boundaries at 55/56/64 bytes). */
function records(n: number, seed = 7): string[] {
  let x = seed;
  const rnd = (m: number): number => { x = (x * 1103515245 + 12345) % 2147483648; return x % m; };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = [0, 1, 31, 32, 40, 55, 56, 63, 64, 119, 120, 300, 4000][rnd(13)]!;
    out.push(JSON.stringify({ i, s: 'é✓'.repeat(rnd(3)) + 'x'.repeat(len) }));
  }
  return out;
}

/** The reference: one record at a time through the hex code recovery and the verifier use. */
function reference(lines: string[]) {
  const h = new EventHasher();
  const f = new HexFrontier(0, [], h);
  let chain = '0'.repeat(64);
  const leaves: string[] = [];
  for (const l of lines) {
    const leaf = h.leafHexOfBytes(Buffer.from(l, 'utf8'));
    chain = h.chainHex(chain, leaf);
    f.append(leaf);
    leaves.push(leaf);
  }
  return { root: f.rootHex(), chain, frontier: [...f.frontier], leaves };
}

function viaState(lines: string[], impl: BatchHasher, batch: number, background = false) {
  const s = new LedgerHashState({ size: 0, frontier: [], chainHeadHex: '0'.repeat(64), sealedSize: 0, sealedFrontier: [], unsealedLeaves: [] }, impl, { background });
  const keep: Buffer[] = []; // a background job reads the bytes after append returns: they must stay alive
  for (let i = 0; i < lines.length; i += batch) {
    const chunk = lines.slice(i, i + batch);
    const bufs = chunk.map((l) => Buffer.from(`{"seq":${i},"event":${l}}\n`, 'utf8'));
    const ranges = new Uint32Array(2 * chunk.length);
    let off = 0;
    bufs.forEach((b, j) => {
      const head = Buffer.byteLength(`{"seq":${i},"event":`);
      ranges[2 * j] = off + head;
      ranges[2 * j + 1] = off + b.length - 2;
      off += b.length;
    });
    const data = Buffer.concat(bufs);
    keep.push(data);
    s.append(data, ranges, chunk.length);
  }
  s.settle();
  return s;
}

describe('batch ledger hashing (native addon and node:crypto fallback)', () => {
  const lines = records(3000);
  const ref = reference(lines);

  for (const [name, impl] of [['native', native], ['node:crypto', jsBatchHasher]] as const) {
    it(`${name}: leaf hashes, chain head, frontier and root equal the per-record reference for any batch split`, () => {
      for (const batch of [1, 7, 1000, 3000]) {
        const s = viaState(lines, impl, batch);
        expect(s.size).toBe(lines.length);
        expect(s.chainHeadHex).toBe(ref.chain);
        expect(s.rootHex()).toBe(ref.root);
        expect(s.frontierHex()).toEqual(ref.frontier);
      }
    });

    it(`${name}: the consistency proof from a sealed size verifies and matches the hex segment hasher's`, () => {
      const s = viaState(lines.slice(0, 1234), impl, 100);
      const oldRoot = s.rootHex();
      s.seal();
      const more = viaState(lines, impl, 100); // same records: rebuild to 3000 from a state sealed at 1234
      const t = new LedgerHashState({
        size: 1234, frontier: s.frontierHex(), chainHeadHex: s.chainHeadHex, sealedSize: 1234, sealedFrontier: s.frontierHex(), unsealedLeaves: [],
      }, impl);
      const tail = lines.slice(1234);
      const bufs = tail.map((l) => Buffer.from(l, 'utf8'));
      const ranges = new Uint32Array(2 * tail.length);
      let off = 0;
      bufs.forEach((b, j) => { ranges[2 * j] = off; ranges[2 * j + 1] = off + b.length; off += b.length; });
      t.append(Buffer.concat(bufs), ranges, tail.length);
      expect(t.rootHex()).toBe(more.rootHex());
      const proof = consistencyProofWith(t.subtreeHasher(), 1234, 3000);
      const hexProof = consistencyProofWith(hexSegmentHasher(1234, s.frontierHex(), ref.leaves.slice(1234), null), 1234, 3000);
      expect(proof.map((p) => Buffer.from(p).toString('hex'))).toEqual(hexProof.map((p) => Buffer.from(p).toString('hex')));
      expect(verifyConsistency(1234, 3000, Buffer.from(oldRoot, 'hex'), Buffer.from(t.rootHex(), 'hex'), proof)).toBe(true);
    });
  }

  it('native background queue: the same leaf hashes, chain head, frontier and root, jobs in order across states', () => {
    expect(native.queue).toBeDefined();
    for (const batch of [1, 7, 1000, 3000]) {
      const s = viaState(lines, native, batch, true);
      expect(s.size).toBe(lines.length);
      expect(s.chainHeadHex).toBe(ref.chain);
      expect(s.rootHex()).toBe(ref.root);
      expect(s.frontierHex()).toEqual(ref.frontier);
    }
    // two states interleaving jobs on the one thread: each gets its own tree
    const a = new LedgerHashState({ size: 0, frontier: [], chainHeadHex: '0'.repeat(64), sealedSize: 0, sealedFrontier: [], unsealedLeaves: [] }, native, { background: true });
    const b = new LedgerHashState({ size: 0, frontier: [], chainHeadHex: '0'.repeat(64), sealedSize: 0, sealedFrontier: [], unsealedLeaves: [] }, native, { background: true });
    const keep: Buffer[] = [];
    for (let i = 0; i < lines.length; i += 100) {
      for (const st of [a, b]) {
        const chunk = lines.slice(i, i + 100).map((l) => Buffer.from(l, 'utf8'));
        const ranges = new Uint32Array(2 * chunk.length);
        let off = 0;
        chunk.forEach((c, j) => { ranges[2 * j] = off; ranges[2 * j + 1] = off + c.length; off += c.length; });
        const data = Buffer.concat(chunk);
        keep.push(data);
        st.append(data, ranges, chunk.length);
      }
    }
    for (const st of [a, b]) {
      expect(st.rootHex()).toBe(ref.root);
      expect(st.chainHeadHex).toBe(ref.chain);
    }
    expect(() => native.queue!.submit(Buffer.alloc(10), new Uint32Array([0, 11]), 1, Buffer.alloc(32), Buffer.alloc(32), 0, Buffer.alloc(2048), 0)).toThrow(/outside/);
  });

  it('native: refuses ranges outside the data and leaf buffers without room', () => {
    const chain = Buffer.alloc(32);
    expect(() => native.leafChain(Buffer.alloc(10), new Uint32Array([0, 11]), 1, chain, Buffer.alloc(32), 0)).toThrow(/outside/);
    expect(() => native.leafChain(Buffer.alloc(10), new Uint32Array([0, 10]), 1, chain, Buffer.alloc(31), 0)).toThrow(/room/);
    expect(() => native.leafChain(Buffer.alloc(10), new Uint32Array([0, 10]), 2, chain, Buffer.alloc(64), 0)).toThrow(/pairs/);
  });

  // 4096: records around the flush size; 1 MiB (a session's): the write buffer starts at 64 KiB and grows, copying what is pending
  for (const [backgroundHash, flushBytes] of [[true, 4096], [false, 4096], [true, 1 << 20], [false, 1 << 20]] as const) {
    it(`a log written in batches (checkpoint every 1000, flushBytes ${flushBytes}) verifies byte-exact (background hashing ${backgroundHash})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wa-ledger-hash-'));
      try {
        const { privateKey } = generateKeyPairSync('ed25519');
        const log = new LedgerLog({
          dir, eventsFile: 'events.ndjson', checkpointsFile: 'checkpoints.ndjson', log: 'session', logId: 'test', key: privateKey,
          checkpointEveryEvents: 1000, checkpointEverySeconds: 0, flushIntervalMs: 0, flushBytes, backgroundHash,
        });
        // a record far larger than the buffer on the way: the writer replaces its buffer mid-stream
        const all = [...lines.slice(0, 1500), JSON.stringify({ big: 'y'.repeat(200_000) }), ...lines.slice(1500)];
        const want = reference(all);
        for (const l of all) log.append(l);
        expect(log.chainHeadHex).toBe(want.chain);
        expect(log.rootHex).toBe(want.root);
        log.checkpoint('shutdown');
        log.close();
        const expected = all.map((l, i) => `{"seq":${i},"event":${l}}\n`).join('');
        expect(readFileSync(join(dir, 'events.ndjson'), 'utf8')).toBe(expected);
        for (const mode of ['full', 'fast'] as const) {
          const v = await verifyLog(dir, 'events.ndjson', 'checkpoints.ndjson', { mode, pinned: null, parallelMinBytes: Number.POSITIVE_INFINITY });
          expect('reason' in v ? v.reason : 'verified').toBe('verified');
          if (!('reason' in v)) expect(v.last.predicate.tree_size).toBe(all.length);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
