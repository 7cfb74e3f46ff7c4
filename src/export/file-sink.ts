import { closeSync, mkdirSync, openSync, readdirSync, unlinkSync } from 'node:fs';
import { write as fsWrite } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WitnessError } from '../errors.js';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import { BatchQueue, DEFAULT_QUEUE_BYTES } from './batch-queue.js';

const writeAsync = promisify(fsWrite);

export interface RotatingFileOptions {
  /** Directory holding the NDJSON files. */
  dir: string;
  /** File name prefix; files are `<prefix>-<UTC start>-<n>.ndjson`. */
  prefix?: string;
  /** Start a new file past this many bytes (default 64 MiB)... */
  maxBytes?: number;
  /** ...or once the current file is this old (default 1 h; 0: never by age). */
  maxAgeSeconds?: number;
  /** Keep at most this many files, deleting the oldest (default 0: keep all). */
  keep?: number;
  /** Bounded queue length in lines (default 100 000)... */
  maxQueuedLines?: number;
  /** ...and in text waiting (UTF-16 units of the lines, default 32 Mi). */
  maxQueuedBytes?: number;
  /** Injectable clock for tests. */
  now?: () => number;
}

/** `20261122T034958.123Z`: sorts lexically in time order, safe in any file system. */
function compactUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '');
}

/**
 * NDJSON into a directory of files, cut by size or age. A file is never
 * renamed: each one is created at a fresh, unique path (O_EXCL) and written
 * in place, so an importer that tracks files by path (filelog, a shipper that
 * dedups by name) sees every window exactly once and never mistakes a new
 * file for an old one. Writes are asynchronous from a bounded queue, so a
 * slow disk backs up here, counted, instead of stalling the kernel drain.
 */
export class RotatingFileSink extends BatchQueue implements Sink {
  readonly name = 'file';
  private fd: number | null = null;
  private currentPath: string | null = null;
  private bytes = 0;
  private openedAt = 0;
  private seq = 0;
  private readonly prefix: string;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly keep: number;
  private readonly now: () => number;
  private readonly created: string[] = [];

  constructor(private readonly opts: RotatingFileOptions) {
    // everything queued in one write (up to 64k lines): a kernel batch per turn must not outpace one 4096-line write per turn
    super(opts.maxQueuedLines ?? 100_000, 65_536, opts.maxQueuedBytes ?? DEFAULT_QUEUE_BYTES);
    this.prefix = opts.prefix ?? 'witness';
    this.maxBytes = opts.maxBytes ?? 64 << 20;
    this.maxAgeMs = (opts.maxAgeSeconds ?? 3600) * 1000;
    this.keep = opts.keep ?? 0;
    this.now = opts.now ?? Date.now;
    try {
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new WitnessError('E_IO', `cannot create export directory (${(cause as Error).message})`, { file: opts.dir, cause });
    }
    this.openNext();
  }

  /** Path of the file being written now. */
  get path(): string | null {
    return this.currentPath;
  }

  write(_env: Envelope, line: string): void {
    this.push(line);
  }

  private openNext(): void {
    if (this.fd !== null) closeSync(this.fd);
    const start = this.now();
    // The name carries the start time and a counter; O_EXCL guarantees a
    // restart within the same millisecond still gets a path of its own.
    for (;;) {
      this.seq++;
      const path = join(this.opts.dir, `${this.prefix}-${compactUtc(start)}-${String(this.seq).padStart(4, '0')}.ndjson`);
      try {
        this.fd = openSync(path, 'wx', 0o600);
        this.currentPath = path;
        this.created.push(path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new WitnessError('E_IO', `cannot create export file (${(err as Error).message})`, { file: path, cause: err });
        }
      }
    }
    this.bytes = 0;
    this.openedAt = start;
    this.prune();
  }

  /** Deletes our oldest files beyond `keep` (only names this sink's prefix pattern matches). */
  private prune(): void {
    if (this.keep <= 0) return;
    const pattern = new RegExp(`^${this.prefix.replace(/[^A-Za-z0-9_]/g, '\\$&')}-\\d{8}T\\d{6}\\.\\d{3}Z-\\d{4,}\\.ndjson$`);
    const files = readdirSync(this.opts.dir).filter((f) => pattern.test(f)).sort();
    for (const f of files.slice(0, Math.max(0, files.length - this.keep))) {
      const full = join(this.opts.dir, f);
      if (full === this.currentPath) continue;
      try { unlinkSync(full); } catch (err) { log.warn({ file: full, err: (err as Error).message }, 'cannot prune export file'); }
    }
  }

  private due(): boolean {
    return this.bytes >= this.maxBytes || (this.maxAgeMs > 0 && this.now() - this.openedAt >= this.maxAgeMs);
  }

  protected async deliver(lines: string[]): Promise<void> {
    if (this.bytes > 0 && this.due()) this.openNext();
    const buf = Buffer.from(`${lines.join('\n')}\n`);
    let off = 0;
    try {
      while (off < buf.length) off += (await writeAsync(this.fd!, buf, off, buf.length - off)).bytesWritten;
      this.written += lines.length;
      this.bytes += buf.length;
    } catch (err) {
      // A full or failing disk: the batch is lost here, counted, and the
      // next batch tries again (a fresh file if this one is the problem).
      this.dropped += lines.length;
      log.warn({ file: this.currentPath, err: (err as Error).message }, 'export file write failed');
    }
  }

  /** Rotates now if the current file is due by age (the daemon calls this on a timer). */
  rotateIfDue(): void {
    if (this.bytes > 0 && this.due() && this.stats().queued === 0) this.openNext();
  }

  async flush(): Promise<void> {
    await this.drained(5000);
  }

  async close(timeoutMs = 5000): Promise<void> {
    await this.shutdown(timeoutMs);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Files this sink created, oldest first. */
  files(): string[] {
    return [...this.created];
  }
}
