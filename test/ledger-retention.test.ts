import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonWriter, verifyPath } from '../src/ledger/index.js';
import { listSegments, segmentCheckpointsFile, segmentEventsFile } from '../src/ledger/daemon.js';
import { pruneSealedSegments } from '../src/ledger/retention.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { eventLine, readLines, tempDir } from './helpers/ledger-fixtures.js';

/**
 * Ledger retention: sealed daemon segments are pruned oldest first past a
 * size or age limit, each with a `prune` row in the host ledger, and verify
 * accepts the pruned history; nothing unsealed is deleted; a sealed segment
 * removed without a prune row is still a MISMATCH.
 */
const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

function setup(tag: string): { stateDir: string; key: crypto.KeyObject; pub: crypto.KeyObject } {
  const stateDir = tempDir(tag);
  roots.push(stateDir);
  const key = loadOrCreateHostKey(stateDir);
  return { stateDir, key, pub: crypto.createPublicKey(key) };
}

const rows = (stateDir: string): Array<Record<string, unknown>> => readLines(path.join(stateDir, 'ledger.ndjson')).map((l) => JSON.parse(l).event);

function segmentBytes(stateDir: string): number {
  let total = 0;
  const root = path.join(stateDir, 'daemon');
  for (const e of fs.readdirSync(root)) {
    for (const n of listSegments(path.join(root, e))) {
      for (const f of [segmentEventsFile(n), segmentCheckpointsFile(n)]) total += fs.statSync(path.join(root, e, f)).size;
    }
  }
  return total;
}

describe('ledger retention prunes sealed segments only, and says so', () => {
  it('size limit: oldest sealed segments go, each with a prune row; verify passes and counts them', async () => {
    const { stateDir, key, pub } = setup('ret-size');
    const maxBytes = 60_000;
    const w = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0, retention: { maxBytes } });
    for (let i = 0; i < 1500; i++) w.append(eventLine(i));
    const open = w.currentSegment;
    // still running: the open segment is there, never pruned
    expect(fs.existsSync(path.join(w.dir, segmentEventsFile(open)))).toBe(true);
    const prunes = rows(stateDir).filter((r) => r.kind === 'prune');
    expect(prunes.length).toBeGreaterThan(3);
    for (const p of prunes) {
      expect(p.reason).toBe('size');
      expect(p.bytes).toBeGreaterThan(0);
      expect(fs.existsSync(path.join(w.dir, segmentEventsFile(p.segment as number)))).toBe(false);
      expect(p.segment).toBeLessThan(open);
    }
    // oldest first: the pruned ones are exactly 0..k-1
    expect(prunes.map((p) => p.segment)).toEqual(prunes.map((_, i) => i));
    // what remains fits the limit, give or take the segment being written (at most one segment over)
    expect(segmentBytes(stateDir)).toBeLessThanOrEqual(maxBytes + 25_000);
    const live = await verifyPath(stateDir, { pinned: pub });
    expect(live.failure).toBeUndefined();
    expect(live.pruned).toBe(prunes.length);
    await w.close();
    const done = await verifyPath(stateDir, { pinned: pub });
    expect(done.failure).toBeUndefined();
    expect(done.pruned).toBe(rows(stateDir).filter((r) => r.kind === 'prune').length);
  });

  it('a sealed segment removed WITHOUT a prune row is still a MISMATCH', async () => {
    const { stateDir, key, pub } = setup('ret-unrecorded');
    const w = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0, retention: { maxBytes: 60_000 } });
    for (let i = 0; i < 1500; i++) w.append(eventLine(i));
    await w.close();
    const pruned = new Set(rows(stateDir).filter((r) => r.kind === 'prune').map((r) => r.segment));
    const victim = listSegments(w.dir).find((n) => !pruned.has(n))!;
    fs.rmSync(path.join(w.dir, segmentEventsFile(victim)));
    fs.rmSync(path.join(w.dir, segmentCheckpointsFile(victim)));
    const r = await verifyPath(stateDir, { pinned: pub });
    expect(r.verified).toBe(false);
    expect(r.failure!.reason).toMatch(new RegExp(`segment ${victim} (recorded in the host ledger is missing|is missing)`));
  });

  it('age limit: a finished epoch goes whole (dir removed), the running one keeps its newest segment; verify passes', async () => {
    const { stateDir, key, pub } = setup('ret-age');
    const old = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    for (let i = 0; i < 400; i++) old.append(eventLine(i));
    await old.close();
    const cur = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    for (let i = 0; i < 400; i++) cur.append(eventLine(i));
    cur.checkpoint();
    const segsBefore = listSegments(cur.dir);
    // everything sealed is "older than 1 s" ten seconds from now
    const res = pruneSealedSegments(stateDir, key, { maxAgeMs: 1000 }, Date.now() + 10_000);
    expect(res.pruned.every((p) => p.reason === 'age')).toBe(true);
    expect(fs.existsSync(old.dir)).toBe(false);
    // the running epoch: its sealed segments are gone, the open one (unsealed) stays
    expect(listSegments(cur.dir)).toEqual([segsBefore[segsBefore.length - 1]]);
    expect(res.pruned.filter((p) => p.epoch === cur.epochId).map((p) => p.segment)).toEqual(segsBefore.slice(0, -1));
    const r = await verifyPath(stateDir, { pinned: pub });
    expect(r.failure).toBeUndefined();
    expect(r.pruned).toBe(res.pruned.length);
    // once sealed, the last one may go too, but the unfinished epoch keeps its newest segment
    cur.rotate();
    cur.checkpoint(); // the new segment's first record is on disk
    const again = pruneSealedSegments(stateDir, key, { maxAgeMs: 1000 }, Date.now() + 10_000);
    expect(again.pruned.map((p) => p.segment)).toEqual([segsBefore[segsBefore.length - 1]]);
    await cur.close();
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
  });

  it('a crashed epoch whose newest segment is empty keeps the one before it, so its resume still links; verify passes', async () => {
    const { stateDir, key, pub } = setup('ret-empty');
    const w = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    for (let i = 0; i < 600; i++) w.append(eventLine(i));
    w.rotate();
    const newest = w.currentSegment;
    // kill -9 right after the rotation, before the new segment's first write: an empty newest segment
    (w as unknown as { log: { abandon(): void } }).log.abandon();
    (w as unknown as { unlock(): void }).unlock();
    fs.truncateSync(path.join(w.dir, segmentEventsFile(newest)), 0);
    fs.rmSync(path.join(w.dir, segmentCheckpointsFile(newest)), { force: true });
    const res = pruneSealedSegments(stateDir, key, { maxBytes: 1 });
    expect(res.pruned.map((p) => p.segment)).not.toContain(newest - 1);
    expect(fs.existsSync(path.join(w.dir, segmentEventsFile(newest - 1)))).toBe(true);
    // the next start seals the crashed epoch (resuming its empty segment, linked to the one kept)
    const next = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    expect(next.sealedOnStart).toEqual([`daemon/${w.epochId}`]);
    await next.close();
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
  });

  it('a prune interrupted between its row and the delete: verify passes, the next pass finishes it', async () => {
    const { stateDir, key, pub } = setup('ret-crash');
    const w = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    for (let i = 0; i < 800; i++) w.append(eventLine(i));
    const keep = new Map<string, Buffer>();
    for (const f of [segmentEventsFile(0), segmentCheckpointsFile(0)]) keep.set(f, fs.readFileSync(path.join(w.dir, f)));
    const res = pruneSealedSegments(stateDir, key, { maxBytes: 1 });
    expect(res.pruned.map((p) => p.segment)).toContain(0);
    // as if killed right after appending the row: the files are still there
    for (const [f, b] of keep) fs.writeFileSync(path.join(w.dir, f), b);
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
    pruneSealedSegments(stateDir, key, { maxBytes: 1 });
    expect(fs.existsSync(path.join(w.dir, segmentEventsFile(0)))).toBe(false);
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
    expect(rows(stateDir).filter((r) => r.kind === 'prune').length).toBe(res.pruned.length); // no second row for it
    await w.close();
    // closed: with maxBytes 1 the finished epoch goes whole, its dir too
    pruneSealedSegments(stateDir, key, { maxBytes: 1 });
    expect(fs.existsSync(w.dir)).toBe(false);
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
  });
});
