import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { attributeValueSchema, RFC3339_NS, type Envelope } from '../events/envelope.js';
import { CONTROL_EVENT_NAMES, SENSOR_EVENT_NAMES } from '../events/names.js';
import { WitnessError } from '../errors.js';
import type { Store } from '../store/db.js';
import { writeDigest } from './digest.js';
import { PulseEngine } from './engine.js';
import type { PulseOptionsInput } from './options.js';
import type { WindowRecord } from './window.js';

/**
 * Offline pulse over a recorded NDJSON stream (the sensor's export format),
 * driven by the events' own timestamps. Event names this build does not know
 * (a newer sensor's) are skipped and counted, not fatal; a malformed line is
 * fatal and named by file:line and field.
 */
const KNOWN = new Set<string>([...SENSOR_EVENT_NAMES, ...CONTROL_EVENT_NAMES]);

const lineSchema = z.object({
  time: z.string().regex(RFC3339_NS, 'time must be RFC 3339 UTC with nanoseconds'),
  event: z.string().min(1),
  attributes: z.record(z.string(), attributeValueSchema),
});

export interface ReplayOptions {
  store: Store;
  options?: PulseOptionsInput;
  digestDir?: string;
  /** Receives each pulse event as it is raised. */
  onEvent?: (e: Envelope) => void;
}

export interface ReplaySummary {
  lines: number;
  events: number;
  skippedUnknown: number;
  windowsClosed: number;
  agents: string[];
  pulseEvents: Record<string, number>;
  digests: string[];
}

export function parseLine(text: string, file: string, lineNo: number): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `not JSON (${(cause as Error).message})`, { file: `${file}:${lineNo}`, field: 'line', cause });
  }
  const r = lineSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new WitnessError('E_CONFIG', issue.message, { file: `${file}:${lineNo}`, field: issue.path.join('.') || 'line' });
  }
  return r.data as Envelope;
}

export async function replayFile(file: string, ro: ReplayOptions): Promise<ReplaySummary> {
  const summary: ReplaySummary = { lines: 0, events: 0, skippedUnknown: 0, windowsClosed: 0, agents: [], pulseEvents: {}, digests: [] };
  const engine = new PulseEngine({
    store: ro.store,
    ...(ro.options ? { options: ro.options } : {}),
    sink: (e) => {
      summary.pulseEvents[e.event] = (summary.pulseEvents[e.event] ?? 0) + 1;
      ro.onEvent?.(e);
    },
    onWindow: (records: readonly WindowRecord[]) => {
      summary.windowsClosed++;
      const first = records[0];
      if (ro.digestDir !== undefined && first) {
        summary.digests.push(writeDigest(engine.repo, ro.digestDir, first.windowStart, first.windowEnd).dir);
      }
    },
  });
  const input = createReadStream(file, { encoding: 'utf8' });
  input.on('error', () => { /* surfaced by the iterator below */ });
  try {
    const lines = createInterface({ input, crlfDelay: Infinity });
    for await (const text of lines) {
      summary.lines++;
      if (text.trim() === '') continue;
      const env = parseLine(text, file, summary.lines);
      if (!KNOWN.has(env.event)) {
        summary.skippedUnknown++;
        continue;
      }
      summary.events++;
      engine.ingest(env);
    }
  } catch (cause) {
    if (cause instanceof WitnessError) throw cause;
    throw new WitnessError('E_IO', `cannot read (${(cause as Error).message})`, { file, cause });
  }
  summary.agents = engine.knownAgents;
  return summary;
}
