import type Database from 'better-sqlite3';
import { parseRfc3339Nanos, type Envelope } from '../events/envelope.js';
import type { Store } from './db.js';

/**
 * The `events` table (migration 3): every exported envelope with its exact
 * NDJSON line, indexed by time, agent and event name for `witness query`,
 * and trimmed by age and by size so the store cannot fill the disk.
 */
export interface EventRow {
  env: Envelope;
  line: string;
}

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
  private readonly insert: Database.Statement;
  private readonly insertMany: (rows: readonly EventRow[]) => void;

  constructor(readonly store: Store) {
    this.insert = store.db.prepare('INSERT INTO events (time_ms, event, agent, pid, line) VALUES (?, ?, ?, ?, ?)');
    this.insertMany = store.db.transaction((rows: readonly EventRow[]) => {
      for (const { env, line } of rows) {
        const a = env.attributes;
        const agent = a['witness.agent'];
        const pid = a['process.pid'];
        this.insert.run(
          Number(parseRfc3339Nanos(env.time) / 1_000_000n),
          env.event,
          typeof agent === 'string' ? agent : null,
          typeof pid === 'number' ? pid : null,
          line,
        );
      }
    });
  }

  /** Appends rows in one transaction (one fsync-free WAL commit per batch). */
  append(rows: readonly EventRow[]): void {
    if (rows.length > 0) this.insertMany(rows);
  }

  /** Matching NDJSON lines in time order (oldest first). */
  query(q: EventQuery): string[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.agent !== undefined) { where.push('agent = ?'); args.push(q.agent); }
    if (q.event !== undefined) { where.push('event = ?'); args.push(q.event); }
    if (q.pid !== undefined) { where.push('pid = ?'); args.push(q.pid); }
    if (q.sinceMs !== undefined) { where.push('time_ms >= ?'); args.push(q.sinceMs); }
    if (q.untilMs !== undefined) { where.push('time_ms < ?'); args.push(q.untilMs); }
    const limit = q.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(q.limit))}` : '';
    // Newest N, then back into time order: `--limit 100` means the latest 100.
    const sql = `SELECT line FROM (SELECT id, time_ms, line FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY time_ms DESC, id DESC${limit}) ORDER BY time_ms, id`;
    return (this.store.db.prepare(sql).pluck().all(...args) as string[]);
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
   * Deletes events past the age limit, then the oldest events in chunks
   * while the database is over the size limit. Freed pages are reused by
   * later inserts (the file does not shrink, it stops growing).
   */
  applyRetention(policy: RetentionPolicy, nowMs: number = Date.now()): RetentionResult {
    const db = this.store.db;
    let deletedByAge = 0;
    let deletedBySize = 0;
    if (policy.maxAgeMs !== undefined && policy.maxAgeMs > 0) {
      deletedByAge = db.prepare('DELETE FROM events WHERE time_ms < ?').run(nowMs - policy.maxAgeMs).changes;
    }
    if (policy.maxBytes !== undefined && policy.maxBytes > 0) {
      const trim = db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY time_ms, id LIMIT ?)');
      while (this.usedBytes() > policy.maxBytes) {
        const total = this.count();
        if (total === 0) break;
        // a tenth at a time (at least 100 rows): few passes, bounded overshoot
        const n = trim.run(Math.max(100, Math.ceil(total / 10))).changes;
        deletedBySize += n;
        // the WAL holds freed pages until a checkpoint returns them to the free list
        db.pragma('wal_checkpoint(PASSIVE)');
        if (n === 0) break;
      }
    }
    return { deletedByAge, deletedBySize, usedBytes: this.usedBytes() };
  }
}
