import { parseRfc3339Nanos, type AttributeValue, type Envelope } from '../events/envelope.js';
import { SCHEMA_VERSION, SERVICE_NAME, SERVICE_VERSION, hostIdentity } from './schema.js';

/**
 * Envelope → OTLP/JSON log record (opentelemetry-proto, JSON encoding). In
 * that encoding 64-bit integers are decimal strings: `timeUnixNano` and every
 * `intValue`. JSON nulls (e.g. `dns.question.name` of an unparsable query)
 * have no AnyValue equivalent and are left out of the record's attributes.
 */
export type AnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: AnyValue[] } };

export interface KeyValue { key: string; value: AnyValue }

export interface OtlpLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: AnyValue;
  attributes: KeyValue[];
}

// SeverityNumber: INFO = 9, WARN = 13 (logs data model).
const WARN_PREFIXES = ['finding.', 'pulse.alert', 'pulse.gap', 'pulse.beacon', 'pulse.fault', 'sensor.drops'];

export function severityOf(event: string): { number: number; text: string } {
  for (const p of WARN_PREFIXES) if (event.startsWith(p)) return { number: 13, text: 'WARN' };
  return { number: 9, text: 'INFO' };
}

export function anyValue(v: Exclude<AttributeValue, null>): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  return { arrayValue: { values: v.map((s) => ({ stringValue: s })) } };
}

export function toLogRecord(env: Envelope, observedNs: bigint): OtlpLogRecord {
  const attributes: KeyValue[] = [{ key: 'event.name', value: { stringValue: env.event } }];
  for (const [key, value] of Object.entries(env.attributes)) {
    if (value !== null) attributes.push({ key, value: anyValue(value) });
  }
  const sev = severityOf(env.event);
  return {
    timeUnixNano: parseRfc3339Nanos(env.time).toString(),
    observedTimeUnixNano: observedNs.toString(),
    severityNumber: sev.number,
    severityText: sev.text,
    eventName: env.event,
    body: { stringValue: env.event },
    attributes,
  };
}

export function resourceAttributes(extra: Record<string, string> = {}): KeyValue[] {
  const attrs: Record<string, string> = {
    'service.name': SERVICE_NAME,
    'service.version': SERVICE_VERSION,
    ...hostIdentity(),
    'os.type': 'linux',
    'witness.schema_version': SCHEMA_VERSION,
    ...extra,
  };
  return Object.entries(attrs).map(([key, value]) => ({ key, value: { stringValue: value } }));
}

/** The body of one `POST /v1/logs` (ExportLogsServiceRequest). */
export function exportRequest(resource: KeyValue[], records: OtlpLogRecord[]): string {
  return JSON.stringify({
    resourceLogs: [{
      resource: { attributes: resource },
      scopeLogs: [{ scope: { name: SERVICE_NAME, version: SERVICE_VERSION }, logRecords: records }],
    }],
  });
}
