import { describe, expect, it } from 'vitest';
import { SinkFailures } from '../src/cli/sink-failures.js';
import { LedgerSink } from '../src/daemon/ledger-sink.js';
import type { DaemonWriter } from '../src/ledger/index.js';

describe('a failing sink never takes the witness down', () => {
  it('witness run: a throwing sink is counted per sink, reported, and the others keep going', () => {
    const f = new SinkFailures();
    const out: string[] = [];
    for (let i = 0; i < 5; i++) {
      f.run('ledger', () => { throw new Error('ENOSPC: no space left on device, write'); });
      f.run('output', () => { out.push(String(i)); });
    }
    expect(out).toHaveLength(5);
    expect(f.drops()).toEqual({ 'sink.ledger.failed': 5 });
    expect(f.summary()).toBe('witness: sink ledger failed 5 times (first: ENOSPC: no space left on device, write)\n');
    expect(new SinkFailures().summary()).toBe('');
  });

  it('daemon: the ledger sink says how long it has been failing, and a success resets it', () => {
    let fail = true;
    let writerFailingMs = 0;
    const writer = { append: () => { if (fail) throw new Error('EIO'); return 0; }, failingForMs: () => writerFailingMs } as unknown as DaemonWriter;
    const sink = new LedgerSink(writer);
    expect(sink.failingForMs()).toBe(0);
    sink.write({} as never, 'x');
    const t = Date.now();
    expect(sink.failingForMs(t + 61_000)).toBeGreaterThanOrEqual(61_000);
    expect(sink.stats()).toEqual({ written: 0, dropped: 1 });
    fail = false;
    sink.write({} as never, 'y');
    expect(sink.failingForMs(t + 61_000)).toBe(0);
    // the writer's own outage counts even when no line arrived since its disk failed
    writerFailingMs = 70_000;
    expect(sink.failingForMs(t + 61_000)).toBe(70_000);
  });
});
