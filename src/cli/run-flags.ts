import { WitnessError } from '../errors.js';
import { parseDuration } from '../pulse/duration.js';
import { parseArgs, str, type ParsedArgs } from './args.js';

/**
 * `witness run`'s flags, parsed and checked with nothing but node:util and
 * two tiny modules: the thin entry (run-entry.ts) decides from them whether a
 * running daemon can record this run before it loads anything heavy, and the
 * standalone path (run.ts) reads the same settings.
 */

export const RUN_USAGE = 'usage: witness run [--user USER[:GROUP] | --as-root] [--allow-io-uring] [--linger DURATION] [--leave-running] [--window DURATION] [--no-resident] [--tls-metadata [--tls-content]]\n' +
  '                   [--json] [--out FILE] [--heartbeat SECONDS] [--sign-key FILE] [--session-dir DIR]\n' +
  '                   [--track PATH[,PATH...]] [--no-ledger] [--manifest agents.json] [--witness URL=VKEYFILE ...]\n' +
  '                   [--scope-run R --scope-session S [--scope-tool-call T] [--scope-tool-name N]]\n' +
  '                   [--budget-events N] [--budget-window-ms MS] -- CMD [ARGS...]';

/** src/pulse/options.ts has it too, but that module loads zod */
const HOUR_MS = 3_600_000;
const DEFAULT_LINGER_MS = 5000;

export interface RunScope { run: string; session: string; toolCall?: string; toolName?: string }

/** Everything the flags say about recording (JSON: the resident daemon receives it as is). */
export interface RunSettings {
  command: string[];
  out?: string;
  heartbeatSeconds: number;
  budgetEvents?: number;
  budgetWindowMs?: number;
  lingerMs: number;
  leaveRunning: boolean;
  /** the pulse window grid the session ledger checkpoints on */
  windowMs: number;
  ledger: boolean;
  sessionDir?: string;
  signKey?: string;
  track?: string[];
  manifest?: string;
  scope?: RunScope;
  tlsMetadata: boolean;
  tlsContent: boolean;
}

const BOOLEANS = ['json', 'no-ledger', 'as-root', 'allow-io-uring', 'leave-running', 'no-resident', 'tls-metadata', 'tls-content'];
const STRINGS = ['out', 'heartbeat', 'sign-key', 'session-dir', 'track', 'manifest', 'scope-run', 'scope-session',
  'scope-tool-call', 'scope-tool-name', 'user', 'linger', 'budget-events', 'budget-window-ms', 'window'];

/** argv without `--witness` flags (cosigner/push.ts takes those first); `rest` is the command. */
export function parseRunArgs(argv: string[]): ParsedArgs {
  const parsed = parseArgs(argv, { booleans: BOOLEANS, strings: STRINGS }, 'run');
  if (parsed.rest.length === 0) throw new WitnessError('E_CONFIG', `no command given\n${RUN_USAGE}`, { file: 'witness run', field: 'CMD' });
  return parsed;
}

/** true when argv names a cosigning witness (`--witness`), before the command's own `--` */
export function hasWitnessFlag(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--witness' || a.startsWith('--witness='));
}

function wholeNumber(flags: ParsedArgs['flags'], name: string, min: number, what: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= min)) throw new WitnessError('E_CONFIG', what, { file: 'witness run', field: `--${name}` });
  return n;
}

/** The checks run.ts made after choosing who the agent runs as, in the same order (same first error). */
export function runSettings({ flags, rest }: ParsedArgs): RunSettings {
  const lingerMs = str(flags, 'linger') !== undefined ? parseDuration(str(flags, 'linger')!, '--linger') : DEFAULT_LINGER_MS;
  const windowMs = str(flags, 'window') !== undefined ? parseDuration(str(flags, 'window')!, '--window') : HOUR_MS;
  const heartbeatSeconds = Number(str(flags, 'heartbeat') ?? 10);
  if (!(heartbeatSeconds > 0)) throw new WitnessError('E_CONFIG', 'must be a positive number of seconds', { file: 'witness run', field: '--heartbeat' });
  // fairness under flood (docs/ndjson.md, sensor.suppressed): 0 events = no budget
  const budgetEvents = wholeNumber(flags, 'budget-events', 0, 'must be a whole number of records (0: no budget)');
  const budgetWindowMs = wholeNumber(flags, 'budget-window-ms', 1, 'must be a positive number of milliseconds');
  const tlsMetadata = flags['tls-metadata'] === true;
  const tlsContent = flags['tls-content'] === true;
  if (tlsContent && !tlsMetadata) throw new WitnessError('E_CONFIG', '--tls-content needs --tls-metadata', { file: 'witness run', field: '--tls-content' });
  const scopeRun = str(flags, 'scope-run');
  const scopeSession = str(flags, 'scope-session');
  if ((scopeRun === undefined) !== (scopeSession === undefined)) {
    throw new WitnessError('E_CONFIG', '--scope-run and --scope-session go together', { file: 'witness run', field: scopeRun === undefined ? '--scope-run' : '--scope-session' });
  }
  const opt = (name: string): string | undefined => str(flags, name);
  return {
    command: rest, heartbeatSeconds, lingerMs, windowMs, tlsMetadata, tlsContent,
    leaveRunning: flags['leave-running'] === true,
    ledger: flags['no-ledger'] !== true,
    ...(opt('out') !== undefined ? { out: opt('out')! } : {}),
    ...(budgetEvents !== undefined ? { budgetEvents } : {}),
    ...(budgetWindowMs !== undefined ? { budgetWindowMs } : {}),
    ...(opt('session-dir') !== undefined ? { sessionDir: opt('session-dir')! } : {}),
    ...(opt('sign-key') !== undefined ? { signKey: opt('sign-key')! } : {}),
    ...(opt('track') !== undefined ? { track: opt('track')!.split(',') } : {}),
    ...(opt('manifest') !== undefined ? { manifest: opt('manifest')! } : {}),
    ...(scopeRun !== undefined ? {
      scope: {
        run: scopeRun, session: scopeSession!,
        ...(opt('scope-tool-call') !== undefined ? { toolCall: opt('scope-tool-call')! } : {}),
        ...(opt('scope-tool-name') !== undefined ? { toolName: opt('scope-tool-name')! } : {}),
      },
    } : {}),
  };
}
