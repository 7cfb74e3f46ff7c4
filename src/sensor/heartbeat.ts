import { rfc3339Nanos, type Envelope } from '../events/envelope.js';
import type { SensorStats, WitnessSensor } from './sensor.js';

/**
 * `sensor.heartbeat`: the observer's own pulse. Carries cumulative per-stage
 * counts and drops, so a reader can tell a quiet agent from a blind sensor.
 */
export function heartbeat(sensor: WitnessSensor, now: Date, final?: SensorStats): Envelope {
  const s = final ?? sensor.stats();
  const kernelDrops = s.droppedTotal - s.userDropped;
  const attributes: Envelope['attributes'] = {
    'witness.sensor.pid': process.pid,
    'witness.sensor.final': final !== undefined,
    'witness.records': s.records,
    'witness.batches': s.batches,
    'witness.decoded': s.decoded,
    'witness.decode_errors': s.decodeErrors,
    'witness.drops.total': s.droppedTotal,
    'witness.drops.kernel': kernelDrops,
    'witness.drops.user': s.userDropped,
  };
  for (const [kind, n] of Object.entries(s.kernelDropped)) if (n > 0) attributes[`witness.drops.kernel.${kind}`] = n;
  // what the probes produced per kind: emitted = delivered (decoded) + dropped, stage by stage
  for (const [kind, n] of Object.entries(s.kernelEmitted)) if (n > 0) attributes[`witness.kernel.emitted.${kind}`] = n;
  return { time: rfc3339Nanos(BigInt(now.getTime()) * 1_000_000n), event: 'sensor.heartbeat', attributes };
}
