import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { tryLock } from './flock.js';

export { DEFAULT_STATE_DIR, resolveStateDir } from './state-dir.js';
export const GLOBAL_EVENTS_FILE = 'ledger.ndjson';
export const GLOBAL_CHECKPOINTS_FILE = 'ledger.checkpoints.ndjson';
export const SESSION_EVENTS_FILE = 'events.ndjson';
export const SESSION_CHECKPOINTS_FILE = 'checkpoints.ndjson';
export const SESSION_FILE = 'session.json';
export const SESSION_OPEN_FILE = 'session.open.json';

/**
 * Creates `dir` (and parents) and forces it to 0700: the ledger must be
 * unreadable and unwritable for every user but its owner (root), so the
 * traced agent, running unprivileged, cannot read or extend it.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  } catch (cause) {
    throw new WitnessError('E_IO', `cannot create private directory (${(cause as Error).message})`, { file: dir, cause });
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void { Atomics.wait(sleeper, 0, 0, ms); }

const READ_ONLY = new Set(['EACCES', 'EROFS', 'EPERM']);

/**
 * Opens (creating, 0600) a lock file. Never follows a symlink. A state dir
 * copied read-only can still be locked through an existing lock file opened
 * read-only (flock needs no write access).
 */
function openLockFile(lockPath: string): { fd: number; writable: boolean } {
  try {
    return { fd: fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600), writable: true };
  } catch (e) {
    if (READ_ONLY.has((e as NodeJS.ErrnoException).code ?? '')) {
      try { return { fd: fs.openSync(lockPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW), writable: false }; } catch { /* fall through: report the first error */ }
    }
    throw new WitnessError('E_IO', `cannot open lock file (${(e as Error).message})`, { file: lockPath, cause: e });
  }
}

/** The pid a holder wrote into its lock file: for messages only, never to decide who holds it. */
function lockOwner(lockPath: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch { return null; }
}

/** Best effort: who holds the lock, for `lock held by pid …` and verify's OPEN lines. A full disk leaves it empty, harmlessly. */
function notePid(fd: number): void {
  try {
    const pid = Buffer.from(String(process.pid));
    // Already ours (the daemon takes the same locks for every run): the truncate is a journaled metadata write, skip it.
    const held = Buffer.alloc(pid.length + 1);
    if (fs.readSync(fd, held, 0, held.length, 0) === pid.length && held.subarray(0, pid.length).equals(pid)) return;
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, pid, 0, pid.length, 0);
  } catch { /* informational only */ }
}

/**
 * Exclusive flock(2) on a kept lock file (src/ledger/flock.ts). The kernel
 * drops the lock when its holder dies (kill -9 included), so there is no
 * stale lock to take over and nothing is ever unlinked: unlinking a lock
 * file races with a waiter that has it open. Synchronous on purpose: the
 * critical sections are a few ms.
 */
export function withFileLock<T>(lockPath: string, fn: () => T, timeoutMs = 15_000): T {
  const release = acquireFileLock(lockPath, timeoutMs);
  try {
    return fn();
  } finally {
    release();
  }
}

/** withFileLock's acquisition, for a critical section that spans awaits: returns the release function. */
export function acquireFileLock(lockPath: string, timeoutMs = 15_000): () => void {
  const deadline = Date.now() + timeoutMs;
  const { fd, writable } = openLockFile(lockPath);
  try {
    while (!tryLock(fd)) {
      if (Date.now() > deadline) throw new WitnessError('E_IO', `lock held${ownerText(lockPath)} for over ${timeoutMs} ms`, { file: lockPath });
      sleepMs(5);
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e instanceof WitnessError ? e : new WitnessError('E_IO', `cannot take lock (${(e as Error).message})`, { file: lockPath, cause: e });
  }
  if (writable) notePid(fd);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    fs.closeSync(fd); // drops the flock; the file stays
  };
}

function ownerText(lockPath: string): string {
  const pid = lockOwner(lockPath);
  return pid === null ? '' : ` by pid ${pid}`;
}

/**
 * A lock held for a writer's lifetime (one writer per log). Returns the
 * release function. Fails at once when another live writer holds it; a
 * killed writer's lock is already gone (the kernel released it).
 */
export function holdFileLock(lockPath: string): () => void {
  const { fd } = openLockFile(lockPath);
  // A moment's grace: writerState() probes with a shared lock for microseconds.
  const deadline = Date.now() + 250;
  try {
    while (!tryLock(fd)) {
      if (Date.now() > deadline) throw new WitnessError('E_LEDGER', `another writer${ownerText(lockPath)} holds this log`, { file: lockPath });
      sleepMs(5);
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e instanceof WitnessError ? e : new WitnessError('E_IO', `cannot take lock (${(e as Error).message})`, { file: lockPath, cause: e });
  }
  notePid(fd);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    fs.closeSync(fd);
  };
}

export const WRITER_LOCK_FILE = 'writer.lock';

/**
 * Whether a log's writer is still running: whether anyone holds the flock
 * on its `writer.lock` (probed with a non-blocking shared lock). A writer
 * that was killed or crashed holds nothing, whatever pid its file names;
 * the pid is reported for messages only.
 */
export function writerState(dir: string): { pid: number | null; alive: boolean } {
  const lockPath = path.join(dir, WRITER_LOCK_FILE);
  let fd: number;
  try {
    fd = fs.openSync(lockPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return { pid: null, alive: false }; // no lock file: no writer ever held it
  }
  try {
    const free = tryLock(fd, true);
    return { pid: lockOwner(lockPath), alive: !free };
  } finally {
    fs.closeSync(fd);
  }
}
