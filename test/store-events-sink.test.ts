import { describe, expect, it } from 'vitest';
import { StoreSink } from '../src/daemon/store-sink.js';
import { rfc3339Nanos, type Envelope } from '../src/events/envelope.js';
import { openStore } from '../src/store/db.js';

function env(i: number): Envelope {
  return { time: rfc3339Nanos(BigInt(Date.UTC(2026, 10, 22, 3)) * 1_000_000n + BigInt(i)), event: 'process.exec', attributes: { 'process.pid': i } };
}

describe('store sink', () => {
  it('drains a deep backlog in batches, letting the event loop turn in between', async () => {
    const store = openStore(':memory:');
    const sink = new StoreSink(store, 50_000);
    for (let i = 0; i < 20_000; i++) sink.write(env(i), JSON.stringify(env(i)));
    // Queued after the sink's own drain callback: it runs between two of the
    // sink's batches only if the sink yields the event loop between them.
    const writtenWhenOthersRan = await new Promise<number>((resolve) => setImmediate(() => resolve(sink.stats().written)));
    expect(writtenWhenOthersRan).toBeGreaterThan(0);
    expect(writtenWhenOthersRan).toBeLessThan(20_000);
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 20_000, dropped: 0, queued: 0 });
    expect(sink.events.count()).toBe(20_000);
    await sink.close();
    store.close();
  });

  it('past its bound, and when the database fails, drops and counts instead of throwing', async () => {
    const store = openStore(':memory:');
    const sink = new StoreSink(store, 100);
    for (let i = 0; i < 150; i++) sink.write(env(i), JSON.stringify(env(i)));
    expect(sink.stats()).toMatchObject({ dropped: 50, queued: 100 });
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 100, dropped: 50, queued: 0 });
    store.close(); // the database goes away under the sink
    for (let i = 0; i < 10; i++) sink.write(env(i), JSON.stringify(env(i)));
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 100, dropped: 60, queued: 0 });
    await sink.close();
  });
});
