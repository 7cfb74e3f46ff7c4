import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionWriter, verifyPath } from '../src/ledger/index.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { eventLine, tempDir } from './helpers/ledger-fixtures.js';

/**
 * A session's close starts two fsyncs early on the threadpool (src/ledger/tail.ts, EarlySync):
 * session.json's directory entry, made under the host-ledger lock while its tail is read, and
 * ledger.head's temporary, written once the host ledger's checkpoint is signed. The synchronous
 * fsync each always had stays where it was, so: no byte of the host-ledger row is written before
 * session.json's entry is durable, and ledger.head is replaced only once the checkpoint it copies
 * and its own temporary are durable. Watched here call by call.
 */
const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

describe('the close\'s early fsyncs keep the order of what they make durable', () => {
  it('the row is written after session.json\'s entry is durable; ledger.head renamed after its checkpoint and temporary are', async () => {
    const s = tempDir('early-sync');
    roots.push(s);
    loadOrCreateHostKey(s);
    const first = await SessionWriter.create({ stateDir: s, command: ['/bin/true'], checkpointEverySeconds: 0, flushIntervalMs: 0 });
    await first.close({ exitCode: 0, counters: {}, drops: {} }); // the host ledger exists: the next append reopens it
    const w = await SessionWriter.create({ stateDir: s, command: ['/bin/true'], checkpointEverySeconds: 0, flushIntervalMs: 0 });
    for (let i = 0; i < 5; i++) w.append(eventLine(i));
    const real = { writeSync: fs.writeSync, fsyncSync: fs.fsyncSync, renameSync: fs.renameSync };
    const name = (fd: number): string => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { return `fd${fd}`; } };
    const gen = new Map<string, number>(); // changes per file (writes; a rename into a directory)
    const durable = new Map<string, number>(); // changes covered by a returned synchronous fsync
    const bump = (f: string): void => { gen.set(f, (gen.get(f) ?? 0) + 1); };
    const isDurable = (f: string): boolean => (gen.get(f) ?? 0) > 0 && durable.get(f) === gen.get(f);
    const seen: string[] = [];
    const ledger = path.join(s, 'ledger.ndjson');
    try {
      fs.writeSync = ((fd: number, ...a: unknown[]) => {
        const f = name(fd);
        if (f === ledger && !seen.includes('row')) {
          expect(isDurable(w.dir), 'session.json\'s entry durable before the row is written').toBe(true);
          seen.push('row');
        }
        bump(f);
        return (real.writeSync as (...x: unknown[]) => number)(fd, ...a);
      }) as typeof fs.writeSync;
      fs.fsyncSync = ((fd: number) => { const f = name(fd); const g = gen.get(f) ?? 0; real.fsyncSync(fd); durable.set(f, Math.max(durable.get(f) ?? 0, g)); }) as typeof fs.fsyncSync;
      fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
        const base = path.basename(String(to));
        if (base === 'ledger.head') {
          for (const f of [String(from), path.join(s, 'ledger.checkpoints.ndjson'), ledger]) expect(isDurable(f), `${f} durable before ledger.head`).toBe(true);
          seen.push('head');
        }
        real.renameSync(from, to);
        if (base === 'session.json') { bump(path.dirname(String(to))); seen.push('session.json'); }
      }) as typeof fs.renameSync;
      await w.close({ exitCode: 0, counters: {}, drops: {} });
    } finally {
      Object.assign(fs, real);
    }
    expect(seen).toEqual(['session.json', 'row', 'head']);
    const v = await verifyPath(s);
    expect(v.failure).toBeUndefined();
    expect(v.sessions).toBe(2);
  });
});
