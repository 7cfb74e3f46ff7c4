import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { passThroughHooks, type ReloadableEnricher } from '../src/daemon/hooks.js';
import { Pipeline } from '../src/daemon/pipeline.js';
import { parseConfig } from '../src/config/load.js';
import type { Sink } from '../src/pipeline/types.js';
import { passThrough } from '../src/pipeline/types.js';
import { PulseEngine } from '../src/pulse/engine.js';
import { openStore } from '../src/store/db.js';
import type { ExecEvent, ForkEvent, SensorEvent } from '../src/sensor/types.js';

const clock = { bootToEpochNs: BigInt(Date.UTC(2026, 10, 22, 3, 0, 0)) * 1_000_000n };

function exec(pid: number, argv: string[]): ExecEvent {
  return {
    kind: 'exec', pid, tid: pid, uid: 1000, gid: 1000, cgroupId: 4242n, comm: argv[0]!.split('/').pop()!, tsBootNs: BigInt(pid) * 1000n,
    flags: 0, ppid: 1, argc: argv.length, euid: 1000, egid: 1000, filename: argv[0]!, argv, cwd: '/work', exe: argv[0]!,
    argvTruncated: false, filenameTruncated: false, pathTruncated: false,
  };
}

function fork(pid: number, childPid: number): ForkEvent {
  return { kind: 'fork', pid, tid: pid, uid: 0, gid: 0, cgroupId: 1n, comm: 'sh', tsBootNs: 1n, flags: 0, childPid };
}

class MemorySink implements Sink {
  readonly name: string;
  readonly got: { env: Envelope; line: string }[] = [];
  constructor(name = 'memory') { this.name = name; }
  write(env: Envelope, line: string): void { this.got.push({ env, line }); }
  stats(): { written: number; dropped: number } { return { written: this.got.length, dropped: 0 }; }
  async close(): Promise<void> {}
}

/** Stands in for the AttributionEnricher: names the agent by argv[0], raises a finding for curl. */
class FakeAttribution implements ReloadableEnricher {
  reloads = 0;
  agent = 'coder';
  seenForks = 0;
  enrich(ev: SensorEvent, env: Envelope | null): Envelope[] {
    if (ev.kind === 'fork') this.seenForks++;
    if (!env) return [];
    env.attributes['witness.agent'] = this.agent;
    if (ev.kind === 'exec' && ev.argv[0] === '/usr/bin/curl') {
      return [env, { time: env.time, event: 'finding.undeclared_egress', attributes: { 'witness.agent': this.agent } }];
    }
    return [env];
  }
  reload(): void { this.reloads++; this.agent = 'coder-v2'; }
}

describe('daemon pipeline', () => {
  it('runs every sensor event through the enricher to every sink, one shared line per envelope', () => {
    const a = new MemorySink('a');
    const b = new MemorySink('b');
    const enricher = new FakeAttribution();
    const p = new Pipeline(enricher, [a, b], null, () => clock);
    p.onSensorEvent(fork(10, 11));
    p.onSensorEvent(exec(11, ['/bin/ls']));
    p.onSensorEvent(exec(12, ['/usr/bin/curl', 'x']));
    expect(enricher.seenForks).toBe(1); // forks reach the enricher (they build its tree) but export nothing
    expect(a.got.map((g) => g.env.event)).toEqual(['process.exec', 'process.exec', 'finding.undeclared_egress']);
    expect(b.got.map((g) => g.line)).toEqual(a.got.map((g) => g.line));
    expect(JSON.parse(a.got[0]!.line)).toEqual(a.got[0]!.env);
    expect(a.got[0]!.env.attributes['witness.agent']).toBe('coder');
    expect(p.stats()).toMatchObject({ received: 3, emitted: 3, enrichErrors: 0 });
    enricher.reload();
    p.onSensorEvent(exec(13, ['/bin/true']));
    expect(a.got.at(-1)!.env.attributes['witness.agent']).toBe('coder-v2');
  });

  it('an enricher that throws costs attribution, not the event', () => {
    const sink = new MemorySink();
    const p = new Pipeline({ enrich: () => { throw new Error('boom'); } }, [sink], null, () => clock);
    p.onSensorEvent(exec(20, ['/bin/ls']));
    p.onSensorEvent(fork(20, 21));
    expect(sink.got.map((g) => g.env.event)).toEqual(['process.exec']);
    expect(sink.got[0]!.env.attributes['witness.agent']).toBeUndefined();
    expect(p.stats().enrichErrors).toBe(2);
  });

  it('feeds the pulse and exports the pulse events it raises', () => {
    const store = openStore(':memory:');
    try {
      const sink = new MemorySink();
      const engine = new PulseEngine({ store, options: { windowMs: 60_000, periodMs: 3_600_000 }, clock: () => 0 });
      const p = new Pipeline(passThrough, [sink], engine, () => clock);
      p.onSensorEvent(exec(30, ['/bin/ls']));
      // far past the window: it closes (as a gap — no heartbeat vouched for it)
      p.tick(Date.UTC(2026, 10, 22, 3, 5, 0));
      const pulse = sink.got.filter((g) => g.env.event.startsWith('pulse.'));
      expect(pulse.length).toBeGreaterThan(0);
      expect(pulse.every((g) => JSON.parse(g.line).event === g.env.event)).toBe(true);
      expect(p.stats().pulseErrors).toBe(0);
    } finally {
      store.close();
    }
  });

  it('heartbeat attributes carry per-stage and per-sink counts', () => {
    const sink = new MemorySink('store');
    const p = new Pipeline(passThrough, [sink], null, () => clock);
    p.onSensorEvent(exec(40, ['/bin/ls']));
    expect(p.heartbeatAttributes()).toMatchObject({
      'witness.pipeline.received': 1, 'witness.pipeline.emitted': 1,
      'witness.export.store.written': 1, 'witness.export.store.dropped': 0, 'witness.export.store.queued': 0,
    });
  });

  it('the pass-through hooks export unattributed and start no scope socket', async () => {
    const config = parseConfig({}, 'x.json');
    const ctx = { emit: () => {}, clock, store: null, env: {} };
    const e = await passThroughHooks.createEnricher(config, ctx);
    expect(e).toBe(passThrough);
    expect(await passThroughHooks.startScopeServer(config, e, ctx)).toBeNull();
  });
});
