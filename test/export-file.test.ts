import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { RotatingFileSink } from '../src/export/file-sink.js';

function line(i: number): { env: Envelope; line: string } {
  const env: Envelope = { time: '2026-11-22T03:00:00.000000000Z', event: 'process.exec', attributes: { 'process.pid': i, 'witness.pad': 'p'.repeat(50) } };
  return { env, line: JSON.stringify(env) };
}

function readAll(files: string[]): number[] {
  return files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Envelope).attributes['process.pid'] as number));
}

describe('rotating NDJSON file sink', () => {
  it('cuts files by size at unique, never-reused paths and loses no line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-file-'));
    const sink = new RotatingFileSink({ dir, maxBytes: 2000, maxAgeSeconds: 0 });
    for (let i = 0; i < 300; i++) {
      const { env, line: l } = line(i);
      sink.write(env, l);
      if (i % 25 === 24) await sink.flush(); // several batches, so rotation happens between them
    }
    await sink.close();
    const files = sink.files();
    expect(files.length).toBeGreaterThan(3);
    expect(new Set(files).size).toBe(files.length);
    expect(readdirSync(dir).sort()).toEqual(files.map((f) => f.slice(dir.length + 1)).sort());
    expect(readAll(files)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(sink.stats()).toMatchObject({ written: 300, dropped: 0, queued: 0 });
  });

  it('cuts by age, and a restart in the same millisecond gets a new path (O_EXCL)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-file-'));
    let now = Date.UTC(2026, 10, 22, 3, 0, 0);
    const a = new RotatingFileSink({ dir, maxAgeSeconds: 60, now: () => now });
    a.write(line(1).env, line(1).line);
    await a.flush();
    now += 61_000;
    a.rotateIfDue();
    a.write(line(2).env, line(2).line);
    await a.close();
    expect(a.files().length).toBe(2);
    // a second writer started at the same instant must not reuse (or truncate) either path
    now -= 61_000;
    const b = new RotatingFileSink({ dir, maxAgeSeconds: 60, now: () => now });
    b.write(line(3).env, line(3).line);
    await b.close();
    expect(a.files()).not.toContain(b.files()[0]);
    expect(readAll([...a.files(), ...b.files()]).sort()).toEqual([1, 2, 3]);
  });

  it('keeps at most `keep` files and leaves foreign files alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-file-'));
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const sink = new RotatingFileSink({ dir, maxBytes: 200, maxAgeSeconds: 0, keep: 3 });
    for (let i = 0; i < 20; i++) {
      sink.write(line(i).env, line(i).line);
      await sink.flush();
    }
    await sink.close();
    const left = readdirSync(dir).filter((f) => f.endsWith('.ndjson'));
    expect(left.length).toBe(3);
    expect(readdirSync(dir)).toContain('notes.txt');
    expect(left.sort()).toEqual(sink.files().slice(-3).map((f) => f.slice(dir.length + 1)).sort());
  });

  it('a full queue drops and counts instead of growing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-file-'));
    const sink = new RotatingFileSink({ dir, maxQueuedLines: 10 });
    for (let i = 0; i < 25; i++) sink.write(line(i).env, line(i).line); // same tick: nothing drained yet
    expect(sink.stats()).toMatchObject({ dropped: 15, queued: 10 });
    await sink.close();
    expect(sink.stats()).toMatchObject({ written: 10, dropped: 15, queued: 0 });
    expect(readAll(sink.files())).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});
