import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import { BatchQueue } from '../export/batch-queue.js';
import { EventStore, type EventRow } from '../store/events.js';
import type { Store } from '../store/db.js';

/**
 * Envelopes into the store's `events` table, one transaction per event-loop
 * turn. better-sqlite3 is synchronous, so batching is what keeps the cost
 * per event small; the queue bound keeps a locked database (a long reader
 * holding a write lock, a full disk) from growing memory without limit.
 */
export class StoreSink extends BatchQueue<EventRow> implements Sink {
  readonly name = 'store';
  readonly events: EventStore;
  private warned = false;

  constructor(store: Store, maxQueued = 100_000) {
    super(maxQueued, 5000);
    this.events = new EventStore(store);
  }

  /**
   * The store keeps the whole record (context joined), not the compact line
   * the file sinks get, so `witness query` can answer from any one row.
   * Serialised at delivery, off the kernel drain.
   */
  write(env: Envelope, _line: string): void {
    this.push({ env, line: '' });
  }

  protected async deliver(rows: EventRow[]): Promise<void> {
    for (const r of rows) if (r.line === '') r.line = JSON.stringify(r.env);
    try {
      this.events.append(rows);
      this.written += rows.length;
    } catch (err) {
      this.dropped += rows.length;
      if (!this.warned) log.error({ err: (err as Error).message }, 'store insert failed; events dropped from the store');
      this.warned = true;
    }
    // The insert is synchronous: yield a turn of the event loop between
    // batches so a deep backlog cannot hold up the kernel batches behind it.
    if (this.lines.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async flush(): Promise<void> {
    await this.drained(5000);
  }

  async close(timeoutMs = 5000): Promise<void> {
    await this.shutdown(timeoutMs);
  }
}
