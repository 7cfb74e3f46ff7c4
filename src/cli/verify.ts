import { WitnessError } from '../errors.js';
import { parseArgs, str } from './args.js';
import { agentWasPrivileged, ROOT_AGENT_NOTE, unclosedNote } from './verify-notes.js';
import { loadPublicKey } from '../ledger/keys.js';
import { findLocalHostKey } from '../ledger/local-key.js';
import { run as runPeriod, wantsPeriod } from './verify-period.js';
import { verifyPath, type VerifyOptions, type VerifyReport } from '../ledger/verify.js';

/**
 * Exit codes: 0 verified with a pinned key, 1 mismatch, 2 usage, 3 verified
 * but the signer was not pinned, 4 verified with a pinned key but the record
 * has write outages (`ledger.gap`: records the ledger says it could not
 * write). 3 wins over 4 (authorship unproven is the weaker result); the GAP
 * lines are printed either way.
 */
export const EXIT_VERIFIED = 0;
export const EXIT_MISMATCH = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNPINNED = 3;
export const EXIT_GAPS = 4;

/** What a verification without a pinned key cannot prove (printed on stdout, in --json as `notProven`). */
export const UNPINNED_NOT_PROVEN = 'UNPINNED: not proven who signed: without a pinned key every signature is checked only against the key the ledger names itself, '
  + 'so anyone able to write these files could have rewritten and re-signed them with a key of their own. Proven: the records are intact and in order up to the '
  + 'last signed checkpoint. Pin the host key to prove authorship: witness verify --pubkey <state>/keys/host.pub PATH';

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

const UNPINNED = 'signatures are checked only against the keys the ledger itself names, which proves integrity, not authorship';

/**
 * No `--pubkey`: when the state dir holding the target has its own host key and that key made
 * every signature, the result is pinned to it, and stderr says so; otherwise unpinned, with the
 * warning (naming the host key when there is one that did not sign everything).
 */
async function verifyWithDefaultPin(target: string, opts: VerifyOptions): Promise<VerifyReport> {
  const local = findLocalHostKey(target);
  if (local) {
    const pinned = await verifyPath(target, { ...opts, pinned: local.key });
    if (pinned.verified) {
      process.stderr.write(`verify: pinned ${local.publicPath} (key ${local.keyId.slice(0, 16)}): this state dir's own host key made every signature; --pubkey FILE pins another\n`);
      return pinned;
    }
    process.stderr.write(`WARNING: SIGNER UNPINNED: not every signature is by this state dir's host key ${local.publicPath}; ${UNPINNED}. Pass --pubkey FILE.\n`);
  } else {
    process.stderr.write(`WARNING: SIGNER UNPINNED: no --pubkey given; ${UNPINNED}.\n`);
  }
  return verifyPath(target, opts);
}

/** `witness verify`: prints VERIFIED or MISMATCH (first failing file, line/seq, reason); exit 0 / 1, or 3 when verified unpinned. */
export async function run(argv: string[]): Promise<number> {
  // A witnessed period (--from/--to/--witness) has its own verifier (docs/continuity.md).
  if (wantsPeriod(argv)) return runPeriod(argv);
  const { flags, positionals } = parseArgs(argv, { booleans: ['full', 'fast', 'json', 'help'], strings: ['pubkey', 'samples'] }, 'verify');
  if (flags.help === true) { process.stderr.write(USAGE); return 0; }
  if (positionals.length > 1) throw new WitnessError('E_CONFIG', `unexpected argument '${positionals[1]}'`, { file: 'witness verify', field: 'argv' });
  // the last of --full / --fast wins, as when they were read in order
  const mode = flags.fast === true && argv.lastIndexOf('--fast') > argv.lastIndexOf('--full') ? 'fast' : 'full';
  const opts: VerifyOptions = { mode };
  const samples = str(flags, 'samples');
  if (samples !== undefined) opts.samples = /^\d+$/.test(samples) ? Number(samples) : Number.NaN;
  const json = flags.json === true;
  const pubkeyPath = str(flags, 'pubkey');
  const target = positionals[0];
  if (!target) { process.stderr.write(USAGE); return EXIT_USAGE; }
  if (opts.samples !== undefined && !(opts.samples >= 0)) throw new WitnessError('E_CONFIG', 'must be a non-negative integer', { field: '--samples' });
  if (pubkeyPath) opts.pinned = loadPublicKey(pubkeyPath);
  const bar = json ? undefined : progressBar();
  if (bar) opts.onProgress = bar;
  const report = pubkeyPath ? await verifyPath(target, opts) : await verifyWithDefaultPin(target, opts);
  const code = !report.verified ? EXIT_MISMATCH : !report.signerPinned ? EXIT_UNPINNED : (report.gaps?.length ?? 0) > 0 ? EXIT_GAPS : EXIT_VERIFIED;
  const privileged = agentWasPrivileged(target);
  if (privileged) process.stderr.write(ROOT_AGENT_NOTE);
  const unclosed = unclosedNote(target);
  if (json) {
    const notProven = report.verified && !report.signerPinned ? { notProven: ['authorship'], notProvenReason: UNPINNED_NOT_PROVEN } : {};
    process.stdout.write(`${JSON.stringify({ result: report.verified ? 'VERIFIED' : 'MISMATCH', ...report, agentPrivileged: privileged, unclosed: unclosed?.trim() ?? null, ...notProven })}\n`);
  } else if (report.verified) {
    process.stdout.write(verifiedText(report));
  } else {
    process.stdout.write(describeFailure(report));
  }
  if (unclosed && !json) process.stdout.write(unclosed); // after the verdict line, which stays first
  return code;
}

function verifiedText(report: VerifyReport): string {
  const signer = report.signerPinned ? 'signer pinned' : 'SIGNER UNPINNED';
  const extra = report.kind === 'global'
    ? `, ${report.sessions} sessions, ${report.daemonSegments} daemon segments${report.pruned ? `, ${report.pruned} pruned by retention` : ''}`
    : report.kind === 'daemon' ? `, ${report.segments} segments` : '';
  let out = `VERIFIED ${report.kind} ${report.path}: ${report.records} records, ${report.checkpoints} checkpoints${extra}, root ${report.rootHash} (${report.mode}, ${signer})\n`;
  for (const o of report.open ?? []) out += `OPEN ${o}: still being written; its sealed part was checked\n`;
  for (const g of report.gaps ?? []) out += `GAP ${g.log}: ${g.records} records not written from ${g.from} to ${g.to} (${g.cause}); the ledger recorded this outage itself\n`;
  if (!report.signerPinned) out += `${UNPINNED_NOT_PROVEN}\n`;
  return out;
}
