import type { KeyObject } from 'node:crypto';
import { WitnessError } from '../errors.js';
import { loadPublicKey } from '../ledger/keys.js';
import { verifyPath, type VerifyOptions, type VerifyReport } from '../ledger/verify.js';

/** Exit codes: 0 verified with a pinned key, 1 mismatch, 2 usage, 3 verified but the signer was not pinned. */
export const EXIT_VERIFIED = 0;
export const EXIT_MISMATCH = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNPINNED = 3;

/** What a verification without a pinned key cannot prove (printed on stdout, in --json as `notProven`). */
export const UNPINNED_NOT_PROVEN = 'UNPINNED: not proven who signed: without a pinned key every signature is checked only against the key the ledger names itself, '
  + 'so anyone able to write these files could have rewritten and re-signed them with a key of their own. Proven: the records are intact and in order up to the '
  + 'last signed checkpoint. Pin the host key to prove authorship: witness verify --pubkey <state>/keys/host.pub PATH';

export interface PinnedKey { key: KeyObject; source: string }

/**
 * The key verification pins. Today: `--pubkey FILE` or none. (The single
 * place to extend: e.g. defaulting to the local state dir's own host key.)
 */
export function resolvePinnedKey(pubkeyPath: string | undefined, _target: string): PinnedKey | null {
  if (pubkeyPath !== undefined) return { key: loadPublicKey(pubkeyPath), source: `--pubkey ${pubkeyPath}` };
  return null;
}

const USAGE = 'usage: witness verify [--pubkey FILE] [--full|--fast] [--samples N] [--json] PATH\n';

function progressBar(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return (done, total) => {
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    if (pct === last) return;
    last = pct;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    process.stderr.write(`\rverifying [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}%${pct === 100 ? '\n' : ''}`);
  };
}

function describeFailure(r: VerifyReport): string {
  const f = r.failure!;
  const where = [f.file, f.line !== undefined ? `line ${f.line}` : null, f.seq !== undefined ? `seq ${f.seq}` : null].filter(Boolean).join(' ');
  return `MISMATCH ${where}: ${f.reason}\n`;
}

/** `witness verify`: prints VERIFIED or MISMATCH (first failing file, line/seq, reason); exit 0 / 1. */
export async function run(argv: string[]): Promise<number> {
  const opts: VerifyOptions = { mode: 'full' };
  let json = false;
  let pubkeyPath: string | undefined;
  let target: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--pubkey') pubkeyPath = argv[++i];
    else if (a.startsWith('--pubkey=')) pubkeyPath = a.slice(9);
    else if (a === '--full') opts.mode = 'full';
    else if (a === '--fast') opts.mode = 'fast';
    else if (a === '--json') json = true;
    else if (a === '--samples') opts.samples = Number.parseInt(argv[++i] ?? '', 10);
    else if (a === '-h' || a === '--help') { process.stderr.write(USAGE); return 0; }
    else if (a.startsWith('-')) throw new WitnessError('E_CONFIG', `unknown option '${a}'`, { field: 'argv' });
    else if (target === undefined) target = a;
    else throw new WitnessError('E_CONFIG', `unexpected argument '${a}'`, { field: 'argv' });
  }
  if (!target) { process.stderr.write(USAGE); return EXIT_USAGE; }
  if (opts.samples !== undefined && !(opts.samples >= 0)) throw new WitnessError('E_CONFIG', 'must be a non-negative integer', { field: '--samples' });
  const pinned = resolvePinnedKey(pubkeyPath, target);
  if (pinned) opts.pinned = pinned.key;
  else process.stderr.write('WARNING: SIGNER UNPINNED: no --pubkey given; signatures are checked only against the key the ledger itself names, which proves integrity, not authorship.\n');
  const bar = json ? undefined : progressBar();
  if (bar) opts.onProgress = bar;
  const report = await verifyPath(target, opts);
  const code = !report.verified ? EXIT_MISMATCH : report.signerPinned ? EXIT_VERIFIED : EXIT_UNPINNED;
  if (json) {
    const notProven = report.verified && !report.signerPinned ? { notProven: ['authorship'], notProvenReason: UNPINNED_NOT_PROVEN } : {};
    process.stdout.write(`${JSON.stringify({ result: report.verified ? 'VERIFIED' : 'MISMATCH', ...report, ...notProven })}\n`);
  } else if (report.verified) {
    process.stdout.write(verifiedText(report));
  } else {
    process.stdout.write(describeFailure(report));
  }
  return code;
}

function verifiedText(report: VerifyReport): string {
  const signer = report.signerPinned ? 'signer pinned' : 'SIGNER UNPINNED';
  const extra = report.kind === 'global'
    ? `, ${report.sessions} sessions, ${report.daemonSegments} daemon segments${report.pruned ? `, ${report.pruned} pruned by retention` : ''}`
    : report.kind === 'daemon' ? `, ${report.segments} segments` : '';
  let out = `VERIFIED ${report.kind} ${report.path}: ${report.records} records, ${report.checkpoints} checkpoints${extra}, root ${report.rootHash} (${report.mode}, ${signer})\n`;
  for (const o of report.open ?? []) out += `OPEN ${o}: still being written; its sealed part was checked\n`;
  for (const g of report.gaps ?? []) out += `GAP ${g.log}: ${g.records} records not written from ${g.from} to ${g.to} (${g.cause})\n`;
  if (!report.signerPinned) out += `${UNPINNED_NOT_PROVEN}\n`;
  return out;
}
