import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreSink } from '../src/daemon/store-sink.js';
import { ContextCompactor, WHOLE, type Decision } from '../src/events/compact.js';
import { rfc3339Nanos, type Attributes, type Envelope } from '../src/events/envelope.js';
import { compactLine } from '../src/export/ndjson-line.js';
import { WholeLine } from '../src/export/whole-line.js';
import { openStore, type Store } from '../src/store/db.js';
import { EventStore, type PlainRow } from '../src/store/events.js';
import { ROW_COMPACT, ROW_WHOLE } from '../src/store/event-contexts.js';
import { StoreRows } from '../src/store/store-rows.js';
import { ROWS_PER_INSERT } from '../src/store/event-insert.js';
import { rowBatch } from '../src/store/row-batch.js';

/**
 * The store keeps the file's compact lines and joins each with the context
 * in force when it was written (src/store/event-contexts.ts). The attacks on
 * that: a process whose context changes mid-life (setuid) must not have its
 * earlier rows rewritten with its later uid; a context record the store
 * never got must not leave compact rows without context; retention must not
 * delete the context a kept row needs.
 */

let t = 0;
const time = (): string => rfc3339Nanos(BigInt(Date.UTC(2026, 11, 3, 8)) * 1_000_000n + BigInt(++t) * 1_000_123n);
function rec(key: string, pid: number, uid: number, path: string, event = 'file.write'): Envelope {
  const a: Attributes = {
    'process.pid': pid, 'thread.id': pid, 'file.path': path, 'witness.result': 3, 'witness.open.flags': ['O_WRONLY'],
    'process.user.id': uid, 'witness.gid': 0, 'process.command': 'tar', 'process.linux.cgroup': 77,
    'process.executable.path': '/usr/bin/tar', 'witness.process.parent_chain': ['1:systemd', '900:bash'],
    'witness.process.key': key, 'witness.agent': 'claude',
  };
  return { time: time(), event, attributes: a };
}

/** Writes `envs` to `sink` as the daemon's pipeline does (src/daemon/pipeline.ts, toSinks). */
function feed(sink: { write(env: Envelope, line: string, whole?: WholeLine): void }, envs: readonly Envelope[], compactor = new ContextCompactor()): void {
  const whole = new WholeLine();
  const decided: { decision: Decision } = { decision: WHOLE };
  for (const env of envs) {
    const line = compactLine(compactor, env, decided);
    whole.set(env, line, decided.decision);
    sink.write(env, line, whole);
  }
}

const parsed = (lines: string[]): Envelope[] => lines.map((l) => JSON.parse(l) as Envelope);

describe('compact rows in the store', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wa-ctx-'));
    store = openStore(join(dir, 'witness.db'));
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('are stored as the compact line and queried back as the whole record, each with the context in force when it was written', async () => {
    const envs: Envelope[] = [];
    for (let i = 0; i < 40; i++) envs.push(rec('100-1', 100, 0, `/tmp/x/${i}`));
    for (let i = 0; i < 10; i++) envs.push(rec('200-2', 200, 0, `/tmp/y/${i}`), rec('100-1', 100, 0, `/tmp/x/b${i}`));
    for (let i = 0; i < 20; i++) envs.push(rec('100-1', 100, 1000, `/tmp/x/c${i}`)); // setuid mid-life: a new context
    envs.push(rec('100-1', 100, 1000, '', 'process.exit'));
    const sink = new StoreSink(store);
    feed(sink, envs);
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: envs.length, dropped: 0 });
    const rows = store.db.prepare('SELECT line, ctx FROM events ORDER BY id').all() as { line: string; ctx: number | null }[];
    // three context records (two keys, one change), every other row compact and pointing at a context
    expect(rows.filter((r) => r.ctx === null).length).toBe(3);
    expect(rows.filter((r) => r.ctx !== null).every((r) => !r.line.includes('parent_chain'))).toBe(true);
    expect(store.db.prepare('SELECT count(*) FROM event_contexts').pluck().get()).toBe(3);
    const back = parsed(sink.events.query({}));
    expect(back).toEqual(envs);
    expect(back.filter((e) => e.attributes['process.user.id'] === 0).length).toBe(60);
    expect(sink.events.contexts.orphans).toBe(0);
    await sink.close();
  });

  it('a context record the queue refused leaves the compact rows after it whole, never joined with an older context', async () => {
    const sink = new StoreSink(store, { maxQueued: 2 });
    const compactor = new ContextCompactor();
    const before = [rec('300-3', 300, 0, '/a'), rec('300-3', 300, 0, '/b')];
    feed(sink, before, compactor);
    await sink.flush();
    // 300-3 calls setuid; another key's rows fill the queue in this turn, so the new context record is refused
    feed(sink, [rec('900-9', 900, 0, '/c'), rec('900-9', 900, 0, '/d'), rec('300-3', 300, 1000, '/e')], compactor);
    await sink.flush();
    expect(sink.stats()).toMatchObject({ written: 4, dropped: 1 });
    // compact in the file's stream (their new context went to the file), but the store holds uid 0 for the key
    const after = [rec('300-3', 300, 1000, '/f'), rec('300-3', 300, 1000, '/g')];
    feed(sink, after, compactor);
    await sink.flush();
    expect(parsed(sink.events.query({ pid: 300 }))).toEqual([...before, ...after]);
    expect(sink.events.contexts.orphans).toBe(0);
    await sink.close();
  });

  it('a key the sink forgot (past its bound) has its compact rows stored whole', () => {
    const maker = new StoreRows(2);
    const sink = { rows: [] as PlainRow[], write(env: Envelope, line: string, whole?: WholeLine) { this.rows.push(maker.row(env, line, whole)); } };
    const compactor = new ContextCompactor();
    feed(sink, [rec('1-1', 1, 0, '/a'), rec('2-2', 2, 0, '/b'), rec('3-3', 3, 0, '/c')], compactor); // three context records: 1-1 forgotten
    sink.rows.length = 0;
    const late = rec('1-1', 1, 0, '/d');
    feed(sink, [late], compactor); // compact in the file's stream (the compactor still knows 1-1)
    expect(sink.rows[0]!.form).toBe(ROW_WHOLE);
    expect(JSON.parse(sink.rows[0]!.line)).toEqual(late);
  });

  it('a compact row whose context the writer forgot is counted as an orphan and still queried back', () => {
    const events = new EventStore(store, 1); // a writer that remembers one key
    const ctx = events.contexts;
    const maker = new StoreRows();
    const sink = { rows: [] as PlainRow[], write(env: Envelope, line: string, whole?: WholeLine) { this.rows.push(maker.row(env, line, whole)); } };
    feed(sink, [rec('1-1', 1, 0, '/a'), rec('2-2', 2, 0, '/b'), rec('1-1', 1, 0, '/c')]);
    events.appendPlain(sink.rows);
    expect(ctx.orphans).toBe(1);
    const back = parsed(events.query({ pid: 1 }));
    expect(back.map((e) => e.attributes['file.path'])).toEqual(['/a', '/c']);
    expect(back[1]!.attributes['witness.process.key']).toBe('1-1'); // the filterable fields stay; its context is missing
  });

  it('retention deletes contexts no kept row needs, and writes a quiet process\'s context again when it speaks', () => {
    const events = new EventStore(store);
    const maker = new StoreRows();
    const sink = { rows: [] as PlainRow[], write(env: Envelope, line: string, whole?: WholeLine) { this.rows.push(maker.row(env, line, whole)); } };
    const compactor = new ContextCompactor();
    const quiet = [rec('500-5', 500, 0, '/q/1'), rec('500-5', 500, 0, '/q/2')];
    feed(sink, quiet, compactor);
    for (let k = 0; k < 50; k++) feed(sink, [rec(`${k}-7`, 7000 + k, 0, '/s/1'), rec(`${k}-7`, 7000 + k, 0, '/s/2')], compactor);
    events.appendPlain(sink.rows.splice(0));
    expect(store.db.prepare('SELECT count(*) FROM event_contexts').pluck().get()).toBe(51);
    // the oldest 60 rows go (the quiet process's two and 29 short-lived processes' rows): their contexts with them
    expect(events.trimStep({ maxBytes: 1 }, 60)).toEqual({ deletedByAge: 0, deletedBySize: 60 });
    expect(store.db.prepare('SELECT count(*) FROM event_contexts').pluck().get()).toBe(21);
    // the quiet process speaks again: compact in the file's stream, so its context is written again
    const again = rec('500-5', 500, 0, '/q/3');
    feed(sink, [again], compactor);
    expect(sink.rows[0]!.form).toBe(ROW_COMPACT);
    events.appendPlain(sink.rows.splice(0));
    expect(parsed(events.query({ pid: 500 }))).toEqual([again]);
    expect(events.contexts.orphans).toBe(0);
  });

  it('a batch of several INSERT statements\' worth: every row joined with its own context, each context\'s last_id its newest row', () => {
    const events = new EventStore(store);
    const maker = new StoreRows();
    const sink = { rows: [] as PlainRow[], write(env: Envelope, line: string, whole?: WholeLine) { this.rows.push(maker.row(env, line, whole)); } };
    // 2.5 statements of rows (src/store/event-insert.ts) in one batch: 7 processes interleaved,
    // then one alone, so six contexts' newest rows are inside the second statement
    const envs = Array.from({ length: 2 * ROWS_PER_INSERT + 53 }, (_, i) => {
      const p = i < ROWS_PER_INSERT + 50 ? i % 7 : 0;
      return rec(`${p}-9`, 9000 + p, p, `/b/${i}`);
    });
    feed(sink, envs);
    expect(sink.rows.filter((r) => r.form === ROW_COMPACT).length).toBe(envs.length - 7);
    events.appendPlain(sink.rows.splice(0));
    expect(parsed(events.query({}))).toEqual(envs);
    const newest = store.db.prepare('SELECT ctx, max(id) AS id FROM events WHERE ctx IS NOT NULL GROUP BY ctx ORDER BY ctx').all();
    const lastIds = store.db.prepare('SELECT id AS ctx, last_id AS id FROM event_contexts ORDER BY ctx').all();
    expect(lastIds).toEqual(newest);
    expect(newest.length).toBe(7);
  });

  it('a batch whose lines do not split into its rows (a raw newline in one) is refused whole, no row shifted onto another\'s columns', () => {
    const events = new EventStore(store);
    const row = (i: number, line: string): PlainRow => ({ timeMs: 1000 + i, event: 'file.write', agent: 'coder', pid: 100 + i, line, form: ROW_WHOLE, key: null });
    const b = rowBatch([row(0, '{"a":0}'), row(1, '{"a":\n1}'), row(2, '{"a":2}')]);
    expect(() => events.appendBatch(b)).toThrow(/3 rows came with 4 lines/);
    expect(store.db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 0 });
  });
});
