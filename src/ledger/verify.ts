import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { segmentEventsFile } from './daemon.js';
import { sha256 } from './hash.js';
import { parsePublicKey, rawPublicKey } from './keys.js';
import { parseRecord } from './record.js';
import {
  GLOBAL_CHECKPOINTS_FILE, GLOBAL_EVENTS_FILE, SESSION_CHECKPOINTS_FILE, SESSION_EVENTS_FILE, SESSION_FILE,
} from './state.js';
import { isFailure, type Failure } from './verify-checkpoints.js';
import { verifyLog, type LogVerifyOptions, type VerifyMode } from './verify-log.js';
import { verifyDaemonDir, type DaemonVerified } from './verify-daemon.js';

export interface VerifyOptions {
  mode?: VerifyMode;
  pinned?: KeyObject | null;
  samples?: number;
  parallelMinBytes?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface VerifyReport {
  verified: boolean;
  kind: 'session' | 'global' | 'daemon';
  path: string;
  mode: VerifyMode;
  signerPinned: boolean;
  failure?: Failure;
  records?: number;
  checkpoints?: number;
  rootHash?: string;
  sessions?: number;
  segments?: number;
  daemonSegments?: number;
  signers?: string[];
}

interface SessionJson {
  session_id: string;
  ledger: { tree_size: number; root_hash: string; chain_head: string; public_key: string; key_id: string };
}

async function verifySessionDir(dir: string, opts: VerifyOptions, rel = ''): Promise<VerifyReport> {
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
  if (opts.pinned && !rawPublicKey(opts.pinned).equals(rawPublicKey(key))) {
    return f(SESSION_FILE, 'ledger.public_key is not the pinned public key (replaced?)');
  }
  const logOpts: LogVerifyOptions = { mode, pinned: opts.pinned ?? key, expectLog: 'session' };
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

interface GlobalRowFields { kind: string; session_id?: string; epoch_id?: string; segment?: number; dir?: string; final_checkpoint_sha256?: string; session_sha256?: string }

function lastLineSha(file: string): string | null {
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file);
  const end = text.length - 1;
  const start = text.lastIndexOf(0x0a, end - 1) + 1;
  return sha256(text.subarray(start, end)).toString('hex');
}

async function verifyStateDir(dir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const mode = opts.mode ?? 'full';
  const report: VerifyReport = { verified: false, kind: 'global', path: dir, mode, signerPinned: !!opts.pinned };
  const logOpts: LogVerifyOptions = { mode: 'full', pinned: opts.pinned ?? null, expectLog: 'global' };
  const res = await verifyLog(dir, GLOBAL_EVENTS_FILE, GLOBAL_CHECKPOINTS_FILE, logOpts);
  if (isFailure(res)) return { ...report, failure: res };
  const buf = fs.readFileSync(path.join(dir, GLOBAL_EVENTS_FILE));
  const referenced = new Set<string>();
  let pos = 0;
  let sessions = 0;
  let daemonSegments = 0;
  const epochs = new Map<string, DaemonVerified>();
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    const rec = parseRecord(buf, pos, nl);
    pos = nl + 1;
    if (typeof rec === 'string') return { ...report, failure: { file: GLOBAL_EVENTS_FILE, reason: rec } };
    const row = JSON.parse(buf.toString('utf8', rec.eventStart, rec.eventEnd)) as GlobalRowFields;
    const at = { file: GLOBAL_EVENTS_FILE, line: rec.seq + 1, seq: rec.seq };
    if (row.kind === 'daemon_segment' && row.dir) {
      const epochDir = path.resolve(dir, row.dir);
      let epoch = epochs.get(epochDir);
      if (!epoch) {
        if (!fs.existsSync(epochDir)) return { ...report, failure: { ...at, reason: `daemon epoch ${row.epoch_id} directory ${epochDir} is missing` } };
        const v = await verifyDaemonDir(epochDir, { mode, pinned: opts.pinned ?? null }, path.relative(dir, epochDir), true);
        if (isFailure(v)) return { ...report, failure: v };
        epoch = v;
        epochs.set(epochDir, v);
      }
      daemonSegments++;
      if (epoch.finalCheckpointSha.get(row.segment ?? -1) !== row.final_checkpoint_sha256) {
        return { ...report, failure: { ...at, reason: `daemon epoch ${row.epoch_id} segment ${row.segment}: final checkpoint differs from the one recorded in the host ledger` } };
      }
      continue;
    }
    if (row.kind !== 'session' || !row.dir) continue;
    sessions++;
    const sessionDir = path.resolve(dir, row.dir);
    referenced.add(sessionDir);
    if (!fs.existsSync(sessionDir)) return { ...report, failure: { ...at, reason: `session ${row.session_id} directory ${sessionDir} is missing (session deleted)` } };
    const sub = await verifySessionDir(sessionDir, { ...opts, mode }, path.relative(dir, sessionDir) || '.');
    if (!sub.verified) return { ...report, failure: sub.failure! };
    if (lastLineSha(path.join(sessionDir, SESSION_CHECKPOINTS_FILE)) !== row.final_checkpoint_sha256) {
      return { ...report, failure: { ...at, reason: `session ${row.session_id}: final checkpoint differs from the one recorded in the host ledger` } };
    }
    if (sha256(fs.readFileSync(path.join(sessionDir, SESSION_FILE))).toString('hex') !== row.session_sha256) {
      return { ...report, failure: { ...at, reason: `session ${row.session_id}: session.json differs from the one recorded in the host ledger` } };
    }
  }
  // Every closed session under <state>/sessions must be in the host ledger.
  const sessionsDir = path.join(dir, 'sessions');
  if (fs.existsSync(sessionsDir)) {
    for (const name of fs.readdirSync(sessionsDir).sort()) {
      const sd = path.join(sessionsDir, name);
      if (fs.existsSync(path.join(sd, SESSION_FILE)) && !referenced.has(sd)) {
        return { ...report, failure: { file: path.join('sessions', name, SESSION_FILE), reason: 'closed session is not in the host ledger (row removed?)' } };
      }
    }
  }
  return {
    ...report, verified: true, records: res.last.predicate.tree_size, checkpoints: res.chain.checkpoints.length,
    rootHash: res.last.predicate.root_hash, sessions, daemonSegments, signers: [...res.chain.signers],
  };
}

async function verifyDaemonEpoch(dir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const mode = opts.mode ?? 'full';
  const report: VerifyReport = { verified: false, kind: 'daemon', path: dir, mode, signerPinned: !!opts.pinned };
  const logOpts: Omit<LogVerifyOptions, 'expectLog'> = { mode, pinned: opts.pinned ?? null };
  if (opts.samples !== undefined) logOpts.samples = opts.samples;
  if (opts.onProgress) logOpts.onProgress = opts.onProgress;
  const v = await verifyDaemonDir(dir, logOpts);
  if (isFailure(v)) return { ...report, failure: v };
  return { ...report, verified: true, records: v.records, checkpoints: v.checkpoints, segments: v.segments, rootHash: v.rootHash, signers: v.signers };
}

/** Verifies a session directory, a host state directory, or a file inside either. */
export async function verifyPath(target: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  let dir = path.resolve(target);
  if (fs.existsSync(dir) && fs.statSync(dir).isFile()) dir = path.dirname(dir);
  if (fs.existsSync(path.join(dir, GLOBAL_EVENTS_FILE)) || fs.existsSync(path.join(dir, GLOBAL_CHECKPOINTS_FILE))) return verifyStateDir(dir, opts);
  if (fs.existsSync(path.join(dir, segmentEventsFile(0)))) return verifyDaemonEpoch(dir, opts);
  return verifySessionDir(dir, opts);
}
