import type { PlainRow } from './events.js';

/**
 * A batch of rows column by column, as the store sink hands it to the writer
 * thread (src/store/events-worker.ts) and the writer binds it
 * (src/store/event-insert.ts): one string of lines (NDJSON: no raw newline
 * in a line) and one array per column. Typed arrays and one string clone
 * across the thread boundary far cheaper than 1000 objects, and the writer
 * binds straight from them without building a row object per row.
 */
export interface RowBatch {
  lines: string;
  timeMs: Float64Array;
  /** NaN: no pid */
  pid: Float64Array;
  event: string[];
  agent: (string | null)[];
  /** RowForm per row (src/store/event-contexts.ts) */
  form: Uint8Array;
  /** witness.process.key of a CONTEXT or COMPACT row, else null */
  key: (string | null)[];
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
