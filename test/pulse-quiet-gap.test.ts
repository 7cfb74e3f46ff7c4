import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { openStore, type Store } from '../src/store/db.js';
import { HOUR, MINUTE, Sim, T0, hourOf, ofKind, runEngine } from './fixtures/pulse/sim.js';

const OPTS = { defaults: { quietThreshold: 1, quietWindows: 3 } };
let store: Store | undefined;
afterEach(() => store?.close());

describe('pulse quiet streak over 72 simulated hours', () => {
  it('raises the soft alert after N quiet windows and clears it on recovery', () => {
    const N = 3;
    // Active every hour except 30..33: N+1 quiet windows.
    const sim = new Sim().heartbeats(T0, T0 + 72 * HOUR).steady('coder', 0, 30, 5).steady('coder', 34, 72, 5);
    store = openStore(':memory:');
    const { pulse, records } = runEngine(store, sim.sorted(), OPTS, T0 + 72 * HOUR);

    const alerts = ofKind(pulse, 'pulse.alert', 'coder');
    const cleared = ofKind(pulse, 'pulse.alert_cleared', 'coder');
    expect(alerts).toHaveLength(1);
    expect(hourOf(alerts[0]!)).toBe(30 + N - 1); // third quiet window
    expect(alerts[0]!.attributes['witness.pulse.severity']).toBe('soft');
    expect(alerts[0]!.attributes['witness.pulse.streak']).toBe(N);
    expect(cleared).toHaveLength(1);
    expect(hourOf(cleared[0]!)).toBe(34);

    const coder = records.filter((r) => r.agent === 'coder');
    expect(coder).toHaveLength(72);
    expect(coder.map((r) => r.quietStreak).slice(29, 35)).toEqual([0, 1, 2, 3, 4, 0]);
    expect(coder.map((r) => r.alertActive).slice(31, 35)).toEqual([false, true, true, false]);
    expect(ofKind(pulse, 'pulse.gap')).toHaveLength(0);
    expect(coder.every((r) => r.status === 'ok')).toBe(true);
  });

  it('honours per-agent thresholds', () => {
    const sim = new Sim().heartbeats(T0, T0 + 10 * HOUR).steady('chatty', 0, 10, 2).steady('calm', 0, 10, 2);
    store = openStore(':memory:');
    const { pulse } = runEngine(store, sim.sorted(), { defaults: { quietThreshold: 1, quietWindows: 3 }, perAgent: { chatty: { quietThreshold: 5 } } }, T0 + 10 * HOUR);
    expect(ofKind(pulse, 'pulse.alert', 'chatty')).toHaveLength(1);
    expect(ofKind(pulse, 'pulse.alert', 'calm')).toHaveLength(0);
  });
});

describe('pulse gaps are the observer’s silence, not the agent’s', () => {
  it('a sensor outage yields pulse.gap and no quiet alert', () => {
    // The sensor is down 40:00–45:00: no heartbeats and (of course) no agent events.
    const sim = new Sim()
      .heartbeats(T0, T0 + 40 * HOUR).heartbeats(T0 + 45 * HOUR, T0 + 72 * HOUR)
      .steady('coder', 0, 40, 5).steady('coder', 45, 72, 5);
    store = openStore(':memory:');
    const { pulse, records } = runEngine(store, sim.sorted(), OPTS, T0 + 72 * HOUR);

    const gaps = ofKind(pulse, 'pulse.gap', 'coder');
    expect(gaps.map(hourOf)).toEqual([40, 41, 42, 43, 44]);
    expect(gaps[0]!.attributes['witness.pulse.reasons']).toEqual(['no_heartbeat']);
    expect(ofKind(pulse, 'pulse.alert')).toHaveLength(0);
    const gapRows = records.filter((r) => r.status === 'gap');
    expect(gapRows.map((r) => r.quietStreak)).toEqual([0, 0, 0, 0, 0]);
    // The window the sensor came back in was fully watched.
    expect(records.find((r) => r.windowStart === T0 + 45 * HOUR)!.status).toBe('ok');
  });

  it('a restart, drops and a partial outage mark the window degraded', () => {
    const sim = new Sim()
      .heartbeats(T0, T0 + 2 * HOUR + 10 * MINUTE, MINUTE, (t) => (t >= T0 + HOUR + 30 * MINUTE ? 7 : 0))
      .heartbeats(T0 + 2 * HOUR + 30 * MINUTE, T0 + 5 * HOUR) // 20 min blind in hour 2
      .push(T0 + 3 * HOUR + 5 * MINUTE, 'sensor.restart', {})
      .steady('coder', 0, 5, 5);
    store = openStore(':memory:');
    const { pulse, records } = runEngine(store, sim.sorted(), OPTS, T0 + 5 * HOUR);
    const byHour = (h: number) => records.find((r) => r.windowStart === T0 + h * HOUR)!;
    expect(byHour(0).status).toBe('ok');
    expect(byHour(1)).toMatchObject({ status: 'degraded', reasons: ['drops'], drops: 7 });
    expect(byHour(2)).toMatchObject({ status: 'degraded', reasons: ['partial_coverage'] });
    expect(byHour(3)).toMatchObject({ status: 'degraded', reasons: ['sensor_restart'] });
    expect(byHour(4).status).toBe('ok');
    expect(ofKind(pulse, 'pulse.degraded').map(hourOf)).toEqual([1, 2, 3]);
    expect(ofKind(pulse, 'pulse.degraded')[0]!.attributes['witness.drops.window']).toBe(7);
  });

  it('reports an observer gap even before any agent is known', () => {
    store = openStore(':memory:');
    const sim = new Sim().heartbeats(T0, T0 + HOUR);
    const { pulse } = runEngine(store, sim.sorted(), OPTS, T0 + 3 * HOUR);
    expect(ofKind(pulse, 'pulse.gap', 'unattributed').map(hourOf)).toEqual([1, 2]);
  });
});

describe('first-seen destinations', () => {
  it('a destination is first-seen exactly once, even across an engine restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-fs-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const sim = new Sim().heartbeats(T0, T0 + 72 * HOUR).steady('coder', 0, 72, 2)
      .connect(T0 + 5 * HOUR + 1000, 'coder', '198.51.100.9')
      .connect(T0 + 20 * HOUR + 1000, 'coder', '198.51.100.9')
      .connect(T0 + 20 * HOUR + 2000, 'coder', '127.0.0.1', 8080)   // loopback: never "first seen"
      .connect(T0 + 21 * HOUR, 'coder', '192.0.2.99', 22)            // the host's own address
      .connect(T0 + 50 * HOUR + 1000, 'coder', '198.51.100.9');
    const events = sim.sorted();
    const cut = events.findIndex((e) => Date.parse(e.time) >= T0 + 30 * HOUR);
    const first = openStore(join(dir, 'witness.db'));
    const a = runEngine(first, events.slice(0, cut), OPTS);
    first.close();
    store = openStore(join(dir, 'witness.db'));
    const b = runEngine(store, events.slice(cut), OPTS, T0 + 72 * HOUR);
    const seen = [...a.pulse, ...b.pulse].filter((e) => e.event === 'pulse.first_seen');
    expect(seen.map((e) => e.attributes['witness.destination'])).toEqual(['93.184.216.34:443', '198.51.100.9:443']);
    expect(hourOf(seen[1]!)).toBe(5);
    const row = [...a.records, ...b.records].find((r) => r.windowStart === T0 + 5 * HOUR && r.agent === 'coder')!;
    expect(row.firstSeen).toEqual(['198.51.100.9:443']);
  });
});
