import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { log as logger } from '../log.js';
import { nowRfc3339 } from './clock.js';
import { continuityHook } from './continuity.js';
import { tryLock } from './flock.js';
import { startLedgerHead } from './host-head.js';
import { rawPublicKey } from './keys.js';
import { LedgerLog } from './log-writer.js';
import { parseRecord } from './record.js';
import { existingHostKey, type KeyRotationRow } from './rotation.js';
import { sha256 } from './hash.js';
import { segmentTail } from './segment-tail.js';
import { GLOBAL_CHECKPOINTS_FILE, GLOBAL_EVENTS_FILE, SESSION_FILE, ensurePrivateDir, withFileLock } from './state.js';
import { fsyncAsync, fsyncDir, fsyncDirAsync, readTail, writeFully, writeFullyAsync } from './tail.js';

/**
 * The host-wide ledger: one hash-chained, Merkle-sealed row per finished
 * session (and per daemon epoch/segment), in `<stateDir>/ledger.ndjson`,
 * with a signed checkpoint after every row in `ledger.checkpoints.ndjson`.
 *
 * Appending is O(1) in the ledger's length: under the lock it reads only the
 * last checkpoint line and the rows after it (none unless a writer crashed),
 * appends, seals, and releases.
 */
export interface SessionRow {
  kind: 'session';
  session_id: string;
  dir: string;
  started: string;
  ended: string;
  command: string[];
  exit_code: number | null;
  tree_size: number;
  root_hash: string;
  chain_head: string;
  final_checkpoint_sha256: string;
  session_sha256: string;
  key_id: string;
}

export interface DaemonSegmentRow {
  kind: 'daemon_segment';
  epoch_id: string;
  segment: number;
  dir: string;
  tree_size: number;
  root_hash: string;
  chain_head: string;
  final_checkpoint_sha256: string;
  key_id: string;
}

/**
 * A sealed daemon segment deleted on purpose, so verification expects it gone.
 * Appended by ledger retention (src/ledger/retention.ts) before it deletes the segment's files.
 * The segment's identity is the DaemonSegmentRow it replaces.
 */
export interface PruneRow extends Omit<DaemonSegmentRow, 'kind' | 'key_id'> {
  kind: 'prune';
  time: string;
  reason: 'size' | 'age';
  bytes: number;
}

export type GlobalRow = SessionRow | DaemonSegmentRow | KeyRotationRow | PruneRow;

/**
 * How a row names a directory: relative to the state dir when inside it, so
 * a copied state dir still verifies offline elsewhere; absolute otherwise.
 */
export function rowDir(stateDir: string, dir: string): string {
  const rel = path.relative(stateDir, dir);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(dir);
}

export interface GlobalAppendResult { seq: number; checkpointSha256: string }

const PENDING_DIR = 'pending-rows';

interface RowKeyFields { kind?: string; session_id?: string; epoch_id?: string; segment?: number }

function rowIdentity(row: RowKeyFields): string {
  if (row.kind === 'session') return `session:${row.session_id}`;
  if (row.kind === 'daemon_segment') return `daemon:${row.epoch_id}/${row.segment}`;
  if (row.kind === 'prune') return `prune:${row.epoch_id}/${row.segment}`;
  return `other:${row.kind}`;
}

/** Notes this process wrote and has not appended yet: each one's fd holds a flock on it while the noter lives. */
const heldNotes = new Map<string, number>();
/** Held notes created ahead of their row (empty, entry synced): the next notePendingRow of that row writes into them. */
const preparedNotes = new Set<string>();

function noteFile(stateDir: string, row: RowKeyFields): string {
  return path.join(stateDir, PENDING_DIR, `${rowIdentity(row).replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

/**
 * Creates, locks and syncs the empty note a session's row will be noted in, before the session
 * exists (src/ledger/session-prepare.ts). Held and empty, it is what a note is while its writer
 * writes it: an appender skips it while it is held, and drops it (unparseable) once its holder died.
 */
export function preparePendingRowNote(stateDir: string, row: RowKeyFields): void {
  const dir = path.join(stateDir, PENDING_DIR);
  ensurePrivateDir(dir);
  const file = noteFile(stateDir, row);
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  if (!tryLock(fd)) { fs.closeSync(fd); throw new WitnessError('E_LEDGER', 'another live appender holds this pending row', { file }); }
  heldNotes.set(file, fd);
  preparedNotes.add(file);
  fsyncDir(dir);
}

/** A prepared note that was not used: let go (and removed when `remove`, if it is still empty). */
export function releasePreparedNote(stateDir: string, sessionId: string, remove: boolean): void {
  const file = noteFile(stateDir, { kind: 'session', session_id: sessionId });
  if (!preparedNotes.delete(file)) return;
  if (remove) fs.rmSync(file, { force: true });
  releaseNote(file);
}

/**
 * Whether a note's writer is still alive (and may still append it itself):
 * it holds a flock on the note until its row is in (src/ledger/flock.ts).
 * A writer killed with kill -9 holds nothing; the pid inside is for people.
 */
export function noteHeld(file: string): boolean {
  let fd: number;
  try { fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW); } catch { return false; }
  try { return !tryLock(fd, true); } finally { fs.closeSync(fd); }
}

function releaseNote(file: string): void {
  const fd = heldNotes.get(file);
  if (fd === undefined) return;
  heldNotes.delete(file);
  try { fs.closeSync(fd); } catch { /* already closed */ }
}

/**
 * Durably notes a row that is about to be appended. If the closer dies
 * between sealing its session and appending the row, the next appender
 * (under the lock) finds a note nobody holds and appends the row for it,
 * so a crash in that window never leaves a closed session out of the ledger.
 */
export function notePendingRow(stateDir: string, row: GlobalRow): string {
  const n = openNote(stateDir, row);
  writeFully(n.fd, n.bytes);
  fs.fsyncSync(n.fd);
  if (n.syncDir) fsyncDir(n.dir);
  return n.file;
}

/**
 * notePendingRow with its fsyncs on libuv's threadpool (a session's seal runs them beside the
 * final checkpoint's): durable, entry included, when it resolves; the lock is taken before.
 */
export async function notePendingRowAsync(stateDir: string, row: GlobalRow): Promise<string> {
  const n = openNote(stateDir, row);
  await writeFullyAsync(n.fd, n.bytes);
  await fsyncAsync(n.fd);
  if (n.syncDir) await fsyncDirAsync(n.dir);
  return n.file;
}

/** The held, locked, empty note a row is written into: a prepared one (entry durable already), or one created now. */
function openNote(stateDir: string, row: GlobalRow): { file: string; dir: string; fd: number; bytes: Buffer; syncDir: boolean } {
  const dir = path.join(stateDir, PENDING_DIR);
  const file = noteFile(stateDir, row);
  const bytes = Buffer.from(JSON.stringify({ pid: process.pid, row }));
  const ready = preparedNotes.has(file) ? heldNotes.get(file) : undefined;
  preparedNotes.delete(file);
  // prepared (src/ledger/session-prepare.ts): created, locked and its entry synced already; empty until now
  if (ready !== undefined) return { file, dir, fd: ready, bytes, syncDir: false };
  ensurePrivateDir(dir);
  releaseNote(file); // noted again (a retry after a disk failure): the new fd takes over
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    // locked before it has content, so no appender ever adopts a note its live writer is still writing
    if (!tryLock(fd)) throw new WitnessError('E_LEDGER', 'another live appender holds this pending row', { file });
    fs.ftruncateSync(fd, 0);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  heldNotes.set(file, fd);
  return { file, dir, fd, bytes, syncDir: true };
}

function lastRow(stateDir: string): (RowKeyFields & { new_public_key?: string }) | null {
  const file = path.join(stateDir, GLOBAL_EVENTS_FILE);
  if (!fs.existsSync(file)) return null;
  const fd = fs.openSync(file, 'r');
  try {
    const { lastLine } = readTail(fd, fs.fstatSync(fd).size);
    if (!lastLine) return null;
    const rec = parseRecord(lastLine, 0, lastLine.length);
    if (typeof rec === 'string') return null;
    return JSON.parse(lastLine.toString('utf8', rec.eventStart, rec.eventEnd)) as RowKeyFields;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function lastCheckpointSigner(stateDir: string): string | null {
  const file = path.join(stateDir, GLOBAL_CHECKPOINTS_FILE);
  if (!fs.existsSync(file)) return null;
  const fd = fs.openSync(file, 'r');
  try {
    const { lastLine } = readTail(fd, fs.fstatSync(fd).size);
    if (!lastLine) return null;
    const env = JSON.parse(lastLine.toString('utf8')) as { payload: string };
    return (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicate: { public_key: string } }).predicate.public_key;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The key the host ledger's next checkpoint must carry: its current signer
 * (or the key a just-appended rotation row names). An appender holding
 * another key (`witness run --sign-key`) signs the host ledger with the
 * state dir's host key when that is the ledger's key; otherwise its own key
 * signs, and verification reports the unauthorised change of signer.
 */
function hostLedgerKey(stateDir: string, appender: KeyObject, last: (RowKeyFields & { new_public_key?: string }) | null): KeyObject {
  const expected = last?.kind === 'key_rotation' && last.new_public_key ? last.new_public_key : lastCheckpointSigner(stateDir);
  const pub = (k: KeyObject): string => rawPublicKey(k).toString('base64');
  if (expected === null || pub(appender) === expected) return appender;
  const host = existingHostKey(stateDir);
  if (host && pub(host) === expected) return host;
  logger.warn({ stateDir }, 'host ledger is signed by another key than this appender\'s and the state dir\'s host key; the change of signer will verify as MISMATCH');
  return appender;
}

/** A noted row still describes its log's final seal (not resumed and resealed by a later writer). */
function stillOnDisk(stateDir: string, row: GlobalRow): boolean {
  if (row.kind === 'session') {
    try { return sha256(fs.readFileSync(path.join(path.resolve(stateDir, row.dir), SESSION_FILE))).toString('hex') === row.session_sha256; } catch { return false; }
  }
  if (row.kind === 'daemon_segment') return segmentTail(path.resolve(stateDir, row.dir), row.segment).checkpointSha256 === row.final_checkpoint_sha256;
  return true;
}

/** Rows noted by appenders that died before appending; the caller holds the lock. */
function orphanedRows(stateDir: string, own: string | undefined): Array<{ file: string; row: GlobalRow }> {
  const dir = path.join(stateDir, PENDING_DIR);
  if (!fs.existsSync(dir)) return [];
  const out: Array<{ file: string; row: GlobalRow }> = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (file === own || !name.endsWith('.json')) continue;
    if (noteHeld(file)) continue; // its writer lives and appends it itself (checked before reading: it may be mid-write)
    try {
      const note = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; row: GlobalRow };
      if (stillOnDisk(stateDir, note.row)) out.push({ file, row: note.row });
      else fs.rmSync(file, { force: true }); // its log was resumed and resealed since: that seal brings its own row
    } catch {
      // A note torn by the crash itself: its session never got as far as session.json.
      fs.rmSync(file, { force: true });
    }
  }
  return out;
}

/** Appends the rows killed appenders noted but never appended (if any), sealed by one checkpoint. */
export function adoptOrphanRows(stateDir: string, key: KeyObject): void {
  if (!fs.existsSync(path.join(stateDir, PENDING_DIR))) return;
  appendGlobalRow(stateDir, key, null);
}

export interface GlobalAppendOptions {
  /**
   * Runs under the lock before the first byte of the append is written (a session's close: the
   * fsync of session.json's directory entry, started early, so the row is never written before it).
   */
  beforeWrite?: () => void;
}

export function appendGlobalRow(stateDir: string, key: KeyObject, row: GlobalRow, pendingNote?: string, opts?: GlobalAppendOptions): GlobalAppendResult;
export function appendGlobalRow(stateDir: string, key: KeyObject, row: GlobalRow | null, pendingNote?: string, opts?: GlobalAppendOptions): GlobalAppendResult | null;
export function appendGlobalRow(stateDir: string, key: KeyObject, row: GlobalRow | null, pendingNote?: string, opts: GlobalAppendOptions = {}): GlobalAppendResult | null {
  ensurePrivateDir(stateDir);
  return withFileLock(path.join(stateDir, 'ledger.lock'), () => {
    // Read before opening: after a crash right after appending, the dead appender's row is the last one.
    const last = lastRow(stateDir);
    const lastIdentity = last ? rowIdentity(last) : null;
    const orphans: Array<{ file: string; row: GlobalRow }> = [];
    for (const o of orphanedRows(stateDir, pendingNote)) {
      // Died right after appending: its row is already the last one.
      if (rowIdentity(o.row) === lastIdentity) fs.rmSync(o.file, { force: true });
      else orphans.push(o);
    }
    if (row === null && orphans.length === 0) { opts.beforeWrite?.(); return null; }
    const signer = row?.kind === 'key_rotation' ? key : hostLedgerKey(stateDir, key, last);
    const log = new LedgerLog({
      dir: stateDir,
      eventsFile: GLOBAL_EVENTS_FILE,
      checkpointsFile: GLOBAL_CHECKPOINTS_FILE,
      log: 'global',
      logId: `host:${os.hostname()}`,
      key: signer,
      checkpointEverySeconds: 0,
      flushIntervalMs: 0,
      allowSignerChange: true,
      onSealed: continuityHook(stateDir),
    });
    let head: ReturnType<typeof startLedgerHead> | null = null;
    try {
      opts.beforeWrite?.();
      const rec = log.recovered;
      if (rec && (rec.lost.bytes > 0 || rec.tornCheckpointBytes > 0 || log.unsealedCount > 0)) {
        // A previous appender died mid-append: say so in the chain itself.
        log.markRestart();
        log.append(JSON.stringify({
          kind: 'recovery',
          time: nowRfc3339(),
          lost_bytes: rec.lost.bytes,
          lost_sha256: rec.lost.sha256,
          lost_file: rec.lost.file,
          unsealed_rows_kept: log.unsealedCount,
          torn_checkpoint_bytes: rec.tornCheckpointBytes,
        }));
      }
      let seq = -1;
      for (const o of orphans) seq = log.append(JSON.stringify(o.row));
      if (row) seq = log.append(JSON.stringify(row));
      // ledger.head's temporary written and its fsync started once the line is signed, beside the checkpoint's fsyncs
      const checkpointSha256 = log.checkpoint('append', { onSigned: (_sha, line) => { head = startLedgerHead(stateDir, line); } });
      const started = head!;
      head = null;
      started.finish();
      for (const o of orphans) fs.rmSync(o.file, { force: true });
      if (pendingNote) { fs.rmSync(pendingNote, { force: true }); releaseNote(pendingNote); }
      return { seq, checkpointSha256 };
    } catch (e) {
      (head as ReturnType<typeof startLedgerHead> | null)?.abandon();
      // a disk failure: close() would flush and fsync again and throw over the real error; the next appender recovers the tail
      log.abandon();
      throw e;
    } finally {
      log.close();
    }
  });
}
