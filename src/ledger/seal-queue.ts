import fs from 'node:fs';
import { writeFully } from './tail.js';

interface Pending { id: number; line: Buffer }

/**
 * Makes a log's signed checkpoint lines durable, in order, with the events
 * file fsync'd before every checkpoint that covers it (docs/ledger.md).
 *
 * `sealNow` does it on the caller's thread: fsync events, write the line,
 * fsync checkpoints, then `onSealed`. `sealLater` (the count and time
 * checkpoints of a flood) queues the line and does the same two fsyncs on
 * libuv's threadpool: on the 1M write-open storm they were ~9 % of the
 * event loop, waiting for the disk while the ring filled. The order stays
 * exact: a line is queued only after every record it covers was written
 * (write(2) returned), the events fsync starts after that, and the line is
 * written only when that fsync has returned; `onSealed` (the continuity log)
 * sees a line only once the checkpoints fsync after it has returned. A
 * synchronous seal, `drain` or close first finishes whatever is queued, on
 * the caller's thread, so nothing is reordered or sealed twice: each line is
 * taken from the queue by exactly one of the two paths.
 */
export class SealQueue {
  /** signed, not written yet (their events fsync has not returned) */
  private unwritten: Pending[] = [];
  /** written, their checkpoints fsync not returned yet */
  private written: Pending[] = [];
  private nextId = 1;
  private running = false;
  private closed = false;
  /** nothing written to the events file since its last (synchronous) fsync */
  private eventsSynced = false;

  constructor(
    private readonly eventsFd: number,
    private readonly checkpointsFd: number,
    private readonly onSealed: ((line: Buffer) => void) | undefined,
    /** an asynchronous fsync or write failed: the log's outage starts (nothing queued is sealed after it) */
    private readonly onFailure: (err: Error) => void,
  ) {}

  /** Lines signed and not yet durable. */
  get queued(): number { return this.unwritten.length + this.written.length; }

  /** The events file got bytes since its last fsync. */
  eventsWritten(): void { this.eventsSynced = false; }

  /** fsyncs the events file unless nothing was written since its last synchronous fsync. */
  syncEvents(): void {
    if (this.eventsSynced) return;
    fs.fsyncSync(this.eventsFd);
    this.eventsSynced = true;
  }

  /** Durable before it returns, after everything queued before it. */
  sealNow(line: Buffer): void {
    this.unwritten.push({ id: this.nextId++, line });
    this.drain();
  }

  /** Durable soon, in order; the event loop does not wait for the disk. */
  sealLater(line: Buffer): void {
    this.unwritten.push({ id: this.nextId++, line });
    if (!this.running) this.step();
  }

  /** Everything queued made durable now, on this thread. */
  drain(): void {
    if (this.unwritten.length > 0) {
      this.syncEvents();
      this.writeLines(this.unwritten.splice(0));
    }
    if (this.written.length > 0) {
      fs.fsyncSync(this.checkpointsFd);
      this.sealed(this.written.splice(0));
    }
  }

  /** Stops: what is queued is left as a crash would leave it (abandon after a write failure, or after drain). */
  close(): void { this.closed = true; }

  private writeLines(lines: Pending[]): void {
    writeFully(this.checkpointsFd, Buffer.concat(lines.flatMap((p) => [p.line, NEWLINE])));
    this.written.push(...lines);
  }

  private sealed(lines: Pending[]): void {
    for (const p of lines) this.onSealed?.(p.line);
  }

  /** Lines with id <= upTo still in `from` (a drain may have taken them meanwhile). */
  private static take(from: Pending[], upTo: number): Pending[] {
    let n = 0;
    while (n < from.length && from[n]!.id <= upTo) n++;
    return from.splice(0, n);
  }

  /** One round on the threadpool: events fsync, write what it covers, checkpoints fsync, hand over; again while lines wait. */
  private step(): void {
    if (this.closed || this.unwritten.length === 0) { this.running = false; return; }
    this.running = true;
    const covered = this.unwritten[this.unwritten.length - 1]!.id; // their records were written before this fsync starts
    fs.fsync(this.eventsFd, (err) => {
      if (this.closed) { this.running = false; return; }
      if (err) return this.fail(err);
      try {
        const lines = SealQueue.take(this.unwritten, covered);
        if (lines.length > 0) this.writeLines(lines);
      } catch (e) {
        return this.fail(e as Error);
      }
      const handed = this.written.length > 0 ? this.written[this.written.length - 1]!.id : 0;
      fs.fsync(this.checkpointsFd, (err2) => {
        if (this.closed) { this.running = false; return; }
        if (err2) return this.fail(err2);
        try {
          this.sealed(SealQueue.take(this.written, handed));
        } catch (e) {
          return this.fail(e as Error);
        }
        this.step();
      });
    });
  }

  private fail(err: Error): void {
    this.running = false;
    this.closed = true;
    this.onFailure(err);
  }
}

const NEWLINE = Buffer.from('\n');
