import type Database from 'better-sqlite3';
import { ROW_COMPACT, ROW_CONTEXT, type EventContexts } from './event-contexts.js';
import { valueAt, type RowBatch } from './row-batch.js';

/**
 * Rows per INSERT statement. One statement per row paid better-sqlite3's
 * call and bind, the statement's start and, for the AUTOINCREMENT key, a
 * read and a write of sqlite_sequence, every row: a third of the insert.
 * 100 rows is 600 parameters (SQLite allows 32766 here).
 */
export const ROWS_PER_INSERT = 100;

const COLUMNS = 6;
const VALUES = '(?, ?, ?, ?, ?, ?)';
const INSERT = 'INSERT INTO events (time_ms, event, agent, pid, line, ctx) VALUES ';

/**
 * The `events` inserts of a batch (inside the caller's transaction), bound
 * straight from the batch's columns. A statement of ROWS_PER_INSERT rows
 * for as many as fill one, one row at a time for the rest. The rows of one
 * statement get consecutive ids (SQLite gives a new row the largest id plus
 * one, and this connection is the table's only writer while it holds the
 * transaction), so the last insert id says every row's id, which
 * `event_contexts.last_id` needs.
 */
export class EventInserter {
  private readonly many: Database.Statement;
  private readonly one: Database.Statement;
  private readonly manyArgs: unknown[] = new Array<unknown>(COLUMNS * ROWS_PER_INSERT);
  private readonly oneArgs: unknown[] = new Array<unknown>(COLUMNS);
  private ctx: (number | null)[] = [];

  constructor(db: Database.Database, private readonly contexts: EventContexts) {
    this.many = db.prepare(INSERT + new Array(ROWS_PER_INSERT).fill(VALUES).join(', '));
    this.one = db.prepare(INSERT + VALUES);
  }

  /** Inserts the batch's rows, `lines` its lines split; the caller's transaction commits or rolls back. */
  insert(b: RowBatch, lines: readonly string[]): void {
    const n = b.timeMs.length;
    const contexts = this.contexts;
    // contexts first, in row order: a CONTEXT row serves the compact rows after it, and a
    // context written now for a compact row has its id before the row points at it
    if (this.ctx.length < n) this.ctx = new Array<number | null>(n);
    const ctx = this.ctx;
    for (let i = 0; i < n; i++) {
      const form = b.form[i];
      ctx[i] = form === ROW_COMPACT ? contexts.idFor(valueAt(b.key, i)!) : null;
      if (form === ROW_CONTEXT) contexts.note(valueAt(b.key, i)!, lines[i]!);
    }
    let i = 0;
    for (; i + ROWS_PER_INSERT <= n; i += ROWS_PER_INSERT) {
      for (let k = 0; k < ROWS_PER_INSERT; k++) this.bind(this.manyArgs, COLUMNS * k, b, lines, i + k);
      this.touched(i, ROWS_PER_INSERT, Number(this.many.run(this.manyArgs).lastInsertRowid));
    }
    for (; i < n; i++) {
      this.bind(this.oneArgs, 0, b, lines, i);
      this.touched(i, 1, Number(this.one.run(this.oneArgs).lastInsertRowid));
    }
    contexts.finishBatch();
  }

  private bind(args: unknown[], at: number, b: RowBatch, lines: readonly string[], i: number): void {
    const pid = b.pid[i]!;
    args[at] = b.timeMs[i];
    args[at + 1] = valueAt(b.event, i);
    args[at + 2] = valueAt(b.agent, i);
    args[at + 3] = Number.isNaN(pid) ? null : pid;
    args[at + 4] = lines[i];
    args[at + 5] = this.ctx[i];
  }

  /** Rows `from`..`from + count - 1` got the ids ending at `lastId`: their contexts' newest pointers. */
  private touched(from: number, count: number, lastId: number): void {
    const first = lastId - count + 1;
    for (let k = 0; k < count; k++) {
      const c = this.ctx[from + k];
      if (c !== null && c !== undefined) this.contexts.touch(c, first + k);
    }
  }
}
