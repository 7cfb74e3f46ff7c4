import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { PulseEngine } from '../src/pulse/engine.js';
import { PulseRepo } from '../src/pulse/repo.js';
import { pulseStatus } from '../src/pulse/status.js';
import { openStore } from '../src/store/db.js';
import { HOUR, MINUTE, T0, env } from './fixtures/pulse/sim.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A daemon-shaped driver: a fake wall clock, heartbeats every minute, tick() every minute. */
function live(path: string, from: number, to: number, activeHours: (h: number) => boolean, sink: Envelope[]): void {
  let now = from;
  const store = openStore(path);
  try {
    const engine = new PulseEngine({ store, clock: () => now, sink: (e) => sink.push(e), options: { hostAddresses: [], defaults: { quietThreshold: 1, quietWindows: 2 } } });
    for (; now < to; now += MINUTE) {
      engine.ingest(env(now, 'sensor.heartbeat', { 'witness.drops.total': 0 }));
      if (activeHours(Math.floor((now - T0) / HOUR)) && (now - T0) % (10 * MINUTE) === 0) {
        engine.ingest(env(now + 500, 'network.connect', { 'witness.agent': 'coder', 'network.peer.address': '93.184.216.34', 'network.peer.port': 443 }));
      }
      engine.tick();
    }
    engine.tick();
  } finally {
    store.close();
  }
}

describe('live operation with an injectable clock', () => {
  it('a restarted daemon resumes the streak from the store, and status reads it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-live-'));
    dirs.push(dir);
    const path = join(dir, 'witness.db');
    const sink: Envelope[] = [];
    const quiet = (h: number) => h < 3 || h >= 6;
    live(path, T0, T0 + 4 * HOUR + 30 * MINUTE, quiet, sink);   // quiet from 03:00; the daemon stops at 04:30
    const mid = openStore(path);
    expect(pulseStatus(new PulseRepo(mid))[0]).toMatchObject({ agent: 'coder', quietStreak: 1, alertActive: false });
    mid.close();
    live(path, T0 + 4 * HOUR + 40 * MINUTE, T0 + 8 * HOUR, quiet, sink); // back at 04:40
    const kinds = sink.map((e) => `${e.event}@${String(e.attributes['witness.window.start']).slice(11, 13)}`);
    // 04:00 lost its first 40 minutes (and the counters of the daemon that died): degraded, so
    // it neither extends nor resets the streak; 05:00 is the second quiet window.
    expect(kinds).toEqual(['pulse.first_seen@00', 'pulse.degraded@04', 'pulse.alert@05', 'pulse.alert_cleared@06']);
    const end = openStore(path);
    expect(pulseStatus(new PulseRepo(end))[0]).toMatchObject({ quietStreak: 0, alertActive: false, lastWindow: { start: '2026-11-01T07:00:00.000000000Z', status: 'ok' } });
    end.close();
  });
});
