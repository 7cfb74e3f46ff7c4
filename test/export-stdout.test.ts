import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { StdoutSink } from '../src/export/stdout-sink.js';

const env: Envelope = { time: '2026-11-22T03:00:00.000000000Z', event: 'file.write', attributes: { 'file.path': 'x'.repeat(1000) } };

/** Reads whatever the pipe holds right now (non-blocking). */
function drainPipe(fd: number, into: Buffer[]): number {
  const buf = Buffer.alloc(1 << 16);
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return total;
      throw err;
    }
    if (n === 0) return total;
    into.push(Buffer.from(buf.subarray(0, n)));
    total += n;
  }
}

describe('stdout sink backpressure', () => {
  it('a regular file is not a stalled reader: a burst far past the queue bound in one turn loses nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-stdout-file-'));
    const file = join(dir, 'out.ndjson');
    const fd = openSync(file, 'w');
    const sink = new StdoutSink({ fd, maxQueuedBytes: 64 << 10 });
    const line = JSON.stringify(env);
    const total = 20_000; // ~20 MB synchronously, 300x the bound: the old sink dropped all but the first 64 KiB
    for (let i = 0; i < total; i++) sink.write(env, line);
    await sink.close();
    closeSync(fd);
    expect(sink.stats()).toMatchObject({ written: total, dropped: 0 });
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n').length - 1).toBe(total);
    expect(text.startsWith(`${line}\n`)).toBe(true);
  });

  it('a reader that stops reading costs counted drops, never a blocked event loop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-stdout-'));
    const fifo = join(dir, 'out');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    const sink = new StdoutSink({ fd: writer, maxQueuedBytes: 256 << 10 });
    const line = JSON.stringify(env);
    const total = 5000; // ~5 MB against a 64 KiB pipe and a 256 KiB queue
    let timerFired = false;
    const timer = setTimeout(() => { timerFired = true; }, 1);
    for (let i = 0; i < total; i++) {
      sink.write(env, line);
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    // The loop above yielded to the event loop while the pipe was full: had a
    // write blocked, we would never get here.
    await new Promise((r) => setTimeout(r, 20));
    expect(timerFired).toBe(true);
    clearTimeout(timer);
    const mid = sink.stats();
    expect(mid.dropped).toBeGreaterThan(0);
    expect(mid.written + mid.dropped + mid.queued).toBe(total);

    // The reader wakes up: everything not dropped arrives, as whole lines.
    const chunks: Buffer[] = [];
    for (let i = 0; i < 500 && sink.stats().queued > 0; i++) {
      drainPipe(reader, chunks);
      await new Promise((r) => setTimeout(r, 5));
    }
    drainPipe(reader, chunks);
    const end = sink.stats();
    expect(end.queued).toBe(0);
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBe(end.written);
    expect(lines.every((l) => l === line)).toBe(true);
    expect(end.written + end.dropped).toBe(total);
    await sink.close();
    closeSync(reader);
  });

  it('writes a regular file directly and completely', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-stdout-'));
    const path = join(dir, 'out.ndjson');
    const fd = openSync(path, 'w');
    const sink = new StdoutSink({ fd });
    for (let i = 0; i < 100; i++) sink.write(env, JSON.stringify(env));
    await sink.close();
    closeSync(fd);
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean).length).toBe(100);
    expect(sink.stats()).toMatchObject({ written: 100, dropped: 0 });
  });
});
