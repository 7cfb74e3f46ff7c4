import { fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';

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
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    if (this.stream === null && this.pendingBytes >= FILE_BATCH_BYTES) {
      this.hand();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.hand());
    }
  }

  /** One write per event-loop turn: everything queued, joined. */
  private hand(): void {
    this.scheduled = false;
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
    try {
      writeSync(this.fd, text);
      this.written += n;
    } catch (err) {
      this.dropped += n;
      if (!this.broken) log.warn({ err: (err as Error).message }, 'stdout write failed');
    }
  }

  stats(): { written: number; dropped: number; queued: number } {
    return { written: this.written, dropped: this.dropped, queued: this.pending.length + this.inStream };
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
