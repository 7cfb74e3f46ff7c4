import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { WitnessError } from '../errors.js';
import { envelopeSchema, type Envelope } from '../events/envelope.js';
import { SENSOR_EVENT_NAMES, CONTROL_EVENT_NAMES } from '../events/names.js';
import { parseDuration } from '../pulse/duration.js';
import { STORE_FILE, openStore, stateDir } from '../store/db.js';
import { EventStore } from '../store/events.js';
import { parseArgs, str } from './args.js';
import { humanLine } from './format.js';

const USAGE = 'usage: witness query [--agent A] [--event NAME] [--pid N] [--since 1h] [--until 10m] [--limit N] [--json] [--store FILE]';
const WHERE = 'witness query';

/** `--since 1h` (ago) or an RFC 3339 instant. */
function instant(text: string, field: string, nowMs: number): number {
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new WitnessError('E_CONFIG', `'${text}' is not an RFC 3339 time`, { file: WHERE, field });
    return t;
  }
  try {
    return nowMs - parseDuration(text, field);
  } catch (err) {
    throw new WitnessError('E_CONFIG', `'${text}' is neither a duration (30m, 1h, 2d) nor an RFC 3339 time`, { file: WHERE, field, cause: err });
  }
}

function positiveInt(text: string, field: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new WitnessError('E_CONFIG', `'${text}' is not a positive integer`, { file: WHERE, field });
  return Number(text);
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { booleans: ['json'], strings: ['agent', 'event', 'pid', 'since', 'until', 'limit', 'store'] }, 'query');
  if (positionals.length > 0) throw new WitnessError('E_CONFIG', `unexpected argument '${positionals[0]}'\n${USAGE}`, { file: WHERE });
  const nowMs = Date.now();
  const event = str(flags, 'event');
  const known: readonly string[] = [...SENSOR_EVENT_NAMES, ...CONTROL_EVENT_NAMES];
  if (event !== undefined && !known.includes(event)) {
    throw new WitnessError('E_CONFIG', `unknown event '${event}' (one of: ${known.join(', ')})`, { file: WHERE, field: '--event' });
  }
  const path = str(flags, 'store') ?? join(stateDir(), STORE_FILE);
  if (path !== ':memory:' && !existsSync(path)) {
    throw new WitnessError('E_STORE', 'no store here; is `witness daemon` running with this state directory (WITNESS_STATE_DIR)?', { file: path });
  }
  const since = str(flags, 'since');
  const until = str(flags, 'until');
  const pid = str(flags, 'pid');
  const limit = str(flags, 'limit');
  const agent = str(flags, 'agent');
  const store = openStore(path);
  try {
    const lines = new EventStore(store).query({
      ...(agent !== undefined ? { agent } : {}),
      ...(event !== undefined ? { event } : {}),
      ...(pid !== undefined ? { pid: positiveInt(pid, '--pid') } : {}),
      ...(since !== undefined ? { sinceMs: instant(since, '--since', nowMs) } : {}),
      ...(until !== undefined ? { untilMs: instant(until, '--until', nowMs) } : {}),
      ...(limit !== undefined ? { limit: positiveInt(limit, '--limit') } : {}),
    });
    const json = flags.json === true || !process.stdout.isTTY;
    const out = lines.map((line) => {
      if (json) return line;
      const parsed = envelopeSchema.safeParse(JSON.parse(line));
      return parsed.success ? humanLine(parsed.data as Envelope, true) : line;
    });
    if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    store.close();
  }
}
