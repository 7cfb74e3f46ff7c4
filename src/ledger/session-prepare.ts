import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { preparePendingRowNote, releasePreparedNote } from './global.js';
import { LEDGER_HEAD_FILE } from './host-head.js';
import {
  SESSION_CHECKPOINTS_FILE, SESSION_EVENTS_FILE, SESSION_FILE, SESSION_OPEN_FILE, WRITER_LOCK_FILE,
  ensurePrivateDir, holdFileLock, resolveStateDir,
} from './state.js';
import { fsyncDir } from './tail.js';

/**
 * A session directory made ready before a run asks for it: the resident
 * daemon prepares the next session of a state dir after answering a run's
 * end (docs/resident.md). What a run pays for at open and seal is then only
 * what depends on the run. Creating an inode costs 0.5-1 ms on a busy ext4
 * (the allocator skips recently deleted inodes), and a session creates eight:
 * its directory, writer.lock, the two log files, the temporaries of
 * session.open.json and session.json, its pending host-ledger row note and
 * ledger.head's temporary.
 *
 * Nothing in a prepared directory is a session yet: the log files carry
 * other names and there is no session.open.json, so `witness verify` reads
 * the directory as never started and sealCrashed passes it by, whoever holds
 * its lock; the pending-row note is empty and locked (an appender skips a
 * held note, and drops an empty one whose holder died). Opening renames
 * session.open.json into place first, then the log files, under the one
 * directory sync session.open.json needs anyway: a writer killed in between
 * leaves a session.open.json, which the next writer resumes and seals.
 */

/** A prepared log file's name until the session's open renames it into place. */
export const PREPARED_SUFFIX = '.prepared';

export interface PreparedSession {
  readonly stateDir: string;
  readonly sessionId: string;
  readonly dir: string;
  /** releases writer.lock, which the preparer holds from the start */
  readonly unlock: () => void;
}

/** The temporary writeFileDurably and writeLedgerHead write before their rename (created here in advance). */
export const durableTempOf = (file: string): string => `${file}.tmp-${process.pid}`;

const prepared = new Map<string, PreparedSession>();

function touch(file: string): void {
  fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600));
}

/** Prepares the next session of `stateDir`, unless one is ready. Throws what the disk refused (nothing is left half-made then). */
export function prepareSession(stateDirIn: string): void {
  const stateDir = resolveStateDir(stateDirIn);
  if (prepared.has(stateDir)) return;
  const sessionId = crypto.randomUUID();
  const dir = path.join(stateDir, 'sessions', sessionId);
  ensurePrivateDir(dir);
  let unlock: (() => void) | null = null;
  try {
    unlock = holdFileLock(path.join(dir, WRITER_LOCK_FILE));
    for (const f of [SESSION_EVENTS_FILE, SESSION_CHECKPOINTS_FILE]) touch(path.join(dir, f + PREPARED_SUFFIX));
    for (const f of [SESSION_OPEN_FILE, SESSION_FILE]) touch(durableTempOf(path.join(dir, f)));
    touch(durableTempOf(path.join(stateDir, LEDGER_HEAD_FILE)));
    // the note's directory entry is synced here, so the seal syncs only the note itself
    preparePendingRowNote(stateDir, { kind: 'session', session_id: sessionId });
    fsyncDir(dir);
  } catch (e) {
    unlock?.();
    releasePreparedNote(stateDir, sessionId, true);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  prepared.set(stateDir, { stateDir, sessionId, dir, unlock });
}

/** The prepared session of `stateDir` for a new session to open in, or null (none, or its files are gone). */
export function takePreparedSession(stateDirIn: string): PreparedSession | null {
  const stateDir = resolveStateDir(stateDirIn);
  const p = prepared.get(stateDir);
  if (!p) return null;
  prepared.delete(stateDir);
  const whole = [SESSION_EVENTS_FILE, SESSION_CHECKPOINTS_FILE].every((f) => fs.existsSync(path.join(p.dir, f + PREPARED_SUFFIX)));
  if (!whole) { discard(p); return null; }
  return p;
}

/**
 * A prepared session whose open failed: it goes whole (lock, note, directory) while it never was a
 * session; once session.open.json is in place it stays, as an own dir would, for the next writer to seal.
 */
export function abandonPreparedSession(p: PreparedSession): void {
  if (!fs.existsSync(path.join(p.dir, SESSION_OPEN_FILE))) return discard(p);
  p.unlock();
  releasePreparedNote(p.stateDir, p.sessionId, true);
}

/** Every prepared session of this process (a daemon stopping). */
export function discardPreparedSessions(): void {
  for (const p of prepared.values()) discard(p);
  prepared.clear();
}

function discard(p: PreparedSession): void {
  p.unlock();
  releasePreparedNote(p.stateDir, p.sessionId, true);
  try { fs.rmSync(p.dir, { recursive: true, force: true }); } catch { /* a never-started dir left behind is harmless */ }
  // ledger.head's temporary, while still empty (a host-ledger append of this process consumes it)
  const head = durableTempOf(path.join(p.stateDir, LEDGER_HEAD_FILE));
  try { if (fs.statSync(head).size === 0) fs.rmSync(head); } catch { /* gone already */ }
}

/** Renames a prepared session's files into place: session.open.json first (the caller has written and fsync'd its temporary), then the logs. */
export function placePreparedFiles(dir: string, openTemp: string, openPath: string): void {
  fs.renameSync(openTemp, openPath);
  for (const f of [SESSION_EVENTS_FILE, SESSION_CHECKPOINTS_FILE]) fs.renameSync(path.join(dir, f + PREPARED_SUFFIX), path.join(dir, f));
  fsyncDir(dir);
}
