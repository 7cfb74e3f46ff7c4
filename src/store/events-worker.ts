import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from './db.js';
import { EventStore, type PlainRow, type RetentionPolicy } from './events.js';
import type { RowForm } from './event-contexts.js';

/**
 * The store's writer thread (src/daemon/store-worker-sink.ts): the events
 * table's inserts and retention steps, off the daemon's event loop. An
 * insert costs ~5 us of CPU per row here (three indexes and a ~600-byte
 * line), a quarter of a core at 50k rows/s, and on the event loop that was
 * time the kernel drain and every other sink waited for. This thread has
 * its own connection to the same WAL database; the daemon's connection
 * keeps the pulse and attribution tables (rare, small transactions).
 */
export interface StoreWorkerData { path: string; retention: RetentionPolicy }

/** A batch, column by column: one string of lines (NDJSON: no raw newline in a line) and one array per column. */
export interface RowBatch { lines: string; timeMs: Float64Array; pid: Float64Array; event: string[]; agent: (string | null)[]; form: Uint8Array; key: (string | null)[] }

export type StoreRequest =
  | { id: number; op: 'append'; batch: RowBatch; trimRows: number }
  | { id: number; op: 'trim'; trimRows: number }
  | { id: number; op: 'close' };

/** `written`: rows inserted; `error`: the insert failed (nothing of the batch written); `trimError`: the retention step after it failed. */
export interface StoreReply { id: number; written: number; deletedByAge: number; deletedBySize: number; orphans?: number; error?: string; trimError?: string }

/** The rows of a batch (worker side). */
export function batchRows(b: RowBatch): PlainRow[] {
  const lines = b.lines.split('\n');
  return lines.map((line, i) => ({
    timeMs: b.timeMs[i]!, event: b.event[i]!, agent: b.agent[i] ?? null, pid: Number.isNaN(b.pid[i]) ? null : b.pid[i]!, line,
    form: b.form[i] as RowForm, key: b.key[i] ?? null,
  }));
}

/** A batch of rows (main side). */
export function rowBatch(rows: readonly PlainRow[]): RowBatch {
  const timeMs = new Float64Array(rows.length);
  const pid = new Float64Array(rows.length);
  const event: string[] = new Array(rows.length);
  const agent: (string | null)[] = new Array(rows.length);
  const lines: string[] = new Array(rows.length);
  const form = new Uint8Array(rows.length);
  const key: (string | null)[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    timeMs[i] = r.timeMs;
    pid[i] = r.pid ?? Number.NaN;
    event[i] = r.event;
    agent[i] = r.agent;
    lines[i] = r.line;
    form[i] = r.form;
    key[i] = r.key;
  }
  return { lines: lines.join('\n'), timeMs, pid, event, agent, form, key };
}

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
        const rows = batchRows(req.batch);
        events.appendPlain(rows);
        reply.written = rows.length;
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
