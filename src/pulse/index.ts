import type { Envelope } from '../events/envelope.js';
import { parseRfc3339Nanos } from '../events/envelope.js';
import { openStore } from '../store/db.js';
import { PulseEngine } from './engine.js';
import type { PulseOptionsInput } from './options.js';
import type { WindowRecord } from './window.js';

export { PulseEngine, type PulseEngineInit } from './engine.js';
export { resolvePulseOptions, DEFAULT_PULSE_OPTIONS, type PulseOptions, type PulseOptionsInput, type AgentThresholds } from './options.js';
export { isExternalAddress, hostAddresses, destinationKey } from './addresses.js';
export { PulseRepo } from './repo.js';
export { pulseStatus, formatStatus, type AgentStatus } from './status.js';
export { writeDigest, digestPath, defaultDigestDir } from './digest.js';
export { replayFile, type ReplaySummary } from './replay.js';
export { importWindows, type ImportFault } from './importer.js';
export type { WindowRecord, WindowStatus, WindowReason } from './window.js';

/**
 * Runs captured events through a throwaway engine (in-memory store) and
 * closes every window they touch, returning the closed windows' records.
 * Meant for end-to-end tests: trace a child, hand its events here, assert on
 * `flows` / `externalFlows`. Without sensor.heartbeat events the windows are
 * marked 'gap' (nobody vouched for the sensor), but the counts are real.
 */
export function closeWindowsFor(events: readonly Envelope[], options: PulseOptionsInput = {}): WindowRecord[] {
  const store = openStore(':memory:');
  const records: WindowRecord[] = [];
  try {
    const engine = new PulseEngine({ store, options, onWindow: (r) => records.push(...r) });
    let last = -Infinity;
    for (const e of events) {
      engine.ingest(e);
      last = Math.max(last, Number(parseRfc3339Nanos(e.time) / 1_000_000n));
    }
    if (Number.isFinite(last)) {
      const w = engine.options.windowMs;
      engine.tick(Math.floor(last / w) * w + w);
    }
    return records;
  } finally {
    store.close();
  }
}
