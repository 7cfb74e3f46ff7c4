import fs from 'node:fs';

/**
 * Reads the last complete line of a file without reading the whole file
 * (O(line length)), and reports any torn bytes after the last newline.
 */
export interface TailInfo {
  /** Last complete line (without its newline), or null when the file holds none. */
  lastLine: Buffer | null;
  /** Byte offset just past the last newline: where a torn tail starts. */
  completeBytes: number;
  /** Bytes after the last newline (a record cut short by a crash). */
  tornBytes: number;
}

export function readTail(fd: number, size: number): TailInfo {
  if (size === 0) return { lastLine: null, completeBytes: 0, tornBytes: 0 };
  let chunk = 64 * 1024;
  for (;;) {
    const start = Math.max(0, size - chunk);
    const buf = Buffer.alloc(size - start);
    readFully(fd, buf, start);
    const lastNl = buf.lastIndexOf(0x0a);
    if (lastNl === -1 && start > 0) { chunk *= 4; continue; }
    if (lastNl === -1) return { lastLine: null, completeBytes: 0, tornBytes: size };
    const completeBytes = start + lastNl + 1;
    const prevNl = buf.lastIndexOf(0x0a, lastNl - 1);
    if (prevNl === -1 && start > 0) { chunk *= 4; continue; }
    return { lastLine: buf.subarray(prevNl + 1, lastNl), completeBytes, tornBytes: size - completeBytes };
  }
}

export function readFully(fd: number, buf: Buffer, position: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) throw new Error(`unexpected end of file at byte ${position + off}`);
    off += n;
  }
}

/** UTF-8 into buf at `at` without Buffer#write's argument parsing (a measurable share per record); bytes written. */
const directUtf8 = (Buffer.prototype as unknown as { utf8Write?: (s: string, at: number) => number }).utf8Write;
export function utf8Write(buf: Buffer, s: string, at: number): number {
  return directUtf8 !== undefined ? directUtf8.call(buf, s, at) : buf.write(s, at, 'utf8');
}

export function writeFully(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

export function readRange(path: string, start: number, end: number): Buffer {
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    readFully(fd, buf, start);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so a newly created or renamed entry survives power loss. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** fsync on libuv's threadpool. */
export function fsyncAsync(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.fsync(fd, (e) => (e ? rej(e) : res())));
}

/** writeFully on libuv's threadpool (at the fd's offset). */
export async function writeFullyAsync(fd: number, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) {
    off += await new Promise<number>((res, rej) => fs.write(fd, buf, off, buf.length - off, null, (e, n) => (e ? rej(e) : res(n))));
  }
}

/** fsyncDir on libuv's threadpool. */
export async function fsyncDirAsync(dir: string): Promise<void> {
  const fd = fs.openSync(dir, 'r');
  try { await fsyncAsync(fd); } finally { fs.closeSync(fd); }
}

/**
 * An fsync started early on libuv's threadpool, for a synchronous writer that needs the file
 * durable a little later: `sync()` is the fsyncSync it always made, at the same point, so no
 * ordering changes; it only finds the journal commit under way or done (ext4 shares one commit
 * among concurrent fsyncs), instead of starting it. The fd stays open until the early fsync has
 * returned (it is never closed under a threadpool call); `sync()` may throw as fsyncSync does.
 */
export class EarlySync {
  private done = false;
  private released = false;
  constructor(readonly fd: number) {
    fs.fsync(fd, () => { this.done = true; if (this.released) this.closeFd(); });
  }

  /** Opens `file` (a directory too) read-only and starts its fsync. */
  static of(file: string): EarlySync { return new EarlySync(fs.openSync(file, 'r')); }

  /** The synchronous fsync, then the fd is let go (closed now, or when the early one returns). */
  sync(): void {
    try { fs.fsyncSync(this.fd); } finally { this.release(); }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.done) this.closeFd();
  }

  private closeFd(): void { try { fs.closeSync(this.fd); } catch { /* closed already */ } }
}
