import { rfc3339Nanos, type AttributeValue, type Attributes, type Envelope } from '../events/envelope.js';
import type { ControlEventName } from '../events/names.js';

/**
 * Pulse events use the sensor's envelope so one NDJSON reader handles both.
 * Every pulse event names its agent and the window it is about.
 */
export type PulseEventName = Extract<ControlEventName, `pulse.${string}`>;

export function msToRfc3339(ms: number): string {
  return rfc3339Nanos(BigInt(Math.trunc(ms)) * 1_000_000n);
}

export function pulseEvent(
  event: PulseEventName,
  agent: string,
  window: { start: number; end: number },
  extra: Record<string, AttributeValue | undefined> = {},
): Envelope {
  const attributes: Attributes = {
    'witness.agent': agent,
    'witness.window.start': msToRfc3339(window.start),
    'witness.window.end': msToRfc3339(window.end),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) attributes[k] = v;
  // Stamped at the window's end: that is when the pulse could know it.
  return { time: msToRfc3339(window.end), event, attributes };
}

/** Rounds scores for output; full precision adds noise, not information. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
