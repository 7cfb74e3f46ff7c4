import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';

export const DEFAULT_STATE_DIR = '/var/lib/agent-witness';
export const GLOBAL_EVENTS_FILE = 'ledger.ndjson';
export const GLOBAL_CHECKPOINTS_FILE = 'ledger.checkpoints.ndjson';
export const SESSION_EVENTS_FILE = 'events.ndjson';
export const SESSION_CHECKPOINTS_FILE = 'checkpoints.ndjson';
export const SESSION_FILE = 'session.json';
export const SESSION_OPEN_FILE = 'session.open.json';

/** State dir: explicit option, else $WITNESS_STATE_DIR, else /var/lib/agent-witness. */
export function resolveStateDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.WITNESS_STATE_DIR ?? DEFAULT_STATE_DIR);
}

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

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Exclusive lock via O_EXCL lock file holding the owner's pid. A lock whose
 * owner died (kill -9) is taken over, so a crashed writer never wedges the
 * host ledger. Synchronous on purpose: the critical section is a few ms.
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
  let fd: number | undefined;
  while (fd === undefined) {
    try {
      fd = fs.openSync(lockPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      try {
        fs.writeSync(fd, String(process.pid));
      } catch (e) {
        // (disk full): never leave a lock that names nobody behind
        fs.closeSync(fd);
        fs.rmSync(lockPath, { force: true });
        throw new WitnessError('E_IO', `cannot take lock (${(e as Error).message})`, { file: lockPath, cause: e });
      }
    } catch (e) {
      if (e instanceof WitnessError) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new WitnessError('E_IO', `cannot take lock (${(e as Error).message})`, { file: lockPath, cause: e });
      let owner = NaN;
      let ageMs = 0;
      try { owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10); ageMs = Date.now() - fs.statSync(lockPath).mtimeMs; } catch { /* vanished or half-written */ }
      // A dead owner's lock, or one left empty (its writer died between create and write) for a while, is taken over.
      if ((Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) || (Number.isNaN(owner) && ageMs > 2000)) {
        try { fs.unlinkSync(lockPath); } catch { /* someone else took it over */ }
        continue;
      }
      if (Date.now() > deadline) throw new WitnessError('E_IO', `lock held by pid ${owner} for over ${timeoutMs} ms`, { file: lockPath });
      sleepMs(5);
    }
  }
  const held = fd;
  return () => {
    fs.closeSync(held);
    fs.unlinkSync(lockPath);
  };
}

/**
 * A lock held for a writer's lifetime (one writer per log). Returns the
 * release function. A lock left by a killed writer is taken over.
 */
export function holdFileLock(lockPath: string): () => void {
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => { try { fs.unlinkSync(lockPath); } catch { /* already gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new WitnessError('E_IO', `cannot take lock (${(e as Error).message})`, { file: lockPath, cause: e });
      let owner = NaN;
      try { owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10); } catch { /* vanished */ }
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
        throw new WitnessError('E_LEDGER', `another writer (pid ${owner}) holds this log`, { file: lockPath });
      }
      try { fs.unlinkSync(lockPath); } catch { /* raced */ }
    }
  }
}

export const WRITER_LOCK_FILE = 'writer.lock';

/**
 * Whether a log's writer is still running: the pid in its `writer.lock`.
 * A lock whose pid is gone (kill -9, crash) or no lock at all means nobody
 * will seal the log but a restart. (A pid reused by an unrelated process
 * reads as alive: the log is then reported open, never wrongly sealed.)
 */
export function writerState(dir: string): { pid: number | null; alive: boolean } {
  let pid = NaN;
  try { pid = Number.parseInt(fs.readFileSync(path.join(dir, WRITER_LOCK_FILE), 'utf8'), 10); } catch { /* no lock */ }
  if (!Number.isInteger(pid) || pid <= 0) return { pid: null, alive: false };
  return { pid, alive: pidAlive(pid) };
}
