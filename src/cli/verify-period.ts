import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { WitnessError } from '../errors.js';
import { readContinuity } from '../ledger/continuity.js';
import { buildPeriod, type PeriodReport } from '../ledger/continuity-period.js';
import { verifyContinuity } from '../ledger/continuity-verify.js';
import { loadPublicKey, rawPublicKey } from '../ledger/keys.js';
import { ALG_ED25519, encodeVerifierKey, parseVerifierKey, type NoteVerifierKey } from '../ledger/note-keys.js';
import { loadVerifierKey } from '../ledger/note-key-files.js';
import { splitNote } from '../ledger/note.js';
import { parse as parseCheckpoint } from '../ledger/tlog-checkpoint.js';
import { parseDuration } from '../pulse/duration.js';

const USAGE = 'usage: witness verify --pubkey K --witness W.vkey [--witness ...] --from T0 --to T1 [--window 1h] [--late 5m]\n' +
  '                      [--held FILE ...] [--json] STATE\n' +
  '  K: the state dir\'s keys/host.vkey (or host.pub); T: RFC 3339, "now", or "-72h" (relative to now);\n' +
  '  --held: a checkpoint a witness holds (GET <witness>/checkpoint/<origin>), compared with the state dir.\n';

const CLI = 'witness verify';

/** True when the verify arguments ask for a witnessed period rather than a ledger path check. */
export function wantsPeriod(argv: string[]): boolean {
  return argv.some((a) => /^--(from|to|witness|held)(=|$)/.test(a));
}

function parseTime(s: string, field: string, now: number): number {
  if (s === 'now') return now;
  if (s.startsWith('-')) return now - parseDuration(s.slice(1), field);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new WitnessError('E_CONFIG', `'${s}' is not an RFC 3339 time, "now" or "-DURATION"`, { file: CLI, field });
  return t;
}

/** The log key: a .vkey, or an Ed25519 public key named by the continuity log's own origin. */
function logKeyFrom(file: string, stateDir: string): NoteVerifierKey {
  const text = fs.readFileSync(file, 'utf8').trim();
  if (!text.startsWith('-----BEGIN') && text.includes('+')) return loadVerifierKey(file, '--pubkey');
  const first = readContinuity(stateDir).checkpoints[0];
  if (!first) throw new WitnessError('E_LEDGER', 'no continuity checkpoints to name the key by', { file: stateDir });
  const origin = parseCheckpoint(splitNote(first.note).text).origin;
  return parseVerifierKey(encodeVerifierKey(origin, ALG_ED25519, rawPublicKey(loadPublicKey(file))));
}

export function formatTable(r: PeriodReport): string {
  const names = r.witnesses.map((w) => w.name);
  const lines = [`${'window start'.padEnd(20)}  ${'status'.padEnd(11)}  cps  size   ${names.map((n) => `cosigned ${n}`.padEnd(30)).join('')}restarts drops  cause`];
  for (const w of r.windows) {
    const cos = names.map((n) => (w.cosigned[n]?.slice(0, 19) ?? '-').padEnd(30)).join('');
    lines.push(`${w.start.slice(0, 19).padEnd(20)}  ${w.status.padEnd(11)}  ${String(w.checkpoints).padStart(3)}  ${String(w.size ?? '-').padStart(5)}  ${cos}${String(w.restarts).padStart(8)} ${String(w.drops).padStart(5)}  ${w.cause ?? ''}`);
  }
  lines.push('');
  for (const g of r.gaps) lines.push(`gap ${g.from} .. ${g.to} (${g.windows} windows): ${g.cause}`);
  for (const x of r.restarts) lines.push(`restart ${x.time}: ${x.cause}`);
  lines.push(`drops in period: ${r.drops}`);
  for (const f of r.failures) lines.push(`FAIL ${f}`);
  lines.push(`${r.result} ${r.origin ?? '?'} ${r.from} .. ${r.to}: ${r.windows.length} windows, ${r.windows.filter((w) => w.status === 'ok').length} ok, ` +
    `${r.windows.filter((w) => w.status === 'late').length} late, ${r.gaps.reduce((a, g) => a + g.windows, 0)} without a checkpoint, size ${r.size}`);
  return `${lines.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: {
      pubkey: { type: 'string' }, witness: { type: 'string', multiple: true }, from: { type: 'string' }, to: { type: 'string' },
      window: { type: 'string' }, late: { type: 'string' }, held: { type: 'string', multiple: true }, json: { type: 'boolean' },
    } });
  } catch (e) {
    throw new WitnessError('E_CONFIG', `${(e as Error).message}\n${USAGE}`, { file: CLI, field: 'argv' });
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new WitnessError('E_CONFIG', `one STATE dir\n${USAGE}`, { file: CLI, field: 'STATE' });
  for (const f of ['pubkey', 'from', 'to'] as const) if (!values[f]) throw new WitnessError('E_CONFIG', `missing --${f}\n${USAGE}`, { file: CLI, field: `--${f}` });
  if (!values.witness?.length) throw new WitnessError('E_CONFIG', `at least one --witness W.vkey\n${USAGE}`, { file: CLI, field: '--witness' });
  const stateDir = positionals[0]!;
  const now = Date.now();
  const from = parseTime(values.from!, '--from', now);
  const to = parseTime(values.to!, '--to', now);
  if (!(to > from)) throw new WitnessError('E_CONFIG', '--to must be after --from', { file: CLI, field: '--to' });
  const witnesses = values.witness.map((f) => loadVerifierKey(f, '--witness'));
  const held = (values.held ?? []).map((f) => fs.readFileSync(f, 'utf8'));
  const verdict = verifyContinuity(stateDir, { logKey: logKeyFrom(values.pubkey!, stateDir), witnesses, held });
  const report = buildPeriod(verdict, {
    from, to, windowMs: values.window ? parseDuration(values.window, '--window') : 3_600_000,
    ...(values.late ? { lateMs: parseDuration(values.late, '--late') } : {}),
  });
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatTable(report));
  return report.result === 'VERIFIED' ? 0 : 1;
}
