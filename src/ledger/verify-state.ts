import fs from 'node:fs';
import path from 'node:path';
import { listSegments } from './daemon.js';
import { sha256 } from './hash.js';
import { LEDGER_HEAD_FILE, readLedgerHead } from './host-head.js';
import { rawPublicKey } from './keys.js';
import { parseRecord } from './record.js';
import { authorisesRotation } from './rotation.js';
import { segmentTail } from './segment-tail.js';
import {
  GLOBAL_CHECKPOINTS_FILE, GLOBAL_EVENTS_FILE, SESSION_CHECKPOINTS_FILE, SESSION_EVENTS_FILE, SESSION_FILE, SESSION_OPEN_FILE, acquireFileLock, writerState,
} from './state.js';
import { isFailure, type Failure, type VerifiedCheckpoint } from './verify-checkpoints.js';
import { firstEvent, verifyDaemonDir, type SegmentLink } from './verify-daemon.js';
import { collectGaps } from './verify-gaps.js';
import { verifyLog } from './verify-log.js';
import { verifySessionDir } from './verify-session.js';
import type { VerifyOptions, VerifyReport } from './verify.js';

/**
 * A whole state dir: the host ledger, every session dir and every daemon
 * epoch on disk (not only those a row names), and the copies of the host
 * ledger's head kept elsewhere (ledger.head, each log's first record). Each
 * partial rollback — a session gone while its row stays, a row gone while
 * its session stays, a host ledger cut back behind a checkpoint some other
 * file recorded, a sealed segment removed, an unauthorised change of signer
 * — is a MISMATCH with its reason. Logs a live writer still holds are
 * reported open; one a dead writer left open is a finding.
 */
interface RowFields {
  kind: string; session_id?: string; epoch_id?: string; segment?: number; dir?: string;
  final_checkpoint_sha256?: string; session_sha256?: string; root_hash?: string; chain_head?: string;
  old_public_key?: string; new_public_key?: string; signature?: string;
}
interface Row { fields: RowFields; at: Failure & { line: number; seq: number } }

const shortId = (b64: string): string => sha256(Buffer.from(b64, 'base64')).toString('hex').slice(0, 16);

function readRows(dir: string): Row[] | Failure {
  const buf = fs.readFileSync(path.join(dir, GLOBAL_EVENTS_FILE));
  const rows: Row[] = [];
  for (let pos = 0; pos < buf.length;) {
    const nl = buf.indexOf(0x0a, pos);
    const rec = parseRecord(buf, pos, nl);
    pos = nl + 1;
    if (typeof rec === 'string') return { file: GLOBAL_EVENTS_FILE, reason: rec };
    const fields = JSON.parse(buf.toString('utf8', rec.eventStart, rec.eventEnd)) as RowFields;
    rows.push({ fields, at: { file: GLOBAL_EVENTS_FILE, line: rec.seq + 1, seq: rec.seq, reason: '' } });
  }
  return rows;
}

/**
 * The host ledger keeps one signer; a change is accepted only right after a
 * key_rotation row, sealed by the old key, naming the new one. With a pinned
 * key the first signer must be it. Returns every key trusted along the way.
 */
function signerPolicy(cps: VerifiedCheckpoint[], rows: Row[], pinned: string | null): Set<string> | Failure {
  const first = cps[0]!.predicate.public_key;
  if (pinned !== null && first !== pinned) return { file: GLOBAL_CHECKPOINTS_FILE, line: 1, reason: 'signature does not verify with the pinned public key' };
  const trusted = new Set([first]);
  for (let k = 1; k < cps.length; k++) {
    const from = cps[k - 1]!.predicate.public_key;
    const to = cps[k]!.predicate.public_key;
    if (from === to) continue;
    const rotation = rows[cps[k - 1]!.predicate.tree_size - 1]?.fields;
    if (!rotation || !authorisesRotation(rotation, from, to)) {
      return {
        file: GLOBAL_CHECKPOINTS_FILE, line: k + 1,
        reason: `signer changed from key ${shortId(from)} to ${shortId(to)} at checkpoint ${k} without a key_rotation record signed by the old key (state dir re-keyed?)`,
      };
    }
    trusted.add(to);
  }
  return trusted;
}

/** ledger.head must be a checkpoint the host ledger still holds. */
function checkHead(dir: string, cps: VerifiedCheckpoint[]): Failure | null {
  const head = readLedgerHead(dir);
  const last = cps[cps.length - 1]!.predicate;
  if (head === 'missing') return { file: LEDGER_HEAD_FILE, reason: 'missing: every host-ledger append writes it, so it was deleted (rollback?)' };
  if (typeof head === 'string') return { file: LEDGER_HEAD_FILE, reason: head };
  if (head.index >= cps.length) {
    return { file: GLOBAL_CHECKPOINTS_FILE, line: cps.length, reason: `ledger.head holds host-ledger checkpoint ${head.index} (tree size ${head.treeSize}) but the host ledger ends at checkpoint ${last.index} (tree size ${last.tree_size}): rolled back or truncated` };
  }
  if (cps[head.index]!.lineSha256 !== head.lineSha256) return { file: LEDGER_HEAD_FILE, reason: `differs from host-ledger checkpoint ${head.index} (host ledger rewritten)` };
  return null;
}

/** SHA-256 of the host ledger's checkpoint line `index` as the file holds it now (null: not there). */
function hostCheckpointShaNow(stateDir: string, index: number): string | null {
  try {
    const line = fs.readFileSync(path.join(stateDir, GLOBAL_CHECKPOINTS_FILE), 'utf8').split('\n')[index];
    return line ? sha256(Buffer.from(line, 'utf8')).toString('hex') : null;
  } catch {
    return null;
  }
}

/** A log's first record names the host-ledger checkpoint of its opening; the host ledger must still hold it. */
function checkAnchor(stateDir: string, eventsFile: string, rel: string, what: string, cps: VerifiedCheckpoint[]): Failure | null {
  if (!fs.existsSync(eventsFile)) return null;
  const a = (firstEvent(eventsFile)?.attributes ?? {}) as Record<string, unknown>;
  const index = a['witness.ledger.host_checkpoint_index'];
  const sha = a['witness.ledger.host_checkpoint_sha256'];
  if (typeof index !== 'number' || typeof sha !== 'string') return null;
  const last = cps[cps.length - 1]?.predicate;
  // A log opened after the host ledger was read (a live writer just rotated) names a newer checkpoint: look again.
  if (index >= cps.length && hostCheckpointShaNow(stateDir, index) === sha) return null;
  if (index >= cps.length) {
    const now = last ? `ends at checkpoint ${last.index} (tree size ${last.tree_size})` : 'is gone';
    return { file: rel, line: 1, seq: 0, reason: `${what} opened when the host ledger had checkpoint ${index} (tree size ${String(a['witness.ledger.host_tree_size'])}), but the host ledger ${now}: rolled back or truncated` };
  }
  if (cps[index]!.lineSha256 !== sha) return { file: rel, line: 1, seq: 0, reason: `${what} names host-ledger checkpoint ${index}, which differs from the one the host ledger holds (rewritten)` };
  return null;
}

function lastCheckpointText(cp: { index: number; tree_size: number; time: string } | null): string {
  return cp ? `last checkpoint #${cp.index} at tree size ${cp.tree_size} (${cp.time})` : 'no checkpoint yet';
}

function lastSessionCheckpoint(dir: string): { index: number; tree_size: number; time: string } | null {
  const cps = path.join(dir, SESSION_CHECKPOINTS_FILE);
  if (!fs.existsSync(cps)) return null;
  const lines = fs.readFileSync(cps, 'utf8').split('\n').filter(Boolean);
  try {
    const env = JSON.parse(lines[lines.length - 1]!) as { payload: string };
    return (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicate: { index: number; tree_size: number; time: string } }).predicate;
  } catch {
    return null;
  }
}

/** Takes the host-ledger lock when the state dir is writable; a read-only copy is verified as it is. */
function lockIfWritable(lockPath: string): () => void {
  try {
    return acquireFileLock(lockPath);
  } catch (e) {
    if ((e as { cause?: NodeJS.ErrnoException }).cause?.code && ['EACCES', 'EROFS', 'EPERM'].includes((e as { cause: NodeJS.ErrnoException }).cause.code!)) return () => {};
    throw e;
  }
}

export async function verifyStateDir(dir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const mode = opts.mode ?? 'full';
  const report: VerifyReport = { verified: false, kind: 'global', path: dir, mode, signerPinned: !!opts.pinned };
  const fail = (failure: Failure): VerifyReport => ({ ...report, failure });
  // The host ledger is read under its lock, so a row being appended right now is never half-seen.
  const release = lockIfWritable(path.join(dir, 'ledger.lock'));
  let res: Awaited<ReturnType<typeof verifyLog>>;
  let rows: Row[] | Failure;
  let head: Failure | null = null;
  try {
    // Each checkpoint is checked with the key it names; signerPolicy decides which keys may sign.
    const hasLedger = fs.existsSync(path.join(dir, GLOBAL_EVENTS_FILE)) || fs.existsSync(path.join(dir, GLOBAL_CHECKPOINTS_FILE));
    if (!hasLedger && !fs.existsSync(path.join(dir, LEDGER_HEAD_FILE))) {
      // Nothing closed yet (e.g. the first daemon epoch is still running): an empty host ledger.
      res = { chain: { checkpoints: [], signers: new Set() }, last: null as never, eventsBytes: 0 };
    } else {
      res = await verifyLog(dir, GLOBAL_EVENTS_FILE, GLOBAL_CHECKPOINTS_FILE, { mode: 'full', pinned: null, expectLog: 'global' });
    }
    rows = isFailure(res) || !hasLedger ? [] : readRows(dir);
    if (!isFailure(res) && hasLedger) head = checkHead(dir, res.chain.checkpoints);
  } finally {
    release();
  }
  if (isFailure(res)) return fail(res);
  const cps = res.chain.checkpoints;
  if (isFailure(rows)) return fail(rows);
  const pinnedB64 = opts.pinned ? rawPublicKey(opts.pinned).toString('base64') : null;
  const trusted = cps.length > 0 ? signerPolicy(cps, rows, pinnedB64) : new Set(pinnedB64 ? [pinnedB64] : []);
  if (isFailure(trusted)) return fail(trusted);
  if (head) return fail(head);
  const sub: VerifyOptions = { ...opts, mode, ...(opts.pinned ? { trusted } : {}) };
  const open: string[] = [];
  const gaps: NonNullable<VerifyReport['gaps']> = [];

  // Sessions the host ledger names.
  const referenced = new Set<string>();
  let sessions = 0;
  for (const { fields: row, at } of rows) {
    if (row.kind !== 'session' || !row.dir) continue;
    sessions++;
    const sessionDir = path.resolve(dir, row.dir);
    referenced.add(sessionDir);
    const rel = path.relative(dir, sessionDir) || '.';
    if (!fs.existsSync(sessionDir)) return fail({ ...at, reason: `session ${row.session_id} directory ${sessionDir} is missing (session deleted)` });
    const v = await verifySessionDir(sessionDir, sub, rel);
    if (!v.verified) return fail(v.failure!);
    const cpFile = fs.readFileSync(path.join(sessionDir, SESSION_CHECKPOINTS_FILE));
    const lastLine = cpFile.subarray(cpFile.lastIndexOf(0x0a, cpFile.length - 2) + 1, cpFile.length - 1);
    if (sha256(lastLine).toString('hex') !== row.final_checkpoint_sha256) return fail({ ...at, reason: `session ${row.session_id}: final checkpoint differs from the one recorded in the host ledger` });
    if (sha256(fs.readFileSync(path.join(sessionDir, SESSION_FILE))).toString('hex') !== row.session_sha256) {
      return fail({ ...at, reason: `session ${row.session_id}: session.json differs from the one recorded in the host ledger` });
    }
    const anchor = checkAnchor(dir, path.join(sessionDir, SESSION_EVENTS_FILE), path.join(rel, SESSION_EVENTS_FILE), `session ${row.session_id}`, cps);
    if (anchor) return fail(anchor);
    gaps.push(...collectGaps(path.join(sessionDir, SESSION_EVENTS_FILE), `session/${row.session_id}`));
  }
  // Every session dir on disk: closed ones need a row; open ones a live writer.
  const sessionsDir = path.join(dir, 'sessions');
  for (const name of fs.existsSync(sessionsDir) ? fs.readdirSync(sessionsDir).sort() : []) {
    const sd = path.join(sessionsDir, name);
    if (referenced.has(sd)) continue;
    const rel = path.join('sessions', name);
    if (fs.existsSync(path.join(sd, SESSION_FILE))) return fail({ file: path.join(rel, SESSION_FILE), reason: 'closed session is not in the host ledger (row removed?)' });
    if (!fs.existsSync(path.join(sd, SESSION_OPEN_FILE)) && !fs.existsSync(path.join(sd, SESSION_EVENTS_FILE))) continue; // never started
    const w = writerState(sd);
    const last = lastSessionCheckpoint(sd);
    if (w.alive) { open.push(`${rel} (writer pid ${w.pid}; ${lastCheckpointText(last)})`); continue; }
    return fail({
      file: path.join(rel, SESSION_CHECKPOINTS_FILE),
      reason: `session ${name} is unclosed: ${lastCheckpointText(last)}; its writer${w.pid ? ` (pid ${w.pid})` : ''} is gone: killed or crashed before closing (the next witness run or daemon start seals it)`,
    });
  }

  // Daemon epochs: those rows name, and every one on disk.
  const epochRows = new Map<string, { id: string; segs: Map<number, Row>; pruned: Map<number, SegmentLink> }>();
  let daemonSegments = 0;
  let pruned = 0;
  for (const r of rows) {
    const row = r.fields;
    if ((row.kind !== 'daemon_segment' && row.kind !== 'prune') || !row.dir || row.segment === undefined) continue;
    const epochDir = path.resolve(dir, row.dir);
    const e = epochRows.get(epochDir) ?? { id: row.epoch_id ?? '?', segs: new Map(), pruned: new Map() };
    epochRows.set(epochDir, e);
    if (row.kind === 'daemon_segment') e.segs.set(row.segment, r);
    else { e.pruned.set(row.segment, { root: row.root_hash ?? '', chainHead: row.chain_head ?? '', cpSha: row.final_checkpoint_sha256 ?? '' }); pruned++; }
  }
  let fresh: Map<string, string> | null = null;
  const rowsNow = (): Map<string, string> => {
    if (fresh) return fresh;
    fresh = new Map();
    const now = readRows(dir);
    if (!isFailure(now)) for (const { fields: f } of now) if (f.kind === 'daemon_segment') fresh.set(`${f.epoch_id}/${f.segment}`, f.final_checkpoint_sha256 ?? '');
    return fresh;
  };
  const daemonRoot = path.join(dir, 'daemon');
  for (const name of fs.existsSync(daemonRoot) ? fs.readdirSync(daemonRoot).sort() : []) {
    const epochDir = path.join(daemonRoot, name);
    if (!epochRows.has(epochDir) && listSegments(epochDir).length > 0) epochRows.set(epochDir, { id: name, segs: new Map(), pruned: new Map() });
  }
  for (const [epochDir, e] of epochRows) {
    const rel = path.relative(dir, epochDir);
    const live = [...e.segs.keys()].filter((n) => !e.pruned.has(n));
    if (!fs.existsSync(epochDir)) {
      if (live.length === 0) continue; // pruned whole
      return fail({ ...e.segs.get(live[0]!)!.at, reason: `daemon epoch ${e.id} directory ${epochDir} is missing` });
    }
    const v = await verifyDaemonDir(epochDir, { mode, pinned: null }, rel, true, e.pruned);
    if (isFailure(v)) return fail(v);
    if (opts.pinned) {
      const stranger = v.signers.find((s) => !trusted.has(s));
      if (stranger) return fail({ file: rel, reason: `signed by key ${shortId(stranger)}, which is neither the pinned public key nor one it rotated to` });
    }
    for (const n of live) {
      const sha = v.finalCheckpointSha.get(n);
      const at = e.segs.get(n)!.at;
      if (sha === undefined && n !== v.openSegment) return fail({ ...at, reason: `daemon epoch ${e.id} segment ${n} recorded in the host ledger is missing (sealed segment removed)` });
      if (sha !== undefined && sha !== e.segs.get(n)!.fields.final_checkpoint_sha256) {
        return fail({ ...at, reason: `daemon epoch ${e.id} segment ${n}: final checkpoint differs from the one recorded in the host ledger` });
      }
    }
    const writer = writerState(epochDir);
    const newestSealed = Math.max(-1, ...v.finalCheckpointSha.keys());
    for (const n of v.finalCheckpointSha.keys()) {
      // A live writer records the segment it just sealed a moment later.
      if (writer.alive && n === newestSealed && !e.segs.has(n)) { open.push(`${rel} segment ${n} (sealed; its host-ledger row is being recorded)`); continue; }
      // A live writer sealed and recorded it after the host ledger was read: look at the host ledger again.
      if (writer.alive && !e.segs.has(n) && rowsNow().get(`${e.id}/${n}`) === v.finalCheckpointSha.get(n)) continue;
      if (!e.segs.has(n) && !e.pruned.has(n)) {
        return fail({ file: path.join(rel, `segment-${String(n).padStart(6, '0')}.checkpoints.ndjson`), reason: `daemon epoch ${e.id} segment ${n} is sealed but has no host-ledger row (row removed, or the daemon was killed while recording it and has not restarted since)` });
      }
    }
    if (v.openSegment !== null) {
      const w = writer;
      const t = segmentTail(epochDir, v.openSegment);
      const where = `segment ${v.openSegment}'s ${lastCheckpointText(t.checkpoint)}`;
      if (w.alive) open.push(`${rel} (writer pid ${w.pid}; ${where})`);
      else {
        return fail({
          file: path.join(rel, `segment-${String(v.openSegment).padStart(6, '0')}.checkpoints.ndjson`),
          reason: `daemon epoch ${e.id} is unsealed${e.segs.size === 0 ? ' and no host-ledger row refers to it' : ''}: ${where}; its writer${w.pid ? ` (pid ${w.pid})` : ''} is gone: the daemon was killed and has not restarted since (its next start seals the epoch)`,
        });
      }
    }
    for (const n of listSegments(epochDir)) {
      const a = checkAnchor(dir, path.join(epochDir, `segment-${String(n).padStart(6, '0')}.ndjson`), path.join(rel, `segment-${String(n).padStart(6, '0')}.ndjson`), `daemon epoch ${e.id} segment ${n}`, cps);
      if (a) return fail(a);
      gaps.push(...collectGaps(path.join(epochDir, `segment-${String(n).padStart(6, '0')}.ndjson`), `daemon/${e.id}/${n}`));
    }
    daemonSegments += live.length;
  }
  const last = cps[cps.length - 1]?.predicate;
  return {
    ...report, verified: true, records: last?.tree_size ?? 0, checkpoints: cps.length, rootHash: last?.root_hash ?? '',
    sessions, daemonSegments, signers: [...res.chain.signers], open, pruned, gaps,
  };
}
