import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionWriter, verifyPath } from '../src/ledger/index.js';
import { parseCheckpointLine } from '../src/ledger/checkpoint.js';
import { readContinuity } from '../src/ledger/continuity.js';
import { verifyContinuity } from '../src/ledger/continuity-verify.js';
import { hostNoteSigner } from '../src/ledger/note-key-files.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { buildLedgerForChildren } from './helpers/ledger-build.js';
import { eventLine, tempDir } from './helpers/ledger-fixtures.js';

/**
 * A session's `sensor.start` seal defers its continuity leaf (the agent waits for the seal, not
 * the leaf), and the final seal's leaf goes with the host-ledger row's in one continuity append
 * (src/ledger/continuity.ts, deferContinuity). Their checkpoints are durable before the leaf is
 * appended, so a writer killed while a leaf waits leaves what a writer killed between a seal and
 * its leaf always could: a state dir that verifies, whose next writer seals what is left open, and
 * a continuity log that verifies on its own. Killed at each point here, with kill -9.
 */
const roots: string[] = [];
let built = '';
beforeAll(() => { built = buildLedgerForChildren(); }, 120_000);
afterAll(() => { for (const r of [...roots, built]) if (r) fs.rmSync(r, { recursive: true, force: true }); });
const state = (): string => { const d = tempDir('continuity-defer'); roots.push(d); return d; };

/** The continuity log's leaves as `log:reason`, and its own verdict. */
function continuity(s: string): { leaves: string[]; failures: string[] } {
  const leaves = readContinuity(s).leaves.map((l) => {
    const p = parseCheckpointLine(l);
    if (typeof p === 'string') throw new Error(p);
    return `${p.predicate.log}:${p.predicate.reason}`;
  });
  return { leaves, failures: verifyContinuity(s, { logKey: hostNoteSigner(s), witnesses: [] }).failures };
}

async function session(s: string): Promise<SessionWriter> {
  const w = await SessionWriter.create({ stateDir: s, command: ['/bin/true'], checkpointEverySeconds: 0, flushIntervalMs: 0 });
  for (let i = 0; i < 3; i++) w.append(eventLine(i));
  return w;
}
const close = (w: SessionWriter): Promise<void> => w.close({ exitCode: 0, counters: {}, drops: {} });

/** A child writing a session as the resident daemon does, killed with SIGKILL where `kill` says (its source runs in the child). */
async function killedWriter(s: string, kill: string): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const fs = (await import('node:fs')).default;
    const [sessUrl, stateDir] = process.argv.slice(1);
    const { SessionWriter } = await import(sessUrl);
    const w = await SessionWriter.create({ stateDir, command: ['/bin/true'], checkpointEverySeconds: 0, flushIntervalMs: 0 });
    w.append(JSON.stringify({ event: 'process.exec' }));
    w.checkpoint('time', { leafWithinMs: 60000 });
    ${kill}`,
  pathToFileURL(path.join(built, 'ledger', 'session.js')).href, s], { stdio: ['ignore', 'ignore', 'inherit'] });
  const signal = await new Promise((r) => child.on('exit', (_c, sig) => r(sig)));
  expect(signal).toBe('SIGKILL');
}

describe('deferred continuity leaves', () => {
  it('a session seals its start, final and host-ledger leaves in seal order, in one continuity append at the close', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    await close(await session(s)); // the continuity log exists
    const w = await session(s);
    w.checkpoint('time', { leafWithinMs: 60_000 });
    expect(continuity(s).leaves).toEqual(['session:shutdown', 'global:append']); // the start's leaf waits
    const real = fs.fsyncSync;
    let leafSyncs = 0;
    fs.fsyncSync = ((fd: number) => {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith(path.join('continuity', 'leaves.ndjson'))) leafSyncs++;
      real(fd);
    }) as typeof fs.fsyncSync;
    try { await close(w); } finally { fs.fsyncSync = real; }
    expect(leafSyncs).toBe(1);
    const c = continuity(s);
    expect(c.leaves).toEqual(['session:shutdown', 'global:append', 'session:time', 'session:shutdown', 'global:append']);
    expect(c.failures).toEqual([]);
    expect((await verifyPath(s)).verified).toBe(true);
  });

  it('a deferred leaf is appended on its own once its deadline passes', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    const w = await session(s);
    w.checkpoint('time', { leafWithinMs: 30 });
    expect(continuity(s).leaves).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(continuity(s).leaves).toEqual(['session:time']);
    await close(w);
    expect(continuity(s)).toEqual({ leaves: ['session:time', 'session:shutdown', 'global:append'], failures: [] });
  });

  it('a writer killed (kill -9) while its start leaf waits leaves an unclosed session (as any kill does) that the next writer seals; all verifies', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    await killedWriter(s, `process.kill(process.pid, 'SIGKILL');`);
    // the start seal is durable in the session's own log; its leaf never reached the continuity log
    expect(continuity(s).leaves).toEqual([]);
    // what any killed writer leaves: an unclosed session, nothing else wrong
    expect((await verifyPath(s)).failure?.reason).toMatch(/is unclosed: last checkpoint #0 .* killed or crashed before closing/);
    await close(await session(s)); // seals what the killed writer left open
    const after = await verifyPath(s);
    expect(after.failure).toBeUndefined();
    expect(after.verified).toBe(true);
    expect(after.sessions).toBe(2);
    expect(after.open ?? []).toEqual([]);
    expect(continuity(s).failures).toEqual([]);
  });

  it('a close killed (kill -9) after the final seal, before the host-ledger row and the leaves: the next writer adopts the row, all verifies', async () => {
    const s = state();
    loadOrCreateHostKey(s);
    await killedWriter(s, `
      const open = fs.openSync;
      fs.openSync = (p, ...a) => { if (String(p) === path.join(stateDir, 'ledger.lock')) process.kill(process.pid, 'SIGKILL'); return open(p, ...a); };
      const path = (await import('node:path')).default;
      await w.close({ exitCode: 0, counters: {}, drops: {} });`);
    const sessions = fs.readdirSync(path.join(s, 'sessions'));
    expect(sessions.length).toBe(1);
    expect(fs.existsSync(path.join(s, 'sessions', sessions[0]!, 'session.json'))).toBe(true); // sealed, its row only noted
    expect(fs.readdirSync(path.join(s, 'pending-rows')).length).toBe(1);
    expect(continuity(s).leaves).toEqual([]); // neither its start's nor its final seal's leaf
    await close(await session(s));
    const v = await verifyPath(s);
    expect(v.failure).toBeUndefined();
    expect(v.verified).toBe(true);
    expect(v.sessions).toBe(2);
    expect(fs.readdirSync(path.join(s, 'pending-rows'))).toEqual([]);
    expect(continuity(s).failures).toEqual([]);
  });
});
