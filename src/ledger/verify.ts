import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { listSegments, segmentEventsFile } from './daemon.js';
import { LEDGER_HEAD_FILE } from './host-head.js';
import { GLOBAL_CHECKPOINTS_FILE, GLOBAL_EVENTS_FILE, SESSION_EVENTS_FILE, SESSION_FILE } from './state.js';
import { collectGaps } from './verify-gaps.js';
import { isFailure, type Failure } from './verify-checkpoints.js';
import type { LogVerifyOptions, VerifyMode } from './verify-log.js';
import { verifyDaemonDir } from './verify-daemon.js';
import { verifySessionDir } from './verify-session.js';
import { verifyStateDir } from './verify-state.js';

export interface VerifyOptions {
  mode?: VerifyMode;
  pinned?: KeyObject | null;
  samples?: number;
  parallelMinBytes?: number;
  onProgress?: (done: number, total: number) => void;
  /** Inside a state dir with a pinned key: the pinned key plus every key it rotated to (base64 raw). */
  trusted?: Set<string>;
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
  /** Logs still being written by a live writer (their sealed prefix is what was checked). */
  open?: string[];
  /** Sealed daemon segments deliberately pruned by retention (each a host-ledger row). */
  pruned?: number;
  /** Write outages the ledger recorded (`ledger.gap`): from, to, cause, records not written. */
  gaps?: Array<{ log: string; from: string; to: string; cause: string; records: number }>;
}

async function verifyDaemonEpoch(dir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const mode = opts.mode ?? 'full';
  const report: VerifyReport = { verified: false, kind: 'daemon', path: dir, mode, signerPinned: !!opts.pinned };
  const logOpts: Omit<LogVerifyOptions, 'expectLog'> = { mode, pinned: opts.pinned ?? null };
  if (opts.samples !== undefined) logOpts.samples = opts.samples;
  if (opts.onProgress) logOpts.onProgress = opts.onProgress;
  const v = await verifyDaemonDir(dir, logOpts);
  if (isFailure(v)) return { ...report, failure: v };
  const gaps = listSegments(dir).flatMap((n) => collectGaps(path.join(dir, segmentEventsFile(n)), `daemon/${path.basename(dir)}/${n}`));
  return { ...report, verified: true, records: v.records, checkpoints: v.checkpoints, segments: v.segments, rootHash: v.rootHash, signers: v.signers, gaps };
}

/** A session's recorded outages: verifying the session dir alone must not hide them. */
function sessionGaps(dir: string): NonNullable<VerifyReport['gaps']> {
  let id = path.basename(dir);
  try { id = (JSON.parse(fs.readFileSync(path.join(dir, SESSION_FILE), 'utf8')) as { session_id?: string }).session_id ?? id; } catch { /* unclosed */ }
  return collectGaps(path.join(dir, SESSION_EVENTS_FILE), `session/${id}`);
}

/** Verifies a session directory, a host state directory, or a file inside either. */
export async function verifyPath(target: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  let dir = path.resolve(target);
  if (fs.existsSync(dir) && fs.statSync(dir).isFile()) dir = path.dirname(dir);
  const stateMarks = [GLOBAL_EVENTS_FILE, GLOBAL_CHECKPOINTS_FILE, LEDGER_HEAD_FILE, 'daemon', 'sessions'];
  if (stateMarks.some((m) => fs.existsSync(path.join(dir, m)))) return verifyStateDir(dir, opts);
  if (fs.existsSync(dir) && fs.statSync(dir).isDirectory() && listSegments(dir).length > 0) return verifyDaemonEpoch(dir, opts);
  const r = await verifySessionDir(dir, opts);
  return r.verified ? { ...r, gaps: sessionGaps(dir) } : r;
}
