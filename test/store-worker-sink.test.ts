import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rfc3339Nanos, type Envelope } from '../src/events/envelope.js';
import { openStore } from '../src/store/db.js';
import { EventStore } from '../src/store/events.js';
import { ContextCompactor, WHOLE, type Decision } from '../src/events/compact.js';
import { compactLine } from '../src/export/ndjson-line.js';
import { WholeLine } from '../src/export/whole-line.js';
import { writeInRounds } from './helpers/store-rounds.js';

// The compiled sink: its worker is dist/store/events-worker.js (tsc runs before the tests).
const { WorkerStoreSink, storeWorkerAvailable } = await import('../dist/daemon/store-worker-sink.js') as typeof import('../src/daemon/store-worker-sink.js');

function env(i: number, pad = ''): Envelope {
  return {
    time: rfc3339Nanos(BigInt(Date.UTC(2026, 11, 2, 20)) * 1_000_000n + BigInt(i) * 1000n), event: 'file.write',
    attributes: { 'process.pid': 1000 + (i % 7), 'witness.agent': i % 2 ? 'a' : null as unknown as string, 'file.path': `/tmp/f${i}${pad}` },
  };
}

describe('the store sink on its own thread', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'witness-storew-'));
    path = join(dir, 'witness.db');
    openStore(path).close(); // the daemon opens (and migrates) it first
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every row, with its columns, from another thread: written + dropped = what came in', async () => {
    expect(storeWorkerAvailable()).toBe(true);
    const sink = new WorkerStoreSink({ path });
    for (let i = 0; i < 12_345; i++) sink.write(env(i), '');
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 12_345, dropped: 0, queued: 0, queuedBytes: 0 });
    await sink.close();
    const store = openStore(path);
    try {
      const events = new EventStore(store);
      expect(events.count()).toBe(12_345);
      // the columns came through the batch encoding: agent null or 'a', pid, time order
      expect(events.query({ agent: 'a' }).length).toBe(6172);
      expect(events.query({ pid: 1003 }).length).toBe(1764);
      const lines = events.query({ limit: 2 }).map((l) => JSON.parse(l) as Envelope);
      expect(lines.map((e) => e.attributes['file.path'])).toEqual(['/tmp/f12343', '/tmp/f12344']);
      expect(lines[1]).toEqual(env(12_344));
    } finally {
      store.close();
    }
  });

  it('carries compact rows and their keys across the thread: queried back whole, each with its own context', async () => {
    const sink = new WorkerStoreSink({ path });
    const compactor = new ContextCompactor();
    const whole = new WholeLine();
    const decided: { decision: Decision } = { decision: WHOLE };
    const envs: Envelope[] = [];
    for (let i = 0; i < 3000; i++) {
      const pid = 400 + (i % 3);
      const e = env(i);
      Object.assign(e.attributes, { 'process.pid': pid, 'thread.id': pid, 'witness.process.key': `${pid}-1`, 'process.user.id': i < 1500 ? 0 : 1000, 'process.command': 'tar' });
      envs.push(e);
    }
    for (const e of envs) {
      const line = compactLine(compactor, e, decided);
      whole.set(e, line, decided.decision);
      sink.write(e, line, whole);
    }
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 3000, dropped: 0 });
    await sink.close();
    expect(sink.orphans).toBe(0);
    const store = openStore(path);
    try {
      // six context records (three keys, each before and after its setuid), the rest compact
      expect(store.db.prepare('SELECT count(*) FROM events WHERE ctx IS NULL').pluck().get()).toBe(6);
      expect(new EventStore(store).query({}).map((l) => JSON.parse(l) as Envelope)).toEqual(envs);
    } finally {
      store.close();
    }
  });

  it('a failing insert, and a dead thread, count their rows as dropped instead of losing them', async () => {
    const sink = new WorkerStoreSink({ path });
    for (let i = 0; i < 100; i++) sink.write(env(i), '');
    await sink.flush();
    // the table goes away under the worker: its next insert fails
    const store = openStore(path);
    store.db.exec('DROP TABLE events');
    store.close();
    for (let i = 0; i < 50; i++) sink.write(env(i), '');
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 100, dropped: 50, queued: 0 });
    // the thread dies with a batch in flight, then more rows come
    for (let i = 0; i < 30; i++) sink.write(env(i), '');
    await (sink as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    for (let i = 0; i < 20; i++) sink.write(env(i), '');
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 100, dropped: 100, queued: 0 });
    await sink.close();
  });

  it('trims by size on the worker, as the in-thread sink does', async () => {
    const sink = new WorkerStoreSink({ path, retention: { maxBytes: 2_000_000 }, trimRows: 500 });
    const pad = 'z'.repeat(1000);
    await writeInRounds(sink, (i) => env(i, pad));
    expect(sink.stats()).toMatchObject({ written: 10_000, dropped: 0 });
    expect(sink.trimmedBySize).toBeGreaterThan(5000);
    await sink.close();
  });
});
