import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Envelope } from '../events/envelope.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import type { WholeLine } from '../export/whole-line.js';
import { BatchQueue, DEFAULT_QUEUE_BYTES } from '../export/batch-queue.js';
import type { PlainRow, RetentionPolicy } from '../store/events.js';
import { StoreRows } from '../store/store-rows.js';
import { rowBatch } from '../store/row-batch.js';
import type { StoreReply, StoreRequest, StoreWorkerData } from '../store/events-worker.js';

export interface WorkerStoreSinkOptions {
  /** the store's file (the worker opens its own connection to it) */
  path: string;
  maxQueued?: number;
  maxQueuedBytes?: number;
  retention?: RetentionPolicy;
  trimRows?: number;
}

const workerUrl = new URL('../store/events-worker.js', import.meta.url);

/** False where the worker's compiled script is absent (tests run from the TypeScript sources): use StoreSink there. */
export function storeWorkerAvailable(): boolean {
  return existsSync(fileURLToPath(workerUrl));
}

/**
 * The store sink of the daemon, its inserts and retention on a thread of
 * their own (src/store/events-worker.ts). What stays here is what was cheap
 * and had to be: choosing each row's line (the envelope dies young on this
 * thread) and the bounded, counted queue. One batch is in flight at a
 * time; the rows of a batch the worker could not insert, or that were in
 * flight when the worker died, are counted as dropped, never lost silently.
 * Batches are 1000 rows (~5 ms of insert) so that the daemon's own
 * connection (pulse, attribution) waits at most that long for the write lock.
 */
export class WorkerStoreSink extends BatchQueue<PlainRow> implements Sink {
  readonly name = 'store';
  private readonly worker: Worker;
  private readonly trimRows: number;
  private nextId = 1;
  private readonly pending = new Map<number, (r: StoreReply) => void>();
  private dead: string | null = null;
  private warned = false;
  trimmedByAge = 0;
  trimmedBySize = 0;
  /** compact rows the worker stored without their context (src/store/event-contexts.ts) */
  orphans = 0;
  private retaining = false;
  private readonly rows = new StoreRows();

  constructor(opts: WorkerStoreSinkOptions) {
    super(opts.maxQueued ?? 100_000, 1000, opts.maxQueuedBytes ?? DEFAULT_QUEUE_BYTES);
    this.trimRows = opts.trimRows ?? 2000;
    const data: StoreWorkerData = { path: opts.path, retention: opts.retention ?? {} };
    this.worker = new Worker(workerUrl, { workerData: data, execArgv: [] });
    this.worker.on('message', (r: StoreReply) => {
      const done = this.pending.get(r.id);
      this.pending.delete(r.id);
      done?.(r);
    });
    const die = (why: string): void => {
      if (this.dead !== null) return;
      this.dead = why;
      if (!this.closing) log.error({ err: why }, 'store writer thread stopped; events dropped from the store from now on');
      for (const [id, done] of this.pending) done({ id, written: 0, deletedByAge: 0, deletedBySize: 0, error: why });
      this.pending.clear();
    };
    this.worker.on('error', (err) => die(err.message));
    this.worker.on('exit', (code) => die(`exited with code ${code}`));
  }

  protected override sizeOf(row: PlainRow): number {
    return row.line.length;
  }

  /** The file sinks' line, compact where theirs is, as StoreSink (src/store/store-rows.ts). */
  write(env: Envelope, line: string, whole?: WholeLine): void {
    if (this.full()) {
      this.refuse();
      this.rows.refused(env, whole);
      return;
    }
    this.push(this.rows.row(env, line, whole));
  }

  private ask(req: StoreRequest): Promise<StoreReply> {
    if (this.dead !== null) return Promise.resolve({ id: req.id, written: 0, deletedByAge: 0, deletedBySize: 0, error: this.dead });
    return new Promise((resolve) => {
      this.pending.set(req.id, resolve);
      this.worker.postMessage(req);
    });
  }

  private account(r: StoreReply, rows: number): void {
    this.trimmedByAge += r.deletedByAge;
    this.trimmedBySize += r.deletedBySize;
    if (r.orphans !== undefined) this.orphans = r.orphans;
    if (r.error !== undefined) {
      this.dropped += rows;
      if (!this.warned) log.error({ err: r.error }, 'store insert failed; events dropped from the store');
      this.warned = true;
    } else {
      this.written += r.written;
    }
    if (r.trimError !== undefined) log.warn({ err: r.trimError }, 'store retention step failed');
  }

  /**
   * One batch in the worker at a time: while this thread waits in SQLite's
   * busy handler for the write lock (the pulse's and the attribution's
   * transactions on the daemon's own connection), the worker finishes the
   * batch it has and then idles, so that wait is bounded by one batch
   * (1000 rows, ~5 ms). Two in flight kept the worker busier but let it
   * take the lock again behind this thread's back.
   */
  protected async deliver(rows: PlainRow[]): Promise<void> {
    const r = await this.ask({ id: this.nextId++, op: 'append', batch: rowBatch(rows), trimRows: this.trimRows });
    this.account(r, rows.length);
  }

  /** Retention without new rows: steps of `trimRows` on the worker until nothing is over a limit. */
  retainSoon(): void {
    if (this.retaining || this.closing || this.dead !== null) return;
    this.retaining = true;
    const step = async (): Promise<void> => {
      const r = await this.ask({ id: this.nextId++, op: 'trim', trimRows: this.trimRows });
      this.trimmedByAge += r.deletedByAge;
      this.trimmedBySize += r.deletedBySize;
      if (r.trimError !== undefined) log.warn({ err: r.trimError }, 'store retention step failed');
      if (!this.closing && r.error === undefined && r.deletedByAge + r.deletedBySize > 0) await step();
    };
    void step().finally(() => { this.retaining = false; });
  }

  heartbeatAttributes(): Record<string, number> {
    return { 'witness.store.trimmed_age': this.trimmedByAge, 'witness.store.trimmed_size': this.trimmedBySize, 'witness.store.orphans': this.orphans };
  }

  async flush(): Promise<void> {
    await this.drained(5000);
  }

  /** Drains (what cannot be written by `timeoutMs` is counted), then closes the worker's connection. */
  async close(timeoutMs = 5000): Promise<void> {
    await this.shutdown(timeoutMs);
    if (this.dead === null) await this.ask({ id: this.nextId++, op: 'close' });
    await this.worker.terminate();
  }
}
