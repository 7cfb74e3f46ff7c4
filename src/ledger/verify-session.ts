import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256 } from './hash.js';
import { parsePublicKey, rawPublicKey } from './keys.js';
import { SESSION_CHECKPOINTS_FILE, SESSION_EVENTS_FILE, SESSION_FILE } from './state.js';
import { isFailure, type Failure } from './verify-checkpoints.js';
import { verifyLog, type LogVerifyOptions } from './verify-log.js';
import type { VerifyOptions, VerifyReport } from './verify.js';

/** One session dir: its log, its final shutdown checkpoint, and session.json bound to it. */
export interface SessionJson {
  session_id: string;
  ledger: { tree_size: number; root_hash: string; chain_head: string; public_key: string; key_id: string };
}

export async function verifySessionDir(dir: string, opts: VerifyOptions, rel = ''): Promise<VerifyReport> {
  const mode = opts.mode ?? 'full';
  const report: VerifyReport = { verified: false, kind: 'session', path: dir, mode, signerPinned: !!opts.pinned };
  const f = (file: string, reason: string, extra: Partial<Failure> = {}): VerifyReport => ({ ...report, failure: { file: path.join(rel, file), reason, ...extra } });
  const sessionPath = path.join(dir, SESSION_FILE);
  if (!fs.existsSync(sessionPath)) return f(SESSION_FILE, 'session.json missing: the session was never closed (writer still running or killed; restarting the writer seals it)');
  const sessionBytes = fs.readFileSync(sessionPath);
  let session: SessionJson;
  try {
    session = JSON.parse(sessionBytes.toString('utf8')) as SessionJson;
    if (typeof session.ledger?.public_key !== 'string') throw new Error('no ledger.public_key');
  } catch (e) {
    return f(SESSION_FILE, `unreadable: ${(e as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = parsePublicKey(session.ledger.public_key, SESSION_FILE);
  } catch {
    return f(SESSION_FILE, 'ledger.public_key is not an ed25519 public key');
  }
  const untrusted = opts.trusted ? !opts.trusted.has(rawPublicKey(key).toString('base64')) : opts.pinned && !rawPublicKey(opts.pinned).equals(rawPublicKey(key));
  if (untrusted) {
    return f(SESSION_FILE, opts.trusted && opts.trusted.size > 1
      ? 'ledger.public_key is neither the pinned public key nor one it rotated to (replaced?)'
      : 'ledger.public_key is not the pinned public key (replaced?)');
  }
  const logOpts: LogVerifyOptions = { mode, pinned: opts.trusted ? key : opts.pinned ?? key, expectLog: 'session' };
  if (opts.samples !== undefined) logOpts.samples = opts.samples;
  if (opts.parallelMinBytes !== undefined) logOpts.parallelMinBytes = opts.parallelMinBytes;
  if (opts.onProgress) logOpts.onProgress = opts.onProgress;
  const res = await verifyLog(dir, SESSION_EVENTS_FILE, SESSION_CHECKPOINTS_FILE, logOpts);
  if (isFailure(res)) {
    const failure = { ...res, file: path.join(rel, res.file) };
    if (!opts.pinned && res.reason.startsWith('signature does not verify')) failure.reason = 'signature does not verify with the public key in session.json (key replaced or checkpoint re-signed)';
    return { ...report, failure };
  }
  const final = res.last.predicate;
  if (final.reason !== 'shutdown' || final.session_sha256 === undefined) {
    return f(SESSION_CHECKPOINTS_FILE, `last checkpoint (index ${final.index}) is not the final shutdown checkpoint (checkpoint removed?)`, { line: final.index + 1 });
  }
  if (final.session_sha256 !== sha256(sessionBytes).toString('hex')) return f(SESSION_FILE, 'digest differs from the one signed in the final checkpoint (session.json edited)');
  if (session.ledger.tree_size !== final.tree_size || session.ledger.root_hash !== final.root_hash || session.ledger.chain_head !== final.chain_head) {
    return f(SESSION_FILE, 'ledger summary differs from the final checkpoint');
  }
  return {
    ...report, verified: true, records: final.tree_size, checkpoints: res.chain.checkpoints.length, rootHash: final.root_hash,
    signers: [...res.chain.signers],
  };
}

