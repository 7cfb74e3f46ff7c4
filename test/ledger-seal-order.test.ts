import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCheckpointLine } from '../src/ledger/checkpoint.js';
import { LedgerLog } from '../src/ledger/log-writer.js';
import { verifyLog } from '../src/ledger/verify-log.js';

/**
 * asyncSeal moves a flood's checkpoint fsyncs onto libuv's threadpool
 * (src/ledger/seal-queue.ts). The durability order must stay exact: a
 * checkpoint line reaches the checkpoints file only after an events fsync
 * that started once every byte it covers was written, and the continuity
 * hook (onSealed) sees a line only after a checkpoints fsync that started
 * once that line was written. Every write and fsync of the log's two files
 * is watched here, and each checkpoint line is checked against what was
 * durable when it was written.
 */
type Fsync = typeof fs.fsync;
const real = { writeSync: fs.writeSync, fsync: fs.fsync, fsyncSync: fs.fsyncSync };
afterEach(() => Object.assign(fs, real));

interface Watch { eventsFd: number; checkpointsFd: number }

function watchIo(w: Watch) {
  const s = { eventsWritten: 0, eventsDurable: 0, linesWritten: 0, linesDurable: 0, asyncEventsSyncs: 0, asyncCheckpointSyncs: 0, violations: [] as string[], covered: [] as number[] };
  let cpBuffered = '';
  fs.writeSync = ((fd: number, buf: Buffer, off?: number, len?: number) => {
    const n = (real.writeSync as (...a: unknown[]) => number)(fd, buf, off, len);
    if (fd === w.eventsFd) s.eventsWritten += n;
    if (fd === w.checkpointsFd) {
      cpBuffered += buf.subarray(off ?? 0, (off ?? 0) + n).toString('utf8');
      let nl;
      while ((nl = cpBuffered.indexOf('\n')) !== -1) {
        const cp = parseCheckpointLine(cpBuffered.slice(0, nl));
        cpBuffered = cpBuffered.slice(nl + 1);
        if (typeof cp === 'string') { s.violations.push(cp); continue; }
        s.covered.push(cp.predicate.events_bytes);
        if (cp.predicate.events_bytes > s.eventsDurable) s.violations.push(`checkpoint ${cp.predicate.index} written covering ${cp.predicate.events_bytes} bytes, only ${s.eventsDurable} fsync'd`);
        s.linesWritten++;
      }
    }
    return n;
  }) as typeof fs.writeSync;
  fs.fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const events = s.eventsWritten;
    const lines = s.linesWritten;
    if (fd === w.eventsFd) s.asyncEventsSyncs++;
    if (fd === w.checkpointsFd) s.asyncCheckpointSyncs++;
    real.fsync(fd, (err) => {
      if (!err && fd === w.eventsFd) s.eventsDurable = Math.max(s.eventsDurable, events);
      if (!err && fd === w.checkpointsFd) s.linesDurable = Math.max(s.linesDurable, lines);
      cb(err);
    });
  }) as Fsync;
  fs.fsyncSync = ((fd: number) => {
    const events = s.eventsWritten;
    const lines = s.linesWritten;
    real.fsyncSync(fd);
    if (fd === w.eventsFd) s.eventsDurable = Math.max(s.eventsDurable, events);
    if (fd === w.checkpointsFd) s.linesDurable = Math.max(s.linesDurable, lines);
  }) as typeof fs.fsyncSync;
  return s;
}

describe('asynchronous checkpoint sealing keeps the durability order', () => {
  it('a flood of count checkpoints: every line written after its events fsync, handed on after its own fsync; close drains; verifies', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'wa-seal-order-'));
    try {
      const { privateKey } = generateKeyPairSync('ed25519');
      const sealed: number[] = [];
      let s: ReturnType<typeof watchIo> | null = null;
      const log = new LedgerLog({
        dir, eventsFile: 'events.ndjson', checkpointsFile: 'checkpoints.ndjson', log: 'session', logId: 'seal-order', key: privateKey,
        checkpointEveryEvents: 500, checkpointMinIntervalMs: 0, checkpointEverySeconds: 0, flushIntervalMs: 0, flushBytes: 8192, asyncSeal: true,
        onSealed: (line) => {
          const cp = parseCheckpointLine(line);
          if (typeof cp === 'string') throw new Error(cp);
          // handed on only once a checkpoints fsync covering it returned
          if (s!.linesDurable <= cp.predicate.index) s!.violations.push(`checkpoint ${cp.predicate.index} handed on before its fsync`);
          sealed.push(cp.predicate.index);
        },
      });
      s = watchIo(log as unknown as Watch);
      let maxQueued = 0;
      for (let i = 0; i < 40_000; i++) {
        log.append(JSON.stringify({ time: '2026-12-02T00:00:00.000000000Z', event: 'file.write', attributes: { i, pad: 'p'.repeat(i % 90) } }));
        maxQueued = Math.max(maxQueued, log.sealsQueued);
        if (i % 700 === 0) await new Promise((r) => setImmediate(r)); // the threadpool's callbacks run between batches
      }
      log.checkpoint('shutdown'); // synchronous: drains the queue first, in order
      expect(log.sealsQueued).toBe(0);
      log.close();
      await new Promise((r) => setTimeout(r, 50)); // a callback still in flight must find nothing left to do

      expect(s.violations).toEqual([]);
      // the asynchronous path really ran, and lines really queued behind the event loop
      expect(s.asyncEventsSyncs).toBeGreaterThan(0);
      expect(s.asyncCheckpointSyncs).toBeGreaterThan(0);
      expect(maxQueued).toBeGreaterThan(0);
      // every checkpoint once, in order, to the continuity hook
      expect(sealed).toEqual([...Array(sealed.length).keys()]);
      expect(sealed.length).toBe(40_000 / 500 + 1);
      expect(s.covered).toEqual([...s.covered].sort((a, b) => a - b));
      Object.assign(fs, real);
      const v = await verifyLog(dir, 'events.ndjson', 'checkpoints.ndjson', { mode: 'full', pinned: null, parallelMinBytes: Number.POSITIVE_INFINITY });
      expect('reason' in v ? v.reason : 'verified').toBe('verified');
      if (!('reason' in v)) expect(v.last.predicate.tree_size).toBe(40_000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failing asynchronous fsync stops sealing and fails the next append (the outage starts), never seals past it', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'wa-seal-fail-'));
    try {
      const { privateKey } = generateKeyPairSync('ed25519');
      const failures: Error[] = [];
      const sealed: Buffer[] = [];
      const log = new LedgerLog({
        dir, eventsFile: 'events.ndjson', checkpointsFile: 'checkpoints.ndjson', log: 'session', logId: 'seal-fail', key: privateKey,
        checkpointEveryEvents: 100, checkpointMinIntervalMs: 0, checkpointEverySeconds: 0, flushIntervalMs: 0, asyncSeal: true,
        onSealed: (l) => sealed.push(l), onBackgroundFailure: (e) => failures.push(e),
      });
      const w = log as unknown as Watch;
      fs.fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
        if (fd === w.eventsFd) { process.nextTick(() => cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }))); return; }
        real.fsync(fd, cb);
      }) as Fsync;
      for (let i = 0; i < 100; i++) log.append(JSON.stringify({ i }));
      await new Promise((r) => setTimeout(r, 20));
      expect(failures.map((e) => e.message)).toEqual(['EIO: i/o error, fsync']);
      expect(sealed).toEqual([]);
      expect(fs.readFileSync(join(dir, 'checkpoints.ndjson'), 'utf8')).toBe('');
      expect(() => log.append(JSON.stringify({ i: 100 }))).toThrow(/ledger write failed earlier: EIO/);
      log.abandon();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
