import { rfc3339Nanos, type Envelope } from '../events/envelope.js';
import type { SensorStats, WitnessSensor } from './sensor.js';

/** Processes a heartbeat names as the top droppers. */
export const HEARTBEAT_TOP_DROPPERS = 5;

const snake = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * `sensor.heartbeat`: the observer's own pulse. Carries cumulative per-stage
 * counts and drops, the processes losing the most records, and the repeats
 * counted instead of written, so a reader can tell a quiet agent from a
 * blind sensor and a flood from a gap.
 */
export function heartbeat(sensor: Pick<WitnessSensor, 'stats' | 'dropsByProcess'>, now: Date, final?: SensorStats): Envelope {
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
    'witness.poll_errors': s.pollErrors,
  };
  if (s.pollFatalErrno !== 0) attributes['witness.poll_fatal_errno'] = s.pollFatalErrno;
  for (const [kind, n] of Object.entries(s.kernelDropped)) if (n > 0) attributes[`witness.drops.kernel.${kind}`] = n;
  // what the probes produced per kind: emitted = delivered (decoded) + dropped, stage by stage
  for (const [kind, n] of Object.entries(s.kernelEmitted)) if (n > 0) attributes[`witness.kernel.emitted.${kind}`] = n;
  const top = sensor.dropsByProcess(HEARTBEAT_TOP_DROPPERS);
  if (top.length > 0) {
    attributes['witness.drops.top.pids'] = top.map((d) => String(d.pid));
    attributes['witness.drops.top.comms'] = top.map((d) => d.comm);
    attributes['witness.drops.top.counts'] = top.map((d) => String(d.count));
  }
  let suppressed = 0;
  for (const [kind, n] of Object.entries(s.kernelSuppressed)) {
    if (n === 0) continue;
    attributes[`witness.suppressed.${kind}`] = n;
    suppressed += n;
  }
  attributes['witness.suppressed.total'] = suppressed;
  for (const [name, n] of Object.entries(s.loss)) if (n > 0) attributes[`witness.loss.${snake(name)}`] = n;
  return { time: rfc3339Nanos(BigInt(now.getTime()) * 1_000_000n), event: 'sensor.heartbeat', attributes };
}
