import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteHeld } from '../src/ledger/global.js';
import { acquireFileLock, holdFileLock, writerState } from '../src/ledger/state.js';
import { buildLedgerForChildren } from './helpers/ledger-build.js';
import { tempDir } from './helpers/ledger-fixtures.js';

/**
 * The ledger's locks are flock(2) locks (native/flock.cc) on kept lock files.
 * Attacks on the old O_EXCL + pid scheme: a writer killed while holding a
 * lock (its lock must not outlive it), a lock file torn empty by a kill
 * between create and pid write (was taken over only after 2 s), a lock file
 * naming a live but unrelated pid (pid reuse: was "held" until the timeout).
 * The children run the copy of src/ledger compiled under node_modules/.cache,
 * so this also proves the addon resolves from there.
 */
let built = '';
const roots: string[] = [];
beforeAll(() => { built = buildLedgerForChildren(); }, 120_000);
afterAll(() => { for (const r of [...roots, built]) if (r) fs.rmSync(r, { recursive: true, force: true }); });

/** A child that takes `lockPath` (host-ledger style or writer style), says so, and waits to be killed. */
function holder(kind: 'acquire' | 'hold', lockPath: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const modUrl = pathToFileURL(path.join(built, 'ledger', 'state.js')).href;
  const code = `const m = await import(process.argv[1]);
    (process.argv[2] === 'acquire' ? m.acquireFileLock : m.holdFileLock)(process.argv[3]);
    process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, modUrl, kind, lockPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += String(d); });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ pid: child.pid!, kill: async () => { child.kill('SIGKILL'); expect(await exited).toBe('SIGKILL'); } }));
    child.on('exit', (c) => reject(new Error(`lock holder exited (${c}): ${err}`)));
  });
}

describe('ledger locks are flock locks: a killed holder leaves nothing stale', () => {
  it('kill -9 while holding the host-ledger lock: the next taker gets it at once, the file stays', async () => {
    const dir = tempDir('lock-kill');
    roots.push(dir);
    const lock = path.join(dir, 'ledger.lock');
    const h = await holder('acquire', lock);
    // held: a second taker waits, and the message names the holder
    expect(() => acquireFileLock(lock, 100)).toThrow(new RegExp(`lock held by pid ${h.pid} for over 100 ms`));
    await h.kill();
    const t0 = Date.now();
    const release = acquireFileLock(lock, 100);
    expect(Date.now() - t0).toBeLessThan(100);
    release();
    // released, never unlinked (an unlink races with a waiter that has the file open)
    expect(fs.existsSync(lock)).toBe(true);
  }, 60_000);

  it('a lock file torn empty, or naming a live unrelated pid, does not hold anything', () => {
    const dir = tempDir('lock-torn');
    roots.push(dir);
    const lock = path.join(dir, 'ledger.lock');
    fs.writeFileSync(lock, ''); // what a kill between create and pid write left behind
    let t0 = Date.now();
    acquireFileLock(lock, 100)();
    expect(Date.now() - t0).toBeLessThan(100);
    fs.writeFileSync(lock, '1'); // pid 1 is alive: the old scheme waited out the whole timeout
    t0 = Date.now();
    acquireFileLock(lock, 100)();
    expect(Date.now() - t0).toBeLessThan(100);
    expect(writerState(dir).alive).toBe(false);
  });

  it('writer.lock: alive exactly while its holder lives, whatever pid the file names', async () => {
    const dir = tempDir('lock-writer');
    roots.push(dir);
    const lock = path.join(dir, 'writer.lock');
    expect(writerState(dir)).toEqual({ pid: null, alive: false });
    const h = await holder('hold', lock);
    expect(writerState(dir)).toEqual({ pid: h.pid, alive: true });
    expect(() => holdFileLock(lock)).toThrow(new RegExp(`another writer by pid ${h.pid} holds this log`));
    await h.kill();
    // the pid stays in the file for the record; the lock died with the process
    expect(writerState(dir)).toEqual({ pid: h.pid, alive: false });
    // our own pid (alive) in the file, nobody holding the lock: not alive
    fs.writeFileSync(lock, String(process.pid));
    expect(writerState(dir).alive).toBe(false);
    const release = holdFileLock(lock);
    expect(writerState(dir)).toEqual({ pid: process.pid, alive: true });
    // one writer per log, within one process too
    expect(() => holdFileLock(lock)).toThrow(/another writer by pid \d+ holds this log/);
    release();
    expect(writerState(dir).alive).toBe(false);
    expect(fs.existsSync(lock)).toBe(true);
  }, 60_000);

  it('a pending host-ledger row is held by its live noter only: kill -9 frees it, a live pid in an unheld note does not hold it', async () => {
    const stateDir = tempDir('lock-note');
    roots.push(stateDir);
    const modUrl = pathToFileURL(path.join(built, 'ledger', 'global.js')).href;
    const row = { kind: 'session', session_id: 'held', dir: 'sessions/held' };
    const code = `const m = await import(process.argv[1]);
      process.stdout.write(m.notePendingRow(process.argv[2], JSON.parse(process.argv[3])) + '\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, modUrl, stateDir, JSON.stringify(row)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.on('exit', r));
    const note = (await new Promise<string>((r) => child.stdout.once('data', (d) => r(String(d))))).trim();
    expect(noteHeld(note)).toBe(true);
    child.kill('SIGKILL');
    await exited;
    expect(noteHeld(note)).toBe(false); // adoptable at once: its writer is gone
    fs.writeFileSync(note, JSON.stringify({ pid: process.pid, row })); // a live pid, nobody holding it
    expect(noteHeld(note)).toBe(false);
  }, 60_000);

  it('a lock file replaced by a symlink is refused, never followed', () => {
    const dir = tempDir('lock-link');
    roots.push(dir);
    const target = path.join(dir, 'elsewhere');
    fs.writeFileSync(target, 'x');
    fs.symlinkSync(target, path.join(dir, 'ledger.lock'));
    expect(() => acquireFileLock(path.join(dir, 'ledger.lock'), 100)).toThrow(/cannot open lock file/);
    expect(fs.readFileSync(target, 'utf8')).toBe('x');
  });
});
