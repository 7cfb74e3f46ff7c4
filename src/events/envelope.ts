import { z } from 'zod';
import { CONTROL_EVENT_NAMES, SENSOR_EVENT_NAMES, type EventName } from './names.js';

/**
 * One NDJSON line: `{"time": RFC3339 with ns, "event": name, "attributes": {...}}`.
 * Attribute keys follow OpenTelemetry semantic conventions where one exists
 * (process.pid, network.peer.address, ...) and live under `witness.*` otherwise.
 * Values are JSON scalars or arrays of strings; 64-bit integers that may exceed
 * 2^53 are carried as decimal strings.
 */
export type AttributeValue = string | number | boolean | null | string[];
export type Attributes = Record<string, AttributeValue>;

export interface Envelope {
  time: string;
  event: EventName;
  attributes: Attributes;
}

export const attributeValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);

// RFC 3339 with 9 fractional digits, UTC: 2026-11-22T03:28:57.123456789Z
export const RFC3339_NS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;

export const envelopeSchema = z.object({
  time: z.string().regex(RFC3339_NS, 'time must be RFC 3339 UTC with nanoseconds'),
  event: z.enum([...SENSOR_EVENT_NAMES, ...CONTROL_EVENT_NAMES]),
  attributes: z.record(z.string(), attributeValueSchema),
}).strict();

/** Formats a wall-clock instant given as nanoseconds since the Unix epoch. */
export function rfc3339Nanos(epochNs: bigint): string {
  const ms = epochNs / 1_000_000n;
  const frac = (epochNs % 1_000_000_000n).toString().padStart(9, '0');
  const base = new Date(Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${base.slice(0, 19)}.${frac}Z`;
}

/** Parses the `time` field back to epoch nanoseconds. */
export function parseRfc3339Nanos(time: string): bigint {
  if (!RFC3339_NS.test(time)) throw new RangeError(`not RFC 3339 with ns: ${time}`);
  const secs = BigInt(Date.parse(`${time.slice(0, 19)}Z`)) / 1000n;
  return secs * 1_000_000_000n + BigInt(time.slice(20, 29));
}

export function envelope(time: string, event: EventName, attributes: Attributes): Envelope {
  return { time, event, attributes };
}
