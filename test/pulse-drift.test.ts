import { afterEach, describe, expect, it } from 'vitest';
import { computeBand, outsideBand } from '../src/pulse/band.js';
import { PulseRepo } from '../src/pulse/repo.js';
import { openStore, type Store } from '../src/store/db.js';
import { HOUR, Sim, T0, hourOf, ofKind, runEngine } from './fixtures/pulse/sim.js';

let store: Store | undefined;
afterEach(() => store?.close());

const PARAMS = { k: 3, floor: 3, floorRatio: 0.25, minSamples: 2 };

describe('congruence band', () => {
  it('is median ± k·1.4826·MAD with a floor, unarmed below the minimum history', () => {
    expect(computeBand([10], PARAMS)).toBeNull();
    const flat = computeBand([10, 10], PARAMS)!;
    expect(flat).toMatchObject({ median: 10, low: 7, high: 13, samples: 2 }); // MAD 0: the floor holds
    const spread = computeBand([10, 20, 30, 40, 50], PARAMS)!;
    expect(spread.median).toBe(30);
    expect(spread.high).toBeCloseTo(30 + 3 * 1.4826 * 10);
    expect(spread.low).toBe(0); // never negative
    expect(outsideBand(14, flat)).toBe('above');
    expect(outsideBand(6, flat)).toBe('below');
    expect(outsideBand(13, flat)).toBeNull();
    expect(computeBand([0, 0, 0], PARAMS)!.high).toBe(3); // small counts: one extra flow is not drift
  });
});

describe('drift over 72 simulated hours', () => {
  it('arms after two periods and names the metric outside its band', () => {
    const sim = new Sim().heartbeats(T0, T0 + 72 * HOUR).steady('coder', 0, 72, 10);
    // Day 3, 12:00: a flood of external flows and a burst of execs.
    sim.steady('coder', 60, 61, 90, '93.184.216.34');
    for (let i = 0; i < 20; i++) sim.push(T0 + 60 * HOUR + i * 1000, 'process.exec', { 'witness.agent': 'coder', 'process.pid': 100 + i });
    store = openStore(':memory:');
    const { pulse } = runEngine(store, sim.sorted(), {}, T0 + 72 * HOUR);
    const drift = ofKind(pulse, 'pulse.drift', 'coder');
    expect(drift.map((d) => [hourOf(d), d.attributes['witness.pulse.metric'], d.attributes['witness.pulse.direction']]))
      .toEqual([[60, 'flows', 'above'], [60, 'external_flows', 'above'], [60, 'execs', 'above']]);
    const ext = drift[1]!.attributes;
    expect(ext['witness.pulse.value']).toBe(100);
    expect(ext['witness.pulse.band.median']).toBe(10);
    expect(ext['witness.pulse.band.samples']).toBe(2);
    // Status carries the external-flows band once armed.
    expect(new PulseRepo(store).agentState('coder')!.lastBand).toMatchObject({ median: 10, samples: 2 });
  });

  it('does not arm during the first two periods, and never judges a gap window', () => {
    // Day 2 hour 6 is wild (unarmed: only one period of history), and day 3
    // hour 6 is wild but unobserved by the sensor (a gap).
    const sim = new Sim().heartbeats(T0, T0 + 54 * HOUR).heartbeats(T0 + 55 * HOUR, T0 + 72 * HOUR)
      .steady('coder', 0, 72, 10).steady('coder', 30, 31, 200).steady('coder', 54, 55, 200);
    store = openStore(':memory:');
    const early = runEngine(store, sim.sorted().filter((e) => Date.parse(e.time) < T0 + 48 * HOUR), {}, T0 + 48 * HOUR);
    expect(new PulseRepo(store).agentState('coder')!.lastBand).toBeNull();
    const late = runEngine(store, sim.sorted().filter((e) => Date.parse(e.time) >= T0 + 48 * HOUR), {}, T0 + 72 * HOUR);
    expect(ofKind(late.pulse, 'pulse.gap').map(hourOf)).toEqual([54]);
    expect(ofKind([...early.pulse, ...late.pulse], 'pulse.drift')).toHaveLength(0);
    expect(new PulseRepo(store).agentState('coder')!.lastBand).toMatchObject({ median: 10 });
  });
});
