import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Envelope } from '../events/envelope.js';
import { WitnessError } from '../errors.js';
import { describeEvent } from '../pulse/digest-model.js';
import { parseDuration } from '../pulse/duration.js';
import { PulseRepo } from '../pulse/repo.js';
import { replayFile } from '../pulse/replay.js';
import { formatStatus, pulseStatus } from '../pulse/status.js';
import { defaultStorePath, openStore } from '../store/db.js';

/**
 * `witness pulse status [--json] [--store PATH]`
 * `witness pulse replay [--window DUR] [--quiet-threshold N] [--quiet-windows N]
 *                       [--max-silence DUR] [--digest-dir DIR] [--store PATH] [--json] FILE.ndjson`
 */
const USAGE = `usage:
  witness pulse status [--json] [--store PATH]
  witness pulse replay [--window DUR] [--quiet-threshold N] [--quiet-windows N] [--max-silence DUR]
                       [--digest-dir DIR] [--store PATH] [--json] FILE.ndjson
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'status') return status(rest);
  if (sub === 'replay') return replay(rest);
  process.stderr.write(sub === undefined || sub === '-h' || sub === '--help' ? USAGE : `witness pulse: unknown subcommand '${sub}'\n${USAGE}`);
  return sub === '-h' || sub === '--help' ? 0 : 2;
}

function args(argv: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (cause) {
    throw new WitnessError('E_CONFIG', (cause as Error).message, { field: 'arguments', cause });
  }
}

function count(text: string | undefined, field: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) throw new WitnessError('E_CONFIG', `'${text}' must be an integer >= ${min}`, { field });
  return Number(text);
}

async function status(argv: string[]): Promise<number> {
  const { values } = args(argv, { json: { type: 'boolean' }, store: { type: 'string' } });
  const path = (values.store as string | undefined) ?? defaultStorePath();
  if (!existsSync(path)) {
    throw new WitnessError('E_STORE', 'no pulse store here yet (has the daemon run? set WITNESS_STATE_DIR or --store)', { file: path });
  }
  const store = openStore(path);
  try {
    const rows = pulseStatus(new PulseRepo(store));
    process.stdout.write(values.json ? `${JSON.stringify({ store: path, agents: rows })}\n` : formatStatus(rows));
    return 0;
  } finally {
    store.close();
  }
}

async function replay(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, {
    window: { type: 'string' }, 'quiet-threshold': { type: 'string' }, 'quiet-windows': { type: 'string' },
    'max-silence': { type: 'string' }, 'digest-dir': { type: 'string' }, store: { type: 'string' }, json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new WitnessError('E_CONFIG', 'expected exactly one FILE.ndjson', { field: 'FILE' });
  const file = positionals[0]!;
  if (!existsSync(file)) throw new WitnessError('E_IO', 'no such file', { file });
  const v = values as Record<string, string | boolean | undefined>;
  const windowMs = v.window === undefined ? undefined : parseDuration(v.window as string, '--window');
  const quietThreshold = count(v['quiet-threshold'] as string | undefined, '--quiet-threshold', 0);
  const quietWindows = count(v['quiet-windows'] as string | undefined, '--quiet-windows', 1);
  const maxSilenceMs = v['max-silence'] === undefined ? undefined : parseDuration(v['max-silence'] as string, '--max-silence');
  const store = openStore((v.store as string | undefined) ?? ':memory:');
  const json = v.json === true;
  const print = (e: Envelope): void => {
    // Human lines are keyed by the window the event is about (as in the digest).
    const window = String(e.attributes['witness.window.start'] ?? e.time).slice(0, 16);
    process.stdout.write(json ? `${JSON.stringify(e)}\n` : `${window}Z  ${e.event.padEnd(19)} ${String(e.attributes['witness.agent']).padEnd(16)} ${describeEvent({ timeMs: 0, event: e.event, agent: '', windowStart: null, attributes: e.attributes })}\n`);
  };
  try {
    const summary = await replayFile(file, {
      store,
      options: {
        ...(windowMs !== undefined ? { windowMs, periodMs: periodFor(windowMs) } : {}),
        ...(maxSilenceMs !== undefined ? { maxSilenceMs } : {}),
        defaults: { ...(quietThreshold !== undefined ? { quietThreshold } : {}), ...(quietWindows !== undefined ? { quietWindows } : {}) },
      },
      ...(v['digest-dir'] !== undefined ? { digestDir: v['digest-dir'] as string } : {}),
      onEvent: print,
    });
    const counts = Object.entries(summary.pulseEvents).map(([k, n]) => `${k}=${n}`).join(' ') || 'none';
    process.stderr.write(`replayed ${summary.events} events (${summary.skippedUnknown} of unknown kinds skipped), closed ${summary.windowsClosed} windows, agents: ${summary.agents.join(', ') || 'none'}; pulse events: ${counts}${summary.digests.length ? `; ${summary.digests.length} digests written` : ''}\n`);
    return 0;
  } finally {
    store.close();
  }
}

/** The band's period stays a day when the window divides it, else becomes 24 windows. */
function periodFor(windowMs: number): number {
  const day = 86_400_000;
  return day % windowMs === 0 ? day : windowMs * 24;
}
