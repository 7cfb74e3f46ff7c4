import { fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import { utf8Write } from '../ledger/tail.js';

export interface StdoutSinkOptions {
  /** File descriptor to write (default 1). */
  fd?: number;
  /** Bytes allowed to wait for a slow reader before lines are dropped (default 8 MiB). */
  maxQueuedBytes?: number;
}

/** A regular file gets one write(2) per this many bytes (or per event-loop turn, whichever is first). */
const FILE_BATCH_BYTES = 512 << 10;

/**
 * NDJSON on stdout for `witness daemon | consumer`. A consumer that stops
 * reading must not stall the daemon: when stdout is a pipe or a socket
 * (journald's stdout is one) the lines go through a libuv stream, which puts
 * the fd in O_NONBLOCK mode and queues in user space; past `maxQueuedBytes`
 * lines are dropped and counted. A regular file or a terminal is written
 * directly (neither blocks indefinitely on a reader) and never drops: memory
 * stays bounded because a full batch is written at once.
 */
export class StdoutSink implements Sink {
  readonly name = 'stdout';
  private readonly fd: number;
  private readonly maxQueuedBytes: number;
  private readonly stream: Socket | null;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Regular file or terminal: lines UTF-8 encoded straight into one reused buffer (no array, no join). */
  private readonly fileBuf: Buffer | null;
  private fileLen = 0;
  private fileLines = 0;
  private scheduled = false;
  private written = 0;
  private dropped = 0;
  /** Lines handed to the stream whose write has not completed. */
  private inStream = 0;
  private broken = false;
  private finalized = false;

  constructor(opts: StdoutSinkOptions = {}) {
    this.fd = opts.fd ?? 1;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 8 << 20;
    const st = fstatSync(this.fd);
    if (st.isFIFO() || st.isSocket()) {
      this.stream = new Socket({ fd: this.fd, readable: false, writable: true });
      this.stream.on('error', (err) => {
        if (!this.broken) log.warn({ err: err.message }, 'stdout reader went away; dropping stdout export from now on');
        this.broken = true;
      });
    } else {
      this.stream = null;
    }
    this.fileBuf = this.stream === null ? Buffer.allocUnsafe(2 * FILE_BATCH_BYTES) : null;
  }

  /** Bytes waiting in this sink and in the stream's buffer. */
  private queuedBytes(): number {
    return this.pendingBytes + (this.stream?.writableLength ?? 0);
  }

  write(_env: Envelope, line: string): void {
    // Only a reader can stall; a regular file or terminal is written in
    // FILE_BATCH_BYTES pieces as lines arrive and never drops for being busy.
    if (this.broken || (this.stream !== null && this.queuedBytes() + line.length + 1 > this.maxQueuedBytes)) {
      this.dropped++;
      return;
    }
    const buf = this.fileBuf;
    if (buf !== null) {
      // a JS string of n UTF-16 units encodes to at most 3n UTF-8 bytes
      if (this.fileLen + line.length * 3 + 1 > buf.length) this.hand();
      if (line.length * 3 + 1 > buf.length) {
        this.writeFile(Buffer.from(`${line}\n`), 1);
        return;
      }
      this.fileLen += utf8Write(buf, line, this.fileLen);
      buf[this.fileLen++] = 0x0a;
      this.fileLines++;
      if (this.fileLen >= FILE_BATCH_BYTES) {
        this.hand();
        return;
      }
    } else {
      this.pending.push(line);
      this.pendingBytes += line.length + 1;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.hand());
    }
  }

  /** One write per event-loop turn: everything queued, joined. */
  private hand(): void {
    this.scheduled = false;
    if (this.fileBuf !== null) {
      if (this.fileLines === 0) return;
      const n = this.fileLines;
      const len = this.fileLen;
      this.fileLines = 0;
      this.fileLen = 0;
      this.writeFile(this.fileBuf.subarray(0, len), n);
      return;
    }
    if (this.pending.length === 0) return;
    const n = this.pending.length;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.stream) {
      this.inStream += n;
      this.stream.write(text, (err) => {
        if (this.finalized) return; // already counted as dropped by close()
        this.inStream -= n;
        if (err) this.dropped += n;
        else this.written += n;
      });
      return;
    }
    this.writeFile(text, n);
  }

  /** A regular file or terminal: written at once, to the end (a short write is continued, never dropped). */
  private writeFile(data: Buffer | string, n: number): void {
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < bytes.length;) off += writeSync(this.fd, bytes, off, bytes.length - off);
      this.written += n;
    } catch (err) {
      this.dropped += n;
      if (!this.broken) log.warn({ err: (err as Error).message }, 'stdout write failed');
    }
  }

  stats(): { written: number; dropped: number; queued: number } {
    return { written: this.written, dropped: this.dropped, queued: this.pending.length + this.fileLines + this.inStream };
  }

  async flush(timeoutMs = 2000): Promise<void> {
    this.hand();
    const deadline = Date.now() + timeoutMs;
    while (this.inStream > 0 && !this.broken && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Gives a slow reader `timeoutMs` to catch up; what is still queued then is counted as dropped. */
  async close(timeoutMs = 2000): Promise<void> {
    await this.flush(timeoutMs);
    if (this.stream) {
      this.finalized = true;
      this.dropped += this.inStream;
      this.inStream = 0;
      // destroy, not end: end() would wait for a reader that may never come
      this.stream.destroy();
    }
  }
}
