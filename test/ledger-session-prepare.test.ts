import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SessionWriter, verifyPath } from '../src/ledger/index.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { prepareSession, takePreparedSession, discardPreparedSessions, PREPARED_SUFFIX } from '../src/ledger/session-prepare.js';
import { buildLedgerForChildren } from './helpers/ledger-build.js';
import { eventLine, tempDir } from './helpers/ledger-fixtures.js';

/**
 * The resident daemon prepares a state dir's next session ahead (src/ledger/session-prepare.ts)
 * and seals a session with session.json's temporary and the host-ledger row's note fsync'd on the
 * threadpool beside the final checkpoint (src/ledger/session.ts). What must stay true: a prepared
 * dir is no session to `witness verify` or to the next writer, whatever happens to its preparer
 * (kill -9 included); a prepared session seals and verifies as any other; and session.json never
 * exists before its note, its temporary and the final checkpoint are durable.
 */
const roots: string[] = [];
let built = '';
beforeAll(() => { built = buildLedgerForChildren(); }, 120_000);
afterEach(() => discardPreparedSessions());
afterAll(() => { for (const r of [...roots, built]) if (r) fs.rmSync(r, { recursive: true, force: true }); });
const state = (): string => { const d = tempDir('prepare'); roots.push(d); return d; };

async function session(stateDir: string, prepared: boolean, events = 3): Promise<SessionWriter> {
  const p = prepared ? takePreparedSession(stateDir) : null;
  if (prepared) expect(p).not.toBeNull();
  const w = await SessionWriter.create({ stateDir, command: ['/bin/true'], checkpointEverySeconds: 0, flushIntervalMs: 0, ...(p ? { prepared: p } : {}) });
  for (let i = 0; i < events; i++) w.append(eventLine(i));
  return w;
}
const close = (w: SessionWriter): Promise<void> => w.close({ exitCode: 0, counters: {}, drops: {} });

describe('prepared sessions', () => {
  it('a prepared dir is no session to verify; the session opened in it seals and verifies, its files renamed into place', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    await close(await session(s, false)); // a host ledger to verify
    prepareSession(s);
    const [dir] = fs.readdirSync(path.join(s, 'sessions')).filter((n) => !fs.existsSync(path.join(s, 'sessions', n, 'session.json')));
    const prepDir = path.join(s, 'sessions', dir!);
    expect(fs.readdirSync(prepDir).sort()).toEqual(['checkpoints.ndjson.prepared', 'events.ndjson.prepared',
      `session.json.tmp-${process.pid}`, `session.open.json.tmp-${process.pid}`, 'writer.lock']);
    const v = await verifyPath(s);
    expect(v.failure).toBeUndefined();
    expect(v.verified).toBe(true);
    expect(v.open ?? []).toEqual([]); // not even an open session
    // the next writer of the state dir (sealCrashed) passes it by
    await close(await session(s, false));
    expect(fs.existsSync(path.join(prepDir, 'session.json'))).toBe(false);
    const w = await session(s, true);
    expect(w.dir).toBe(prepDir);
    await close(w);
    expect(fs.readdirSync(prepDir).sort()).toEqual(['checkpoints.ndjson', 'events.ndjson', 'session.json', 'writer.lock']);
    expect(fs.readdirSync(path.join(s, 'pending-rows'))).toEqual([]);
    const after = await verifyPath(s);
    expect(after.failure).toBeUndefined();
    expect(after.sessions).toBe(3);
    expect((await verifyPath(prepDir)).verified).toBe(true);
  });

  it('a preparer killed with kill -9 leaves a state dir that verifies; the next writer drops its empty note', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    await close(await session(s, false));
    const mod = pathToFileURL(path.join(built, 'ledger', 'session-prepare.js')).href;
    const child = spawn(process.execPath, ['--input-type=module', '-e',
      `const m = await import(process.argv[1]); m.prepareSession(process.argv[2]); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`, mod, s],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => child.stdout.on('data', (d) => { if (String(d).includes('ready')) r(); }));
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    const notes = fs.readdirSync(path.join(s, 'pending-rows'));
    expect(notes.length).toBe(1);
    expect(fs.statSync(path.join(s, 'pending-rows', notes[0]!)).size).toBe(0);
    const v = await verifyPath(s);
    expect(v.failure).toBeUndefined();
    expect(v.verified).toBe(true);
    await close(await session(s, false));
    expect(fs.readdirSync(path.join(s, 'pending-rows'))).toEqual([]);
    const after = await verifyPath(s);
    expect(after.failure).toBeUndefined();
    expect(after.sessions).toBe(2);
  });

  it('an open killed (kill -9) between placing its files leaves a session the next writer seals', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    // killed at the last rename: session.open.json and events.ndjson are in place, checkpoints.ndjson is not
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const fs = (await import('node:fs')).default;
      const [prepUrl, sessUrl, stateDir] = process.argv.slice(1);
      const prep = await import(prepUrl); const { SessionWriter } = await import(sessUrl);
      prep.prepareSession(stateDir);
      const p = prep.takePreparedSession(stateDir);
      process.stdout.write(p.dir + '\\n');
      const rename = fs.renameSync;
      fs.renameSync = (from, to) => { if (String(from).endsWith('checkpoints.ndjson${PREPARED_SUFFIX}')) process.kill(process.pid, 'SIGKILL'); return rename(from, to); };
      await SessionWriter.create({ stateDir, command: ['/bin/true'], prepared: p });`,
    pathToFileURL(path.join(built, 'ledger', 'session-prepare.js')).href, pathToFileURL(path.join(built, 'ledger', 'session.js')).href, s],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += String(d); });
    const signal = await new Promise((r) => child.on('exit', (_c, sig) => r(sig)));
    expect(signal).toBe('SIGKILL');
    const dir = out.trim();
    expect(fs.existsSync(path.join(dir, 'session.open.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'checkpoints.ndjson'))).toBe(false);
    await close(await session(s, false)); // seals what the killed writer left open
    expect(fs.existsSync(path.join(dir, 'session.json'))).toBe(true);
    const v = await verifyPath(s);
    expect(v.failure).toBeUndefined();
    expect(v.sessions).toBe(2);
  });
});

describe('the seal: session.json only after its note, its temporary and the final checkpoint are durable', () => {
  it('every write to those files has had an fsync return when session.json is renamed into place', async () => {
    for (const prepared of [false, true]) {
      const s = state();
      loadOrCreateHostKey(s);
      if (prepared) prepareSession(s);
      const w = await session(s, prepared, 50);
      const real = { writeSync: fs.writeSync, write: fs.write, fsync: fs.fsync, fsyncSync: fs.fsyncSync, renameSync: fs.renameSync };
      const name = (fd: number): string => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { return `fd${fd}`; } };
      const gen = new Map<string, number>(); // writes per file
      const durable = new Map<string, number>(); // writes covered by a returned fsync
      const wrote = (fd: number): void => { const f = name(fd); gen.set(f, (gen.get(f) ?? 0) + 1); };
      const checked: string[] = [];
      try {
        fs.writeSync = ((fd: number, ...a: unknown[]) => { wrote(fd); return (real.writeSync as (...x: unknown[]) => number)(fd, ...a); }) as typeof fs.writeSync;
        fs.write = ((fd: number, ...a: unknown[]) => { wrote(fd); return (real.write as (...x: unknown[]) => void)(fd, ...a); }) as typeof fs.write;
        fs.fsyncSync = ((fd: number) => { const f = name(fd); const g = gen.get(f) ?? 0; real.fsyncSync(fd); durable.set(f, Math.max(durable.get(f) ?? 0, g)); }) as typeof fs.fsyncSync;
        fs.fsync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
          const f = name(fd); const g = gen.get(f) ?? 0;
          real.fsync(fd, (e) => { if (!e) durable.set(f, Math.max(durable.get(f) ?? 0, g)); cb(e); });
        }) as typeof fs.fsync;
        fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
          if (path.basename(String(to)) === 'session.json') {
            const note = fs.readdirSync(path.join(s, 'pending-rows')).map((n) => path.join(s, 'pending-rows', n));
            expect(note.length).toBe(1);
            expect(JSON.parse(fs.readFileSync(note[0]!, 'utf8')).row.session_id).toBe(w.sessionId);
            for (const f of [String(from), note[0]!, path.join(w.dir, 'checkpoints.ndjson'), path.join(w.dir, 'events.ndjson')]) {
              expect(gen.get(f) ?? 0, f).toBeGreaterThan(0);
              expect(durable.get(f) ?? 0, `${f} durable before session.json`).toBe(gen.get(f));
              checked.push(path.basename(f));
            }
          }
          return real.renameSync(from, to);
        }) as typeof fs.renameSync;
        await close(w);
      } finally {
        Object.assign(fs, real);
      }
      expect(checked.length).toBe(4);
      expect((await verifyPath(s)).verified).toBe(true);
    }
  });
});
