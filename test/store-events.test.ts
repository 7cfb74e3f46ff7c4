import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rfc3339Nanos, type Envelope } from '../src/events/envelope.js';
import { openStore } from '../src/store/db.js';
import { EventStore } from '../src/store/events.js';
import { MIGRATIONS } from '../src/store/migrations.js';

const T0 = Date.UTC(2026, 10, 22, 3, 0, 0);

function env(ms: number, event: Envelope['event'], agent: string | null, pid: number, extra = ''): { env: Envelope; line: string } {
  const e: Envelope = {
    time: rfc3339Nanos(BigInt(ms) * 1_000_000n + 123n),
    event,
    attributes: { 'process.pid': pid, ...(agent ? { 'witness.agent': agent } : {}), 'witness.pad': extra },
  };
  return { env: e, line: JSON.stringify(e) };
}

describe('events table (migration 3)', () => {
  it('is created by the migration list and recorded in schema_migrations', () => {
    const store = openStore(':memory:');
    try {
      expect(MIGRATIONS.some((m) => m.version === 3 && m.name === 'events')).toBe(true);
      const cols = store.db.prepare("SELECT name FROM pragma_table_info('events')").pluck().all();
      expect(cols).toEqual(['id', 'time_ms', 'event', 'agent', 'pid', 'line', 'ctx']); // ctx: migration 6
      expect(store.schemaVersion).toBeGreaterThanOrEqual(3);
    } finally {
      store.close();
    }
  });

  it('stores the exact line and filters by agent, event, pid and time', () => {
    const store = openStore(':memory:');
    try {
      const ev = new EventStore(store);
      const rows = [
        env(T0, 'process.exec', 'coder', 10),
        env(T0 + 1000, 'network.connect', 'coder', 10),
        env(T0 + 2000, 'network.connect', 'reviewer', 11),
        env(T0 + 3000, 'network.connect', null, 12),
        env(T0 + 4000, 'file.write', 'coder', 13),
      ];
      ev.append(rows);
      expect(ev.count()).toBe(5);
      expect(ev.query({ agent: 'coder' })).toEqual([rows[0]!.line, rows[1]!.line, rows[4]!.line]);
      expect(ev.query({ event: 'network.connect' }).length).toBe(3);
      expect(ev.query({ agent: 'coder', event: 'network.connect' })).toEqual([rows[1]!.line]);
      expect(ev.query({ pid: 12 })).toEqual([rows[3]!.line]);
      expect(ev.query({ sinceMs: T0 + 1000, untilMs: T0 + 3000 })).toEqual([rows[1]!.line, rows[2]!.line]);
      // --limit keeps the newest N, still printed oldest first
      expect(ev.query({ limit: 2 })).toEqual([rows[3]!.line, rows[4]!.line]);
    } finally {
      store.close();
    }
  });

  it('retention by age deletes only events older than the limit', () => {
    const store = openStore(':memory:');
    try {
      const ev = new EventStore(store);
      ev.append([env(T0 - 10 * 86_400_000, 'process.exec', 'a', 1), env(T0 - 3600_000, 'process.exec', 'a', 2), env(T0, 'process.exec', 'a', 3)]);
      const r = ev.applyRetention({ maxAgeMs: 86_400_000 }, T0);
      expect(r.deletedByAge).toBe(1);
      expect(ev.query({}).map((l) => (JSON.parse(l) as Envelope).attributes['process.pid'])).toEqual([2, 3]);
    } finally {
      store.close();
    }
  });

  it('retention by size trims the oldest events until the database fits', () => {
    const store = openStore(':memory:');
    try {
      const ev = new EventStore(store);
      const pad = 'x'.repeat(1000);
      const rows = Array.from({ length: 4000 }, (_, i) => env(T0 + i, 'file.write', 'a', i, pad));
      ev.append(rows);
      const before = ev.usedBytes();
      expect(before).toBeGreaterThan(4_000_000);
      const limit = 1_000_000;
      const r = ev.applyRetention({ maxBytes: limit }, T0 + 10_000);
      expect(r.deletedBySize).toBeGreaterThan(0);
      expect(r.usedBytes).toBeLessThanOrEqual(limit);
      const left = ev.query({}).map((l) => (JSON.parse(l) as Envelope).attributes['process.pid'] as number);
      // what survives is the newest contiguous run
      expect(left.length).toBe(4000 - r.deletedBySize);
      expect(left[0]).toBe(r.deletedBySize);
      expect(left[left.length - 1]).toBe(3999);
    } finally {
      store.close();
    }
  });

  it('the event index (migration 7) leaves file.write out, and queries for other events still use it', () => {
    const store = openStore(':memory:');
    try {
      const ev = new EventStore(store);
      const rows = [];
      for (let i = 0; i < 300; i++) rows.push(env(T0 + i, i % 10 === 0 ? 'process.exec' : 'file.write', null, 100 + i));
      ev.append(rows);
      const entries = store.db.prepare("SELECT count(*) FROM events INDEXED BY events_event_time WHERE event <> 'file.write'").pluck().get();
      expect(entries).toBe(30);
      // the query carries the index's own term, or SQLite would walk the time index for a rare event
      expect(ev.plan({ event: 'process.exec', limit: 5 })).toMatch(/USING INDEX events_event_time/);
      expect(ev.plan({ event: 'file.write', limit: 5 })).not.toMatch(/events_event_time/);
      expect(ev.query({ event: 'process.exec' })).toEqual(rows.filter((_, i) => i % 10 === 0).map((r) => r.line));
      expect(ev.query({ event: 'file.write', limit: 3 })).toEqual(rows.filter((_, i) => i % 10 !== 0).slice(-3).map((r) => r.line));
    } finally {
      store.close();
    }
  });

  it('the agent index (migrations 5, 8) holds attributed rows only, and agent queries still use it', () => {
    const store = openStore(':memory:');
    try {
      const ev = new EventStore(store);
      const rows = [];
      // host-wide most rows are the enricher's 'unattributed' (src/identity/enricher.ts); a few have no agent at all
      for (let i = 0; i < 300; i++) rows.push(env(T0 + i, 'file.write', i % 10 === 0 ? 'coder' : i % 10 === 5 ? null : 'unattributed', 100 + i));
      ev.append(rows);
      const entries = store.db.prepare("SELECT count(*) FROM events INDEXED BY events_agent_time WHERE agent <> 'unattributed'").pluck().get();
      expect(entries).toBe(30);
      expect(ev.plan({ agent: 'coder', limit: 5 })).toMatch(/USING INDEX events_agent_time/);
      expect(ev.plan({ agent: 'unattributed', limit: 5 })).not.toMatch(/events_agent_time/);
      expect(ev.query({ agent: 'coder' })).toEqual(rows.filter((_, i) => i % 10 === 0).map((r) => r.line));
      expect(ev.query({ agent: 'unattributed', limit: 4 })).toEqual(rows.filter((_, i) => i % 10 !== 0 && i % 10 !== 5).slice(-4).map((r) => r.line));
      expect(ev.query({ agent: 'coder', event: 'file.write', sinceMs: T0 + 100, untilMs: T0 + 200 })).toEqual(rows.filter((_, i) => i % 10 === 0 && i >= 100 && i < 200).map((r) => r.line));
    } finally {
      store.close();
    }
  });

  it('a store at migration 7 upgrades to the attributed agent index with its rows and answers alike', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wa-ev8-'));
    try {
      const path = join(dir, 'witness.db');
      const at7 = openStore(path, MIGRATIONS.filter((m) => m.version <= 7));
      const rows = [];
      for (let i = 0; i < 200; i++) rows.push(env(T0 + i, i % 20 === 0 ? 'process.exec' : 'file.write', i % 4 === 0 ? 'coder' : 'unattributed', 100 + i));
      new EventStore(at7).append(rows);
      const asked = [{ agent: 'coder' }, { agent: 'unattributed', limit: 7 }, { agent: 'coder', event: 'process.exec' }, { sinceMs: T0 + 50, untilMs: T0 + 60 }];
      const before = asked.map((q) => new EventStore(at7).query(q));
      at7.close();
      const now = openStore(path);
      try {
        expect(now.schemaVersion).toBe(8);
        const sql = now.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'events_agent_time'").pluck().get() as string;
        expect(sql).toMatch(/WHERE agent <> 'unattributed'/);
        const ev = new EventStore(now);
        expect(asked.map((q) => ev.query(q))).toEqual(before);
        expect(before[0]!.length).toBe(50);
      } finally {
        now.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
