import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from './db.js';
import { EventStore, type RetentionPolicy } from './events.js';
import type { RowBatch } from './row-batch.js';

/**
 * The store's writer thread (src/daemon/store-worker-sink.ts): the events
 * table's inserts and retention steps, off the daemon's event loop. A row
 * costs ~6 us of CPU here, its insert and later its retention delete
 * (bench/store-writer-bench.mjs; ~9 before multi-row INSERTs and migration
 * 8), a third of a core at 50k rows/s, and on the event loop that was
 * time the kernel drain and every other sink waited for. This thread has
 * its own connection to the same WAL database; the daemon's connection
 * keeps the pulse and attribution tables (rare, small transactions).
 */
export interface StoreWorkerData { path: string; retention: RetentionPolicy }

export type StoreRequest =
  | { id: number; op: 'append'; batch: RowBatch; trimRows: number }
  | { id: number; op: 'trim'; trimRows: number }
  | { id: number; op: 'close' };

/** `written`: rows inserted; `error`: the insert failed (nothing of the batch written); `trimError`: the retention step after it failed. */
export interface StoreReply { id: number; written: number; deletedByAge: number; deletedBySize: number; orphans?: number; error?: string; trimError?: string }

function serve(data: StoreWorkerData): void {
  const store = openStore(data.path);
  const events = new EventStore(store);
  const trim = (maxRows: number): { deletedByAge: number; deletedBySize: number } =>
    data.retention.maxAgeMs === undefined && data.retention.maxBytes === undefined
      ? { deletedByAge: 0, deletedBySize: 0 }
      : events.trimStep(data.retention, maxRows);
  parentPort!.on('message', (req: StoreRequest) => {
    const reply: StoreReply = { id: req.id, written: 0, deletedByAge: 0, deletedBySize: 0 };
    if (req.op === 'close') {
      store.close();
      parentPort!.postMessage(reply);
      parentPort!.close();
      return;
    }
    if (req.op === 'append') {
      try {
        reply.written = events.appendBatch(req.batch);
        reply.orphans = events.contexts.orphans;
      } catch (err) {
        reply.error = (err as Error).message;
        parentPort!.postMessage(reply);
        return;
      }
    }
    try {
      // keep pace with what came in: a full store deletes about as many rows as each batch adds
      Object.assign(reply, trim(Math.max(req.trimRows, reply.written)));
    } catch (err) {
      reply.trimError = (err as Error).message;
    }
    parentPort!.postMessage(reply);
  });
}

if (parentPort && workerData) serve(workerData as StoreWorkerData);
