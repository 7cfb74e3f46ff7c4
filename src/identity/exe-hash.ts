import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readlinkSync, readSync } from 'node:fs';

/**
 * SHA-256 of executables, cached by (dev, inode, size, mtime, ctime) so a hot
 * binary is hashed once and a binary replaced in place is hashed again.
 *
 * The event path never waits long: a file up to `syncLimitBytes` is hashed
 * inline (a few ms at most, once per binary); a bigger one is hashed in the
 * background and the exec says `pending` — the next exec of the same file
 * finds it cached. The file is opened through /proc/PID/exe while the process
 * lives, which reaches the exact inode the kernel executed even when it was
 * deleted, renamed over, or lives in another mount namespace (a container's
 * path means nothing on the host). When that fails the answer is
 * `unavailable`: a path is never hashed instead.
 */

export type HashStatus = 'ok' | 'pending' | 'unavailable';

export interface ExecutableIdentity {
  /** realpath of the executable ('' when nothing could be resolved) */
  path: string;
  sha256: string | null;
  status: HashStatus;
  /** why the hash is unavailable */
  reason?: string;
  /** resolves with the digest when status is 'pending' */
  pending?: Promise<string | null>;
}

export interface HasherOptions {
  syncLimitBytes?: number;
  maxConcurrent?: number;
  maxQueued?: number;
  maxEntries?: number;
}

interface Job { fd: number; key: string; resolve: (sha: string | null) => void }

const CHUNK = 1 << 20;

export class ExecutableHasher {
  private readonly cache = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<string | null>>();
  private readonly queue: Job[] = [];
  private running = 0;
  private readonly syncLimit: number;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly maxEntries: number;
  /** counters for tests and stats */
  readonly counts = { hashedSync: 0, hashedAsync: 0, cacheHits: 0, unavailable: 0 };

  constructor(opts: HasherOptions = {}) {
    this.syncLimit = opts.syncLimitBytes ?? 4 << 20;
    this.maxConcurrent = opts.maxConcurrent ?? 2;
    this.maxQueued = opts.maxQueued ?? 256;
    this.maxEntries = opts.maxEntries ?? 8192;
  }

  /**
   * Identity of the file `pid` executed. `exe` is the kernel's resolved path
   * (may be '' or a path in another mount namespace), `filename` what execve
   * was given, `cwd` to anchor a relative filename.
   */
  identify(pid: number, exe: string, filename = '', cwd = '/'): ExecutableIdentity {
    const opened = this.open(pid, exe, filename, cwd);
    if ('reason' in opened) {
      this.counts.unavailable++;
      return { path: opened.path, sha256: null, status: 'unavailable', reason: opened.reason };
    }
    const { fd, path } = opened;
    let keep = false;
    try {
      const st = fstatSync(fd, { bigint: true });
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      const cached = this.cache.get(key);
      if (cached !== undefined) {
        this.counts.cacheHits++;
        return { path, sha256: cached, status: 'ok' };
      }
      const inflight = this.inflight.get(key);
      if (inflight) return { path, sha256: null, status: 'pending', pending: inflight };
      if (st.size <= BigInt(this.syncLimit)) {
        const sha = hashFdSync(fd);
        this.remember(key, sha);
        this.counts.hashedSync++;
        return { path, sha256: sha, status: 'ok' };
      }
      if (this.queue.length >= this.maxQueued) {
        this.counts.unavailable++;
        return { path, sha256: null, status: 'unavailable', reason: 'hash queue full' };
      }
      const pending = new Promise<string | null>((resolve) => this.queue.push({ fd, key, resolve }));
      this.inflight.set(key, pending);
      keep = true;
      this.pump();
      return { path, sha256: null, status: 'pending', pending };
    } catch (err) {
      this.counts.unavailable++;
      return { path, sha256: null, status: 'unavailable', reason: (err as Error).message };
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  /** Every digest known, by file identity (dev:ino:size:mtime:ctime): what a persistent cache saves. */
  known(): [string, string][] {
    return [...this.cache.entries()];
  }

  /** Digests a previous process computed for these file identities (a changed file has another key). */
  seed(entries: Iterable<[string, string]>): void {
    for (const [k, v] of entries) if (/^\d+:\d+:\d+:\d+:\d+$/.test(k) && /^[0-9a-f]{64}$/.test(v)) this.remember(k, v);
  }

  /** Waits for every background hash (tests, shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.inflight.values()]);
  }

  /**
   * Only the file the kernel loaded: /proc/PID/exe, opened while the process
   * lives and still names what the event named. Never a path: the file at a
   * path may have been renamed over since the exec (`mv other /tmp/x`), and
   * hashing it would vouch for a binary that never ran.
   */
  private open(pid: number, exe: string, _filename: string, _cwd: string): { fd: number; path: string } | { path: string; reason: string } {
    const named = exe.endsWith(' (deleted)') ? exe.slice(0, -' (deleted)'.length) : exe;
    let fd: number;
    try {
      fd = openSync(`/proc/${pid}/exe`, 'r');
    } catch (err) {
      return { path: exe, reason: `process gone before its executable could be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    // Checked after opening, so the fd cannot belong to a later exec of this pid
    // that the link no longer shows. A file replaced or deleted since the exec
    // reads as "PATH (deleted)": still the inode that ran.
    let link = '';
    try { link = readlinkSync(`/proc/${pid}/exe`); } catch { /* exited just now: the fd is still the file */ }
    const linkPath = link.endsWith(' (deleted)') ? link.slice(0, -' (deleted)'.length) : link;
    if (named !== '' && link !== '' && linkPath !== named) {
      closeSync(fd);
      return { path: exe, reason: 'process executed another file since the event' };
    }
    return { fd, path: named !== '' ? named : linkPath };
  }

  private remember(key: string, sha: string): void {
    if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, sha);
  }

  private pump(): void {
    while (this.running < this.maxConcurrent && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void hashFdAsync(job.fd).then(
        (sha) => { this.remember(job.key, sha); this.counts.hashedAsync++; return sha; },
        () => { this.counts.unavailable++; return null; },
      ).then((sha) => {
        this.running--;
        this.inflight.delete(job.key);
        job.resolve(sha);
        this.pump();
      });
    }
  }
}

function hashFdSync(fd: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, CHUNK, pos);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    pos += n;
  }
  return hash.digest('hex');
}

function hashFdAsync(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const stream = createReadStream('', { fd, start: 0, highWaterMark: CHUNK, autoClose: true });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.once('error', reject);
    stream.once('end', () => resolve(hash.digest('hex')));
  });
}
