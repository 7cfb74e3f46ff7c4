import { afterEach, describe, expect, it } from 'vitest';
import { scoreBeacon } from '../src/pulse/beacon.js';
import { bowleySkew, mad, median } from '../src/pulse/stats.js';
import { openStore, type Store } from '../src/store/db.js';
import { HOUR, MINUTE, Sim, T0, ofKind, prng, runEngine } from './fixtures/pulse/sim.js';

const DAY = 24 * HOUR;
let store: Store | undefined;
afterEach(() => store?.close());

describe('beacon scoring parts', () => {
  it('robust statistics behave on known inputs', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(mad([1, 2, 3, 4, 100])).toBe(1);
    expect(bowleySkew([1, 2, 3, 4, 5])).toBe(0);
    expect(bowleySkew([1, 1.1, 1.2, 5, 9])).toBeGreaterThan(0.5);
  });

  it('a strict timer scores ~1; exponential (Poisson) arrivals do not', () => {
    const timer = Array.from({ length: 1440 }, (_, i) => T0 + i * MINUTE);
    const s = scoreBeacon(timer, timer.map(() => null), T0 + DAY, DAY)!;
    expect(s.score).toBeGreaterThan(0.99);
    expect(s.dataSize).toBeNull();

    const rnd = prng(7);
    const poisson: number[] = [];
    for (let t = T0; t < T0 + DAY; t += -Math.log(1 - rnd()) * MINUTE) poisson.push(t);
    const p = scoreBeacon(poisson, poisson.map(() => null), T0 + DAY, DAY)!;
    expect(p.score).toBeLessThan(0.8);
    expect(p.interval).toBeLessThan(0.7);
  });

  it('bursts of evenly spaced connections are not a beacon', () => {
    const rnd = prng(11);
    const burst: number[] = [];
    for (let h = 0; h < 24; h++) {
      for (let b = 0; b < Math.floor(rnd() * 3); b++) {
        const at = T0 + h * HOUR + rnd() * HOUR;
        for (let i = 0; i < 5; i++) burst.push(at + i * 2000);
      }
    }
    const s = scoreBeacon(burst, burst.map(() => null), T0 + DAY, DAY)!;
    expect(s.interval).toBeLessThan(0.1);
    expect(s.score).toBeLessThan(0.6);
  });

  it('regular sizes raise the score and irregular sizes lower it', () => {
    const rnd = prng(3);
    const ts = Array.from({ length: 200 }, (_, i) => T0 + i * 5 * MINUTE + rnd() * 60_000);
    const same = scoreBeacon(ts, ts.map(() => 512), T0 + DAY, DAY)!;
    const wild = scoreBeacon(ts, ts.map(() => Math.floor(rnd() ** 4 * 1e6)), T0 + DAY, DAY)!;
    expect(same.dataSize).toBeGreaterThan(0.95);
    expect(wild.dataSize!).toBeLessThan(same.dataSize!);
    expect(wild.score).toBeLessThan(same.score);
  });
});

describe('beacon detection over 72 simulated hours', () => {
  it('finds a 60 s beacon with jitter and not random traffic', () => {
    const rnd = prng(42);
    const sim = new Sim().heartbeats(T0, T0 + 72 * HOUR);
    // The implant: every 60 s ± 5 s, all three days.
    for (let t = T0 + 17_000; t < T0 + 72 * HOUR; t += 60_000 + (rnd() * 10_000 - 5_000)) sim.connect(Math.floor(t), 'coder', '203.0.113.50');
    // A busy but human agent: bursts at random times to a pool of 40 hosts...
    for (let h = 0; h < 72; h++) {
      const bursts = Math.floor(rnd() * 4);
      for (let b = 0; b < bursts; b++) {
        const at = T0 + h * HOUR + Math.floor(rnd() * HOUR);
        const n = 1 + Math.floor(rnd() * 12);
        for (let i = 0; i < n; i++) sim.connect(at + i * Math.floor(rnd() * 3000), 'coder', `198.51.100.${Math.floor(rnd() * 40)}`);
      }
    }
    // ...and one host it talks to at random (Poisson, ~1/min) all day.
    for (let t = T0; t < T0 + 72 * HOUR; t += -Math.log(1 - rnd()) * MINUTE) sim.connect(Math.floor(t), 'coder', '192.0.2.200');
    // Loopback health checks are regular too, but never leave the host.
    for (let t = T0; t < T0 + 72 * HOUR; t += 30_000) sim.connect(t, 'coder', '127.0.0.1', 9000);

    store = openStore(':memory:');
    const { pulse } = runEngine(store, sim.sorted(), {}, T0 + 72 * HOUR);
    const beacons = ofKind(pulse, 'pulse.beacon');
    expect(beacons.map((b) => b.attributes['witness.destination'])).toEqual(['203.0.113.50:443']);
    const a = beacons[0]!.attributes;
    expect(a['witness.agent']).toBe('coder');
    expect(a['witness.pulse.score']).toBeGreaterThanOrEqual(0.8);
    expect(a['witness.pulse.score.data_size']).toBeNull();
    expect(Number(a['witness.pulse.interval.median_s'])).toBeGreaterThan(55);
    expect(Number(a['witness.pulse.interval.median_s'])).toBeLessThan(65);
    for (const key of ['witness.pulse.score.interval', 'witness.pulse.score.histogram', 'witness.pulse.score.duration']) {
      expect(typeof a[key]).toBe('number');
    }
  });
});
