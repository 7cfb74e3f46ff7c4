import type { PlainRow } from './events.js';

/**
 * A string column as its distinct values and, per row, the index of its
 * value: a batch's rows mostly repeat a few events, agents and process
 * keys, and 1000 strings cost the structured clone (postMessage) ~1 us a
 * row between the two threads where this costs ~0.1 (measured with
 * v8.serialize + deserialize on captured batches: 1.3-1.9 against 0.4 us a
 * row with the line string and the number columns).
 */
export interface Column<T extends string | null> {
  values: T[];
  at: Uint32Array;
}

/**
 * A batch of rows column by column, as the store sink hands it to the writer
 * thread (src/store/events-worker.ts) and the writer binds it
 * (src/store/event-insert.ts): one string of lines (NDJSON: no raw newline
 * in a line), typed arrays, and the string columns as Columns. It clones
 * across the thread boundary far cheaper than 1000 objects, and the writer
 * binds straight from it without building a row object per row.
 */
export interface RowBatch {
  lines: string;
  timeMs: Float64Array;
  /** NaN: no pid */
  pid: Float64Array;
  event: Column<string>;
  agent: Column<string | null>;
  /** RowForm per row (src/store/event-contexts.ts) */
  form: Uint8Array;
  /** witness.process.key of a CONTEXT or COMPACT row, else null */
  key: Column<string | null>;
}

/** Row `i`'s value of a column. */
export function valueAt<T extends string | null>(c: Column<T>, i: number): T {
  return c.values[c.at[i]!]!;
}

class ColumnBuilder<T extends string | null> {
  readonly values: T[] = [];
  private readonly index = new Map<T, number>();
  private last: T | undefined = undefined;
  private lastAt = 0;
  readonly at: Uint32Array;

  constructor(n: number) {
    this.at = new Uint32Array(n);
  }

  set(i: number, v: T): void {
    // runs of one value are the common case (one process's records): no map lookup for them
    if (v !== this.last) {
      let k = this.index.get(v);
      if (k === undefined) {
        k = this.values.length;
        this.values.push(v);
        this.index.set(v, k);
      }
      this.last = v;
      this.lastAt = k;
    }
    this.at[i] = this.lastAt;
  }

  column(): Column<T> {
    return { values: this.values, at: this.at };
  }
}

/** A batch of rows (main side). */
export function rowBatch(rows: readonly PlainRow[]): RowBatch {
  const n = rows.length;
  const timeMs = new Float64Array(n);
  const pid = new Float64Array(n);
  const event = new ColumnBuilder<string>(n);
  const agent = new ColumnBuilder<string | null>(n);
  const lines: string[] = new Array<string>(n);
  const form = new Uint8Array(n);
  const key = new ColumnBuilder<string | null>(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    timeMs[i] = r.timeMs;
    pid[i] = r.pid ?? Number.NaN;
    event.set(i, r.event);
    agent.set(i, r.agent);
    lines[i] = r.line;
    form[i] = r.form;
    key.set(i, r.key);
  }
  return { lines: lines.join('\n'), timeMs, pid, event: event.column(), agent: agent.column(), form, key: key.column() };
}
