import { afterEach, describe, expect, it } from 'vitest';
import { isWitnessError } from '../src/errors.js';
import { buildDigest } from '../src/pulse/digest-model.js';
import { PulseEngine } from '../src/pulse/engine.js';
import { resolvePulseOptions } from '../src/pulse/options.js';
import { PulseRepo } from '../src/pulse/repo.js';
import { pulseStatus } from '../src/pulse/status.js';
import { openStore, type Store } from '../src/store/db.js';
import { HOUR, MINUTE, Sim, T0, env, hourOf, ofKind, runEngine } from './fixtures/pulse/sim.js';

let store: Store | undefined;
afterEach(() => {
  store?.close();
  store = undefined;
});

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (e) { return e; }
  throw new Error('expected an error');
}

describe('clock going backwards', () => {
  it('an event from the past is counted in the open window, which is marked degraded', () => {
    const sim = new Sim().heartbeats(T0, T0 + 4 * HOUR).steady('coder', 0, 4, 4);
    const events = sim.sorted();
    // A 10-minute backwards jump in hour 2.
    const at = events.findIndex((e) => Date.parse(e.time) >= T0 + 2 * HOUR + 30 * MINUTE);
    events.splice(at, 0, env(T0 + 2 * HOUR + 20 * MINUTE, 'network.connect', { 'witness.agent': 'coder', 'network.peer.address': '198.51.100.1', 'network.peer.port': 443 }));
    store = openStore(':memory:');
    const { pulse, records } = runEngine(store, events, {}, T0 + 4 * HOUR);
    const h2 = records.find((r) => r.windowStart === T0 + 2 * HOUR)!;
    expect(h2).toMatchObject({ status: 'degraded', reasons: ['clock_backwards'], externalFlows: 5 });
    expect(ofKind(pulse, 'pulse.degraded').map(hourOf)).toEqual([2]);
  });

  it('small reordering within tolerance is not a clock jump', () => {
    const sim = new Sim().heartbeats(T0, T0 + 2 * HOUR).connect(T0 + 30 * MINUTE, 'coder', '198.51.100.1');
    const events = sim.sorted();
    // Per-CPU buffers: a DNS query 1.5 s later is written before the connect.
    const i = events.findIndex((e) => e.event === 'network.connect');
    events.splice(i, 0, env(T0 + 30 * MINUTE + 1500, 'dns.query', { 'witness.agent': 'coder', 'dns.question.name': 'Example.COM.' }));
    store = openStore(':memory:');
    const { records } = runEngine(store, events, {}, T0 + 2 * HOUR);
    expect(records[0]).toMatchObject({ status: 'ok', dnsNames: ['example.com'] });
  });

  it('a tick backwards closes nothing and the open window says why', () => {
    store = openStore(':memory:');
    let now = T0;
    const engine = new PulseEngine({ store, clock: () => now, options: { hostAddresses: [] } });
    for (let m = 0; m < 60; m++) engine.ingest(env(T0 + m * MINUTE, 'sensor.heartbeat', {}));
    now = T0 + 30 * MINUTE;
    engine.tick();
    now = T0 + 5 * MINUTE;
    expect(engine.tick()).toEqual([]);
    expect(engine.openWindowStart).toBe(T0);
    now = T0 + HOUR;
    const out = engine.tick();
    expect(out.map((e) => [e.event, e.attributes['witness.pulse.reasons']])).toEqual([['pulse.degraded', ['clock_backwards']]]);
  });

  it('a jump of months forward is one coalesced gap, not thousands of rows', () => {
    const sim = new Sim().heartbeats(T0, T0 + 2 * HOUR).steady('coder', 0, 2, 2);
    const later = T0 + 90 * 24 * HOUR;
    sim.heartbeats(later, later + 2 * HOUR).steady('coder', 90 * 24, 90 * 24 + 2, 2);
    store = openStore(':memory:');
    const { pulse, records } = runEngine(store, sim.sorted(), {}, later + 2 * HOUR);
    const gaps = ofKind(pulse, 'pulse.gap', 'coder');
    expect(gaps).toHaveLength(1);
    expect(gaps[0]!.attributes['witness.pulse.reasons']).toEqual(['no_heartbeat', 'clock_jump']);
    expect(records).toHaveLength(5);
    expect(ofKind(pulse, 'pulse.fault')).toHaveLength(0);
  });
});

describe('windows with zero events and agents coming and going', () => {
  it('known agents get a zero row per window; added agents start where they appear; removed ones stop', () => {
    const sim = new Sim().heartbeats(T0, T0 + 40 * HOUR).steady('a', 0, 2, 1).steady('b', 10, 12, 1);
    store = openStore(':memory:');
    const r1 = runEngine(store, sim.sorted().filter((e) => Date.parse(e.time) < T0 + 20 * HOUR), { defaults: { quietThreshold: 0, quietWindows: 1 } }, T0 + 20 * HOUR);
    const a = r1.records.filter((r) => r.agent === 'a');
    const b = r1.records.filter((r) => r.agent === 'b');
    expect(a).toHaveLength(20);
    expect(a.slice(2).every((r) => r.flows === 0 && r.status === 'ok')).toBe(true);
    expect(b[0]!.windowStart).toBe(T0 + 10 * HOUR);
    expect(b).toHaveLength(10);

    r1.engine.removeAgent('b');
    const rest = sim.sorted().filter((e) => Date.parse(e.time) >= T0 + 20 * HOUR);
    const r2 = { pulse: [] as unknown[], records: [] as { agent: string; windowStart: number }[] };
    for (const e of rest.filter((e) => Date.parse(e.time) < T0 + 30 * HOUR)) r2.pulse.push(...r1.engine.ingest(e));
    r1.engine.tick(T0 + 30 * HOUR);
    expect(new PulseRepo(store).windowsBetween(T0 + 20 * HOUR, T0 + 30 * HOUR, 'b')).toHaveLength(0);
    r1.engine.addAgent('b');
    const faults: unknown[] = [];
    for (const e of rest.filter((e) => Date.parse(e.time) >= T0 + 30 * HOUR)) faults.push(...r1.engine.ingest(e).filter((p) => p.event === 'pulse.fault'));
    r1.engine.tick(T0 + 40 * HOUR);
    expect(new PulseRepo(store).windowsBetween(T0 + 30 * HOUR, T0 + 40 * HOUR, 'b')).toHaveLength(10);
    expect(faults).toEqual([]); // a deliberate hole is not a skipped-window fault
    expect(pulseStatus(new PulseRepo(store)).map((s) => s.agent)).toEqual(['a', 'b']);
  });
});

describe('corrupt store rows', () => {
  function seeded(): Store {
    const s = openStore(':memory:');
    runEngine(s, new Sim().heartbeats(T0, T0 + 50 * HOUR).steady('coder', 0, 50, 3).sorted(), {}, T0 + 50 * HOUR);
    return s;
  }

  it('status and digest fail with an E_STORE error naming the row and column', () => {
    store = seeded();
    store.db.prepare("UPDATE pulse_windows SET dns_names = '{oops' WHERE window_start = ?").run(T0 + 49 * HOUR);
    const repo = new PulseRepo(store);
    const err = thrown(() => pulseStatus(repo));
    expect(isWitnessError(err, 'E_STORE')).toBe(true);
    expect((err as Error).message).toContain(`:memory:: pulse_windows(agent=coder, window_start=${T0 + 49 * HOUR}).dns_names`);
    expect(() => buildDigest(repo, T0 + 49 * HOUR, T0 + 50 * HOUR)).toThrow(/dns_names: corrupt row: not a JSON array of strings/);
    store.db.prepare("UPDATE pulse_agents SET quiet_streak = 'many'").run();
    expect(() => repo.listAgents()).toThrow(/pulse_agents\(agent=coder\)\.quiet_streak/);
  });

  it('the engine reports a corrupt history row as pulse.fault and keeps observing', () => {
    store = seeded();
    store.db.prepare("UPDATE pulse_windows SET external_flows = 'lots' WHERE window_start = ?").run(T0 + 26 * HOUR);
    const more = new Sim().heartbeats(T0 + 50 * HOUR, T0 + 52 * HOUR).steady('coder', 50, 52, 3).sorted();
    const { pulse } = runEngine(store, more, {}, T0 + 52 * HOUR);
    const faults = ofKind(pulse, 'pulse.fault', 'coder');
    // Hour 50 (slot 2) reads the bad row and is lost; hour 51 is imported
    // and honestly reports the hole before it.
    expect(faults.map((f) => [hourOf(f), f.attributes['witness.pulse.fault']])).toEqual([[50, 'corrupt_store'], [51, 'skipped_windows']]);
    expect(String(faults[0]!.attributes['witness.pulse.detail'])).toMatch(/external_flows/);
    expect(new PulseRepo(store).windowsBetween(T0 + 51 * HOUR, T0 + 52 * HOUR, 'coder')).toHaveLength(1);
  });

  it('refuses a store built with a different window length', () => {
    store = seeded();
    const err = thrown(() => new PulseEngine({ store: store!, options: { windowMs: 60_000, periodMs: 86_400_000 } }));
    expect((err as Error).message).toMatch(/pulse_meta\.window_ms: store was built with 3600000 ms windows/);
  });
});

describe('options', () => {
  it('reject nonsense with the field named', () => {
    expect(() => resolvePulseOptions({ defaults: { quietWindows: 0 } })).toThrow(/pulse options: defaults\.quietWindows/);
    expect(() => resolvePulseOptions({ windowMs: 7 * 60_000 })).toThrow(/periodMs/);
    expect(() => resolvePulseOptions({ perAgent: { x: { quietThreshold: -1 } } })).toThrow(/perAgent\.x\.quietThreshold/);
    expect(resolvePulseOptions({ windowMs: 10_000 }).windowMs).toBe(10_000);
  });
});

describe('event times', () => {
  it('a time the engine cannot read is E_PULSE, whatever its length; a good one is read to the millisecond', () => {
    store = openStore(':memory:');
    const engine = new PulseEngine({ store, options: {} });
    for (const bad of ['2026-12-02T14:00:0x.123456789Z', 'yesterday', '2026-13-45T99:00:00.123456789Z', '2026-12-02T14:00:00.12a456789Z']) {
      expect(isWitnessError(thrown(() => engine.ingest({ time: bad, event: 'file.write', attributes: {} })), 'E_PULSE'), bad).toBe(true);
    }
    const t = T0 + 1234;
    engine.ingest(env(t, 'network.connect', { 'witness.agent': 'coder', 'network.peer.address': '198.51.100.1', 'network.peer.port': 443 }));
    // the window opened at the event's hour: the time was read, not taken from the clock
    expect(engine.ingest(env(t + HOUR, 'file.write', {})).some((p) => p.event.startsWith('pulse.'))).toBe(true);
  });
});
