import { describe, expect, it } from 'vitest';
import { StoreSink } from '../src/daemon/store-sink.js';
import { DaemonHealth } from '../src/daemon/health.js';
import { rfc3339Nanos, type Envelope } from '../src/events/envelope.js';
import { BatchQueue } from '../src/export/batch-queue.js';
import { openStore } from '../src/store/db.js';
import { timeMsOf } from '../src/store/events.js';
import { writeInRounds } from './helpers/store-rounds.js';

/** A consumer that never finishes its first batch: everything after it waits in the queue. */
class StalledQueue extends BatchQueue {
  constructor(maxLines: number, maxBytes: number) { super(maxLines, 10, maxBytes); }
  protected deliver(): Promise<void> { return new Promise(() => {}); }
  release(): Promise<void> { return this.shutdown(1); }
}

const T0 = Date.UTC(2026, 10, 22, 3);
function env(i: number, pad = ''): Envelope {
  return { time: rfc3339Nanos(BigInt(T0 + i) * 1_000_000n + 123_456n), event: 'file.write', attributes: { 'process.pid': i, 'witness.agent': 'a', pad } };
}

describe('queue bounds', () => {
  it('a stalled consumer holds at most maxBytes of text: long lines are refused and counted, not queued by count', async () => {
    const q = new StalledQueue(1_000_000, 100_000);
    const line = 'x'.repeat(1000);
    for (let i = 0; i < 1000; i++) q.push(line);
    await new Promise((r) => setImmediate(r)); // the first batch (10 lines) is in flight and never returns
    for (let i = 0; i < 1000; i++) q.push(line);
    const s = q.stats();
    // without the byte bound all 2000 lines (2 MB) would wait: the line bound is a million
    expect(s.queuedBytes).toBeLessThanOrEqual(100_000);
    expect(s.queued).toBe(100);
    expect(s.written + s.dropped + s.queued).toBe(2000);
    expect(s.dropped).toBe(1900);
    await q.release();
    // what waited is counted as dropped and weighs nothing now; the batch still in flight still does
    expect(q.stats()).toMatchObject({ queuedBytes: 10_000, queued: 10, dropped: 1990 });
  });

  it('the store sink weighs rows by their serialised line and drops past maxQueuedBytes', async () => {
    const store = openStore(':memory:');
    const pad = 'y'.repeat(500);
    const lineLen = JSON.stringify(env(100, pad)).length;
    const sink = new StoreSink(store, { maxQueued: 1_000_000, maxQueuedBytes: lineLen * 100 });
    for (let i = 100; i < 400; i++) sink.write(env(i, pad), ''); // three-digit pids: every line the same length
    // nothing has been delivered yet (the drain waits for the next turn): 100 fit, 200 are counted
    expect(sink.stats()).toMatchObject({ queued: 100, dropped: 200, queuedBytes: lineLen * 100 });
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 100, dropped: 200, queued: 0, queuedBytes: 0 });
    await sink.close();
    store.close();
  });

  it('the store trims as rows arrive, each step bounded, and keeps the newest rows under maxBytes', async () => {
    const store = openStore(':memory:');
    const limit = 2_000_000;
    const sink = new StoreSink(store, { retention: { maxBytes: limit }, trimRows: 500 });
    const pad = 'z'.repeat(1000);
    await writeInRounds(sink, (i) => env(i, pad));
    expect(sink.stats()).toMatchObject({ written: 10_000, dropped: 0 });
    expect(sink.trimmedBySize).toBeGreaterThan(5000);
    // a step deletes at most max(trimRows, batch) rows, so the store overshoots by at most a batch
    expect(sink.events.usedBytes()).toBeLessThanOrEqual(limit + 1000 * 1200);
    const left = sink.events.query({}).map((l) => (JSON.parse(l) as Envelope).attributes['process.pid'] as number);
    expect(left.at(-1)).toBe(9999);
    expect(left.length).toBe(10_000 - sink.trimmedBySize);
    await sink.close();
    store.close();
  });

  it('retainSoon trims an over-limit store one bounded step per event-loop turn, never in one pass', async () => {
    const store = openStore(':memory:');
    const filler = new StoreSink(store);
    const pad = 'w'.repeat(1000);
    for (let i = 0; i < 5000; i++) filler.write(env(i, pad), '');
    await filler.flush();
    await filler.close();
    const sink = new StoreSink(store, { retention: { maxBytes: 500_000 }, trimRows: 200 });
    sink.retainSoon();
    // the first step ran synchronously; the rest wait for later turns
    expect(sink.trimmedBySize).toBe(200);
    let turns = 0;
    while (sink.events.usedBytes() > 500_000 && turns < 1000) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    expect(turns).toBeGreaterThan(10);
    expect(sink.events.usedBytes()).toBeLessThanOrEqual(500_000);
    await sink.close();
    store.close();
  });

  it('timeMsOf agrees with the envelope clock, across second boundaries', () => {
    for (const ms of [T0, T0 + 999, T0 + 1000, T0 + 86_400_001]) {
      expect(timeMsOf(rfc3339Nanos(BigInt(ms) * 1_000_000n + 999_999n))).toBe(ms);
    }
  });
});

describe('daemon health', () => {
  it('the heartbeat names the longest event-loop hold since the previous beat', async () => {
    const h = new DaemonHealth();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const until = Date.now() + 300;
      while (Date.now() < until) { /* hold the loop */ }
      await new Promise((r) => setTimeout(r, 50));
      const a = h.heartbeatAttributes();
      expect(a['witness.daemon.loop_delay_max_ms']).toBeGreaterThanOrEqual(250);
      expect(a['witness.daemon.rss_bytes']).toBeGreaterThan(0);
      // reset at each beat: the next one does not repeat the old hold
      await new Promise((r) => setTimeout(r, 100));
      expect(h.heartbeatAttributes()['witness.daemon.loop_delay_max_ms']).toBeLessThan(250);
    } finally {
      h.close();
    }
  });
});
