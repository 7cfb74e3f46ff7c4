import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import type { WholeLine } from '../export/whole-line.js';
import { BatchQueue, DEFAULT_QUEUE_BYTES } from '../export/batch-queue.js';
import { EventStore, type PlainRow, type RetentionPolicy } from '../store/events.js';
import { StoreRows } from '../store/store-rows.js';
import type { Store } from '../store/db.js';

export interface StoreSinkOptions {
  /** rows waiting at most (default 100 000) */
  maxQueued?: number;
  /** ...and at most this much NDJSON text waiting, in UTF-16 units (default 32 Mi: ~100k typical rows) */
  maxQueuedBytes?: number;
  /** age and size limits, applied in small steps as rows arrive and on `retainSoon()` */
  retention?: RetentionPolicy;
  /** rows one retention step deletes at most (default 2000: a few ms) */
  trimRows?: number;
}

/**
 * Envelopes into the store's `events` table, one transaction per event-loop
 * turn. better-sqlite3 is synchronous, so batching is what keeps the cost
 * per event small; the queue bound (rows and bytes) keeps a locked database
 * (a long reader holding a write lock, a full disk) from growing memory
 * without limit. Retention runs here too, in steps of `trimRows` between
 * batches, so a full store trims as fast as it fills without one long
 * DELETE holding the event loop (and through it the kernel drain).
 */
export class StoreSink extends BatchQueue<PlainRow> implements Sink {
  readonly name = 'store';
  readonly events: EventStore;
  private warned = false;
  private readonly retention: RetentionPolicy;
  private readonly trimRows: number;
  /** rows deleted by the age and size limits (policy, not loss: they were written first) */
  trimmedByAge = 0;
  trimmedBySize = 0;
  private retaining = false;
  private readonly rows = new StoreRows();

  constructor(store: Store, opts: StoreSinkOptions | number = {}) {
    const o = typeof opts === 'number' ? { maxQueued: opts } : opts;
    super(o.maxQueued ?? 100_000, 5000, o.maxQueuedBytes ?? DEFAULT_QUEUE_BYTES);
    this.events = new EventStore(store);
    this.retention = o.retention ?? {};
    this.trimRows = o.trimRows ?? 2000;
  }

  protected override sizeOf(row: PlainRow): number {
    return row.line.length;
  }

  /**
   * The row is the file sinks' line (compact where theirs is; `witness
   * query` joins the context back: src/store/store-rows.ts). A string, not
   * the envelope, waits in the queue: it weighs exactly what the byte bound
   * counts, and the envelope's object graph dies young instead of waiting
   * in the queue into the old generation (a queue of envelopes held ~300 MiB
   * of heap at 100k rows and kept the GC busy).
   */
  write(env: Envelope, line: string, whole?: WholeLine): void {
    if (this.full()) {
      this.refuse(); // counted; nothing serialised for a row that cannot be queued
      this.rows.refused(env, whole);
      return;
    }
    this.push(this.rows.row(env, line, whole));
  }

  protected async deliver(rows: PlainRow[]): Promise<void> {
    try {
      this.events.appendPlain(rows);
      this.written += rows.length;
      // keep pace with what came in: a full store deletes about as many rows as each batch adds
      this.trim(Math.max(this.trimRows, rows.length));
    } catch (err) {
      this.dropped += rows.length;
      if (!this.warned) log.error({ err: (err as Error).message }, 'store insert failed; events dropped from the store');
      this.warned = true;
    }
    // The insert is synchronous: yield a turn of the event loop between
    // batches so a deep backlog cannot hold up the kernel batches behind it.
    if (this.lines.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** One retention step; the rows it deleted. */
  private trim(maxRows: number): number {
    if (this.retention.maxAgeMs === undefined && this.retention.maxBytes === undefined) return 0;
    try {
      const r = this.events.trimStep(this.retention, maxRows);
      this.trimmedByAge += r.deletedByAge;
      this.trimmedBySize += r.deletedBySize;
      return r.deletedByAge + r.deletedBySize;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'store retention step failed');
      return 0;
    }
  }

  /**
   * Retention without new rows (the age limit passes while the host is
   * quiet): steps of `trimRows`, one per event-loop turn, until nothing is
   * over a limit.
   */
  retainSoon(): void {
    if (this.retaining || this.closing) return;
    this.retaining = true;
    const step = (): void => {
      if (!this.closing && this.trim(this.trimRows) > 0) setImmediate(step);
      else this.retaining = false;
    };
    step();
  }

  /** Heartbeat attributes beyond written/dropped/queued. */
  heartbeatAttributes(): Record<string, number> {
    return {
      'witness.store.trimmed_age': this.trimmedByAge,
      'witness.store.trimmed_size': this.trimmedBySize,
      'witness.store.orphans': this.events.contexts.orphans,
    };
  }

  async flush(): Promise<void> {
    await this.drained(5000);
  }

  async close(timeoutMs = 5000): Promise<void> {
    await this.shutdown(timeoutMs);
  }
}
