import type { WholeLine } from '../export/whole-line.js';
import type { Envelope } from '../events/envelope.js';
import type { SensorEvent } from '../sensor/types.js';

/**
 * The seam between the kernel sensor and everything downstream.
 *
 *   SensorEvent ──toEnvelope──▶ Envelope ──Enricher──▶ [event, ...findings] ──▶ Sink[]
 *
 * An Enricher adds attribution (witness.agent, witness.scope.*, container /
 * pod / unit identity, executable hash) to the event's envelope in place and
 * returns it first, followed by any finding envelopes it raises. It sees the
 * raw SensorEvent too (fork records have no envelope but build the tree).
 */
export interface Enricher {
  /** `env` is null for records that only feed state (fork). */
  enrich(ev: SensorEvent, env: Envelope | null): Envelope[];
  close?(): void | Promise<void>;
  /** Sizes of its bounded state and what the bounds evicted, for the heartbeat (full attribute names). */
  heartbeatAttributes?(): Record<string, number>;
}

/**
 * A Sink takes finished envelopes. `write` must not block the kernel drain:
 * a slow sink queues (bounded) and counts what it drops.
 */
export interface Sink {
  readonly name: string;
  /**
   * `line` is JSON.stringify(compactor.compact(env)), computed once and shared
   * by every sink; `whole`, when given, yields JSON.stringify(env) (built on
   * first ask, mostly from the previous record's: src/export/whole-line.ts)
   */
  write(env: Envelope, line: string, whole?: WholeLine): void;
  stats(): { written: number; dropped: number; queued?: number; queuedBytes?: number };
  /** Sink-specific heartbeat counters (full attribute names), beyond written/dropped/queued. */
  heartbeatAttributes?(): Record<string, number>;
  flush?(): Promise<void>;
  close(): Promise<void>;
}

/** The identity enricher used until attribution is configured. */
export const passThrough: Enricher = {
  enrich: (_ev, env) => (env ? [env] : []),
};
