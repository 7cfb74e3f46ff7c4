import type Database from 'better-sqlite3';
import { joinContext } from '../events/compact.js';
import { parseRfc3339Nanos, type Attributes, type Envelope } from '../events/envelope.js';
import { WitnessError } from '../errors.js';
import { UNATTRIBUTED } from '../manifest/schema.js';
import type { Store } from './db.js';
import { EventContexts, ROW_CONTEXT, ROW_WHOLE, type RowForm } from './event-contexts.js';
import { EventInserter } from './event-insert.js';
import { rowBatch, valueAt, type RowBatch } from './row-batch.js';

/**
 * The `events` table (migration 3): every exported envelope with its exact
 * NDJSON line, indexed by time, agent and event name for `witness query`,
 * and trimmed by age and by size so the store cannot fill the disk. A
 * compact line's process context is in `event_contexts` (migration 6,
 * src/store/event-contexts.ts); `query` joins it back.
 */
export interface EventRow {
  env: Envelope;
  line: string;
}

/** A row as the table holds it: the indexed columns and the line (no envelope kept alive). */
export interface PlainRow {
  timeMs: number;
  event: string;
  agent: string | null;
  pid: number | null;
  line: string;
  /** ROW_WHOLE unless the sink knows better (src/store/store-rows.ts) */
  form: RowForm;
  /** witness.process.key of a CONTEXT or COMPACT row */
  key: string | null;
}

let lastSecond = '';
let lastSecondMs = 0;

/** Epoch ms of an envelope's `time`; the whole-second part is parsed once per second of records. */
export function timeMsOf(time: string): number {
  if (time.length !== 30 || time.charCodeAt(29) !== 90 /* Z */) return Number(parseRfc3339Nanos(time) / 1_000_000n);
  const second = time.slice(0, 19);
  if (second !== lastSecond) {
    lastSecondMs = Date.parse(`${second}Z`);
    lastSecond = second;
  }
  return lastSecondMs + Number(time.slice(20, 23));
}

/** The row for an envelope and its line (the whole record unless `form` says otherwise). */
export function plainRow(env: Envelope, line: string, form: RowForm = ROW_WHOLE, key: string | null = null): PlainRow {
  const a = env.attributes;
  const agent = a['witness.agent'];
  const pid = a['process.pid'];
  return { timeMs: timeMsOf(env.time), event: env.event, agent: typeof agent === 'string' ? agent : null, pid: typeof pid === 'number' ? pid : null, line, form, key };
}

/** The event the partial event index leaves out (migration 7), and that index's WHERE term. */
const HOT_EVENT = 'file.write';
const NOT_HOT = "event <> 'file.write'";
/** The partial agent index's WHERE term (migration 8): it leaves out the enricher's UNATTRIBUTED. */
const ATTRIBUTED = `agent <> '${UNATTRIBUTED}'`;

export interface EventQuery {
  agent?: string;
  event?: string;
  pid?: number;
  /** epoch ms, inclusive */
  sinceMs?: number;
  /** epoch ms, exclusive */
  untilMs?: number;
  limit?: number;
}

export interface RetentionPolicy {
  /** Delete events older than this (ms); 0 or undefined: no age limit. */
  maxAgeMs?: number;
  /** Keep the database's used pages under this many bytes by deleting the oldest events. */
  maxBytes?: number;
}

export interface RetentionResult {
  deletedByAge: number;
  deletedBySize: number;
  usedBytes: number;
}

export class EventStore {
  private readonly insertBatch: (b: RowBatch, lines: readonly string[]) => void;
  private trimAge: Database.Statement | undefined;
  private trimOldest: Database.Statement | undefined;
  /** the contexts compact rows point at (this connection's writer side) */
  readonly contexts: EventContexts;

  /** `contextKeys`: process keys the writer remembers at most (tests force the bound) */
  constructor(readonly store: Store, contextKeys?: number) {
    this.contexts = new EventContexts(store.db, contextKeys);
    const inserter = new EventInserter(store.db, this.contexts);
    this.insertBatch = store.db.transaction((b: RowBatch, lines: readonly string[]) => inserter.insert(b, lines));
  }

  /** Appends rows in one transaction (one fsync-free WAL commit per batch). */
  append(rows: readonly EventRow[]): void {
    if (rows.length > 0) this.appendPlain(rows.map((r) => plainRow(r.env, r.line)));
  }

  /** Appends rows already reduced to their columns (the in-thread store sink's queue holds these). */
  appendPlain(rows: readonly PlainRow[]): void {
    if (rows.length > 0) this.appendBatch(rowBatch(rows));
  }

  /** Appends a batch (the writer thread's, column by column) in one transaction; returns the rows written. */
  appendBatch(b: RowBatch): number {
    const n = b.timeMs.length;
    if (n === 0) return 0;
    const lines = b.lines.split('\n');
    // a line holding a raw newline would shift every later row onto another row's columns
    if (lines.length !== n) throw new WitnessError('E_STORE', `${this.store.path}: a batch of ${n} rows came with ${lines.length} lines (a line holds a raw newline); nothing of it written`, { file: this.store.path, field: 'line' });
    try {
      this.insertBatch(b, lines);
    } catch (err) {
      const contextRows: { key: string; line: string }[] = [];
      for (let i = 0; i < n; i++) if (b.form[i] === ROW_CONTEXT) contextRows.push({ key: valueAt(b.key, i)!, line: lines[i]! });
      this.contexts.rolledBack(contextRows);
      throw err;
    }
    return n;
  }

  /** Matching NDJSON lines in time order (oldest first). */
  query(q: EventQuery): string[] {
    const { sql, args } = this.querySql(q);
    const rows = this.store.db.prepare(sql).all(...args) as { line: string; attrs: string | null }[];
    // a compact row comes back whole: the same names and values as the record the pipeline had
    return rows.map((r) => r.attrs === null ? r.line
      : JSON.stringify(joinContext(JSON.parse(r.line) as Envelope, JSON.parse(r.attrs) as Attributes)));
  }

  /** SQLite's plan for `query(q)` (the tests check which index answers). */
  plan(q: EventQuery): string {
    const { sql, args } = this.querySql(q);
    return (this.store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((p) => p.detail).join(' | ');
  }

  private querySql(q: EventQuery): { sql: string; args: (string | number)[] } {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.agent !== undefined) {
      where.push('agent = ?');
      args.push(q.agent);
      // as NOT_HOT below: SQLite cannot prove `agent = ?` excludes 'unattributed' unless told
      if (q.agent !== UNATTRIBUTED) where.push(ATTRIBUTED);
    }
    if (q.event !== undefined) {
      where.push('event = ?');
      args.push(q.event);
      // the partial event index's own term, word for word: SQLite uses a partial index only when the query says so
      if (q.event !== HOT_EVENT) where.push(NOT_HOT);
    }
    if (q.pid !== undefined) { where.push('pid = ?'); args.push(q.pid); }
    if (q.sinceMs !== undefined) { where.push('time_ms >= ?'); args.push(q.sinceMs); }
    if (q.untilMs !== undefined) { where.push('time_ms < ?'); args.push(q.untilMs); }
    const limit = q.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(q.limit))}` : '';
    // Newest N, then back into time order: `--limit 100` means the latest 100.
    const sql = `SELECT e.line AS line, c.attrs AS attrs FROM (SELECT id, time_ms, line, ctx FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY time_ms DESC, id DESC${limit}) e LEFT JOIN event_contexts c ON c.id = e.ctx ORDER BY e.time_ms, e.id`;
    return { sql, args };
  }

  count(): number {
    return this.store.db.prepare('SELECT count(*) FROM events').pluck().get() as number;
  }

  /** Bytes in use by the whole database file (pages minus the free list). */
  usedBytes(): number {
    const db = this.store.db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    const size = db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  /**
   * One bounded step of retention: deletes at most `maxRows` events, first
   * those past the age limit, then the oldest while the database is over the
   * size limit. A step costs about `maxRows` index deletions, so a caller
   * that repeats it across event-loop turns never holds the loop for long:
   * at 50k events/s a full store trims 50k rows a second, which in one pass a
   * minute stalled the daemon for seconds (the ring and every queue filled).
   * Freed pages are reused by later inserts (the file stops growing; it does
   * not shrink).
   */
  trimStep(policy: RetentionPolicy, maxRows: number, nowMs: number = Date.now()): { deletedByAge: number; deletedBySize: number } {
    let deletedByAge = 0;
    let deletedBySize = 0;
    const limit = Math.max(1, Math.floor(maxRows));
    if (policy.maxAgeMs !== undefined && policy.maxAgeMs > 0) {
      this.trimAge ??= this.store.db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_ms < ? ORDER BY time_ms, id LIMIT ?)');
      deletedByAge = this.trimAge.run(nowMs - policy.maxAgeMs, limit).changes;
    }
    if (policy.maxBytes !== undefined && policy.maxBytes > 0 && deletedByAge < limit && this.usedBytes() > policy.maxBytes) {
      // oldest by id (insertion order, which is time order but for records that arrived late): a
      // range delete on the primary key, ~20 % cheaper than sorting the time index per step
      this.trimOldest ??= this.store.db.prepare('DELETE FROM events WHERE id < (SELECT min(id) FROM events) + ?');
      deletedBySize = this.trimOldest.run(limit - deletedByAge).changes;
    }
    if (deletedByAge + deletedBySize > 0) this.contexts.trim();
    return { deletedByAge, deletedBySize };
  }

  /** Every step of retention at once (startup, tests): what `trimStep` does until nothing is over a limit. */
  applyRetention(policy: RetentionPolicy, nowMs: number = Date.now()): RetentionResult {
    let deletedByAge = 0;
    let deletedBySize = 0;
    // a tenth of the table per step (at least 100 rows): few steps, bounded overshoot
    const step = Math.max(100, Math.ceil(this.count() / 10));
    for (;;) {
      const r = this.trimStep(policy, step, nowMs);
      deletedByAge += r.deletedByAge;
      deletedBySize += r.deletedBySize;
      if (r.deletedByAge + r.deletedBySize === 0) break;
    }
    // the WAL holds freed pages until a checkpoint returns them to the free list
    if (deletedBySize > 0) this.store.db.pragma('wal_checkpoint(PASSIVE)');
    return { deletedByAge, deletedBySize, usedBytes: this.usedBytes() };
  }
}
