import type Database from 'better-sqlite3';
import { BoundedKeys, DEFAULT_MAX_KEYS as COMPACTOR_KEYS, contextAttributes } from '../events/compact.js';
import type { Attributes } from '../events/envelope.js';

/**
 * How a row's line relates to its record (migration 6):
 * WHOLE, the line is the whole record; CONTEXT, the whole record and the
 * context its key's compact rows leave out; COMPACT, a compact line whose
 * context is in `event_contexts`.
 */
export const ROW_WHOLE = 0;
export const ROW_CONTEXT = 1;
export const ROW_COMPACT = 2;
export type RowForm = typeof ROW_WHOLE | typeof ROW_CONTEXT | typeof ROW_COMPACT;

/** A key's context as the writer knows it; `id` 0: no row in event_contexts yet (or retention deleted it). */
interface Known { id: number; attrs: string }

/** Keys remembered at most: twice the compactor's, so a key the sink still counts on is never forgotten here first. */
const DEFAULT_MAX_KEYS = 2 * COMPACTOR_KEYS;

/**
 * The writer's side of `event_contexts`: which context each process key's
 * compact rows point at. A context row is written lazily, on the first
 * compact row that needs it (a process that made one record costs none),
 * and again if retention deleted it while its process was quiet. Each
 * context row's `last_id` is the newest event row pointing at it, updated
 * once per batch, so retention can tell which contexts no kept row needs.
 */
export class EventContexts {
  private readonly known: BoundedKeys<Known>;
  /** context id → the newest events.id pointing at it, in the batch being written */
  private readonly touched = new Map<number, number>();
  /** contexts given an id in the batch being written (a rollback takes the ids back) */
  private readonly created: Known[] = [];
  private insertCtx: Database.Statement | undefined;
  private touchCtx: Database.Statement | undefined;
  private trimCtx: Database.Statement | undefined;
  /** compact rows stored without a context (their key's context record never reached this writer) */
  orphans = 0;

  constructor(private readonly db: Database.Database, maxKeys = DEFAULT_MAX_KEYS) {
    this.known = new BoundedKeys(maxKeys);
  }

  /** A CONTEXT row's line: its key's compact rows from now on are joined with this context. */
  note(key: string, line: string): void {
    const attrs = JSON.stringify(contextAttributes((JSON.parse(line) as { attributes: Attributes }).attributes));
    const k = this.known.get(key);
    // the same context again keeps its row; a changed one (setuid, a cgroup move) gets a new one
    this.known.set(key, k !== undefined && k.attrs === attrs ? k : { id: 0, attrs });
  }

  /** The context id for a COMPACT row of `key` (written now if it has none); null: an orphan. */
  idFor(key: string): number | null {
    const k = this.known.get(key);
    if (k === undefined) {
      this.orphans++;
      return null;
    }
    if (k.id === 0) {
      this.insertCtx ??= this.db.prepare('INSERT INTO event_contexts (key, attrs, last_id) VALUES (?, ?, 0)');
      k.id = Number(this.insertCtx.run(key, k.attrs).lastInsertRowid);
      this.created.push(k);
    }
    return k.id;
  }

  /** Event row `eventId` points at context `ctx`. */
  touch(ctx: number, eventId: number): void {
    this.touched.set(ctx, eventId);
  }

  /** Inside the batch's transaction, after its rows: each touched context's newest pointer. */
  finishBatch(): void {
    if (this.touched.size > 0) {
      this.touchCtx ??= this.db.prepare('UPDATE event_contexts SET last_id = ? WHERE id = ?');
      for (const [ctx, eventId] of this.touched) this.touchCtx.run(eventId, ctx);
    }
    this.touched.clear();
    this.created.length = 0;
  }

  /**
   * The batch's transaction rolled back: the ids it gave are taken back (the
   * next compact row writes its context again), and the context records it
   * held are still learned, so the compact rows after them are not orphans.
   */
  rolledBack(contextRows: readonly { key: string; line: string }[]): void {
    for (const k of this.created) k.id = 0;
    this.created.length = 0;
    this.touched.clear();
    for (const r of contextRows) {
      try {
        this.note(r.key, r.line);
      } catch {
        // an unparsable line: its compact rows become orphans, counted
      }
    }
  }

  /** After event rows were deleted: the contexts no remaining row points at (ids below the oldest kept row's). */
  trim(): number {
    this.trimCtx ??= this.db.prepare(
      'DELETE FROM event_contexts WHERE last_id < (SELECT coalesce(min(id), 9007199254740991) FROM events) RETURNING id, key');
    const gone = this.trimCtx.all() as { id: number; key: string }[];
    for (const g of gone) {
      const k = this.known.get(g.key);
      if (k !== undefined && k.id === g.id) k.id = 0;
    }
    return gone.length;
  }
}
