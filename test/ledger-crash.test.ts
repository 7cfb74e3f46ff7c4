import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionWriter, verifyPath, writeKeyPair, loadPublicKey } from '../src/ledger/index.js';
import { acquireFileLock } from '../src/ledger/state.js';
import { buildLedgerForChildren } from './helpers/ledger-build.js';
import { eventLine, readLines, tempDir } from './helpers/ledger-fixtures.js';

let built = '';
const roots: string[] = [];
beforeAll(() => { built = buildLedgerForChildren(); }, 120_000);
afterAll(() => {
  for (const r of [...roots, built]) if (r) fs.rmSync(r, { recursive: true, force: true });
});

/** A writer that appends synthetic events as fast as it can until it is killed. */
const CHILD = `
const [modUrl, dir, stateDir, keyPath] = process.argv.slice(1);
const { SessionWriter } = await import(modUrl);
const w = await SessionWriter.create({ dir, stateDir, signKeyPath: keyPath, command: ['agent'],
  checkpointEveryEvents: 150, checkpointEverySeconds: 0.05, flushIntervalMs: 2 });
process.stdout.write('ready\\n');
let i = 0;
for (;;) {
  for (let j = 0; j < 50; j++, i++) w.append(JSON.stringify({ time: '2026-11-22T00:00:00.000000000Z', event: 'file.write', attributes: { i, pad: 'x'.repeat(i % 300) } }));
  await new Promise((r) => setImmediate(r));
}
`;

function runAndKill(dir: string, stateDir: string, keyPath: string, afterMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const modUrl = pathToFileURL(path.join(built, 'ledger', 'index.js')).href;
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, modUrl, dir, stateDir, keyPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += String(d); });
    child.stdout.once('data', () => setTimeout(() => child.kill('SIGKILL'), afterMs));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`writer exited on its own (code ${code}): ${err}`));
    });
  });
}

describe('crash safety', () => {
  it('survives kill -9 at random points (24 iterations), with simulated torn writes, and verifies clean', async () => {
    const stateDir = tempDir('crash');
    roots.push(stateDir);
    const keys = writeKeyPair(path.join(stateDir, 'signer'));
    const dir = path.join(stateDir, 'session-under-test');
    const tornSimulated: number[] = [];
    for (let iter = 0; iter < 24; iter++) {
      await runAndKill(dir, stateDir, keys.privatePath, crypto.randomInt(1, 250));
      // Every third crash, also simulate power loss tearing the last record mid-line.
      const events = path.join(dir, 'events.ndjson');
      if (iter % 3 === 1 && fs.existsSync(events)) {
        const partial = Buffer.from('{"seq":999999,"prev_chain":"00ab');
        fs.appendFileSync(events, partial);
        tornSimulated.push(partial.length);
      }
    }
    const w = await SessionWriter.create({ dir, stateDir, signKeyPath: keys.privatePath, command: ['agent'], checkpointEverySeconds: 0 });
    for (let i = 0; i < 10; i++) w.append(eventLine(i));
    await w.close({ exitCode: 0, counters: {}, drops: {} });

    const report = await verifyPath(dir, { pinned: loadPublicKey(keys.publicPath) });
    expect(report.failure).toBeUndefined();
    expect(report.verified).toBe(true);

    // One sensor.restart per crash (the first run has no prior state to resume only if it died before writing).
    const records = readLines(path.join(dir, 'events.ndjson')).map((l) => JSON.parse(l).event);
    const restarts = records.filter((e) => e.event === 'sensor.restart');
    expect(restarts.length).toBeGreaterThanOrEqual(23);
    expect(restarts.length).toBeLessThanOrEqual(24);
    // Each simulated torn tail shows up as lost bytes in a restart record; never a silent gap.
    const lostReported = restarts.map((r) => r.attributes['witness.ledger.lost_bytes'] as number).filter((n) => n > 0);
    expect(lostReported.length).toBeGreaterThanOrEqual(tornSimulated.length);
    for (const r of restarts.filter((x) => x.attributes['witness.ledger.lost_bytes'] > 0)) {
      const lostFile = path.join(dir, r.attributes['witness.ledger.lost_file']);
      expect(crypto.createHash('sha256').update(fs.readFileSync(lostFile)).digest('hex')).toBe(r.attributes['witness.ledger.lost_sha256']);
    }
    const counts = restarts.map((r) => r.attributes['witness.ledger.restart_count']);
    expect(counts).toEqual(counts.map((_, i) => i + 1));
    // The global ledger got exactly one row for the session, and the state dir verifies.
    const g = await verifyPath(stateDir, { pinned: loadPublicKey(keys.publicPath) });
    expect(g.failure).toBeUndefined();
    expect(g.sessions).toBe(1);
  }, 120_000);

  it('refuses to extend a log whose sealed history was truncated', async () => {
    const stateDir = tempDir('crash2');
    roots.push(stateDir);
    const key = crypto.generateKeyPairSync('ed25519').privateKey;
    const dir = path.join(stateDir, 's');
    const w = await SessionWriter.create({ dir, stateDir, signKey: key, command: ['x'], checkpointEveryEvents: 10, checkpointEverySeconds: 0 });
    for (let i = 0; i < 30; i++) w.append(eventLine(i));
    w.checkpoint();
    // Simulate a crash (no close: the kernel drops the dead writer's flock) followed by someone cutting sealed records.
    (w as unknown as { unlock(): void }).unlock();
    const events = path.join(dir, 'events.ndjson');
    fs.truncateSync(events, fs.statSync(events).size - 500);
    await expect(SessionWriter.create({ dir, stateDir, signKey: key, command: ['x'] })).rejects.toThrow(/sealed history is missing/);
  });

  it('parallel full verification (worker threads, compiled build) reports the earliest failure', async () => {
    const stateDir = tempDir('parallel');
    roots.push(stateDir);
    const key = crypto.generateKeyPairSync('ed25519').privateKey;
    const dir = path.join(stateDir, 's');
    const w = await SessionWriter.create({ dir, stateDir, signKey: key, command: ['x'], checkpointEveryEvents: 500, checkpointEverySeconds: 0 });
    for (let i = 0; i < 6000; i++) w.append(eventLine(i));
    await w.close({ exitCode: 0, counters: {}, drops: {} });
    const runVerify = async (): Promise<{ verified: boolean; failure?: { seq: number; reason: string } }> => {
      const modUrl = pathToFileURL(path.join(built, 'ledger', 'index.js')).href;
      const code = `const { verifyPath } = await import(process.argv[1]); const r = await verifyPath(process.argv[2], { parallelMinBytes: 0 }); process.stdout.write(JSON.stringify(r));`;
      const out = await new Promise<string>((resolve, reject) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', code, modUrl, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        let s = '';
        c.stdout.on('data', (d) => { s += String(d); });
        c.on('exit', (rc) => (rc === 0 ? resolve(s) : reject(new Error(`verify child exited ${rc}`))));
      });
      return JSON.parse(out);
    };
    expect(fs.existsSync(path.join(built, 'ledger', 'verify-worker.js'))).toBe(true);
    expect((await runVerify()).verified).toBe(true);
    // Damage two far-apart segments; the workers may finish in any order, the report names the first.
    const lines = readLines(path.join(dir, 'events.ndjson'));
    lines[4500] = lines[4500]!.replace('file-', 'FILE-');
    lines[1200] = lines[1200]!.replace('file-', 'FILE-');
    fs.writeFileSync(path.join(dir, 'events.ndjson'), `${lines.join('\n')}\n`);
    const bad = await runVerify();
    expect(bad.verified).toBe(false);
    // v2 records hold no per-record hashes: the failure is the first record of the damaged segment
    expect(bad.failure!.seq).toBe(1000);
    expect(bad.failure!.reason).toMatch(/an event among records 1000\.\.1499 was modified/);
  }, 60_000);

  it('a closer killed between session.json and its host-ledger row is adopted by the next appender', async () => {
    const stateDir = tempDir('orphan');
    roots.push(stateDir);
    const keys = writeKeyPair(path.join(stateDir, 'signer'));
    const close = async (n: number): Promise<string> => {
      const w = await SessionWriter.create({ stateDir, signKeyPath: keys.privatePath, command: [`s${n}`], checkpointEverySeconds: 0 });
      w.append(eventLine(n));
      await w.close({ exitCode: 0, counters: {}, drops: {} });
      return w.dir;
    };
    await close(1);
    // Hold the host-ledger lock so the child stalls right before appending its row, then kill it.
    const releaseLock = acquireFileLock(path.join(stateDir, 'ledger.lock'));
    const modUrl = pathToFileURL(path.join(built, 'ledger', 'index.js')).href;
    const code = `const { SessionWriter } = await import(process.argv[1]);
      const w = await SessionWriter.create({ stateDir: process.argv[2], signKeyPath: process.argv[3], command: ['orphan'], checkpointEverySeconds: 0 });
      w.append('{"e":1}'); process.stdout.write(w.dir + '\\n'); await w.close({ exitCode: 0, counters: {}, drops: {} });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, modUrl, stateDir, keys.privatePath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const orphanDir = (await new Promise<string>((r) => child.stdout.once('data', (d) => r(String(d))))).trim();
    while (!fs.existsSync(path.join(orphanDir, 'session.json'))) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    releaseLock();
    const pub = loadPublicKey(keys.publicPath);
    const before = await verifyPath(stateDir, { pinned: pub });
    expect(before.failure?.reason).toMatch(/not in the host ledger/);

    // The next close adopts the orphan's noted row.
    await close(2);
    const after = await verifyPath(stateDir, { pinned: pub });
    expect(after.failure).toBeUndefined();
    expect(after.sessions).toBe(3);

    // A note left behind by a closer that died *after* appending is not appended twice.
    const rows = readLines(path.join(stateDir, 'ledger.ndjson'));
    const lastRow = JSON.parse(rows[rows.length - 1]!).event;
    const deadPid = spawnSync('true').pid;
    fs.writeFileSync(path.join(stateDir, 'pending-rows', 'stale.json'), JSON.stringify({ pid: deadPid, row: lastRow }));
    await close(3);
    const final = await verifyPath(stateDir, { pinned: pub });
    expect(final.failure).toBeUndefined();
    expect(final.sessions).toBe(4);
    expect(fs.readdirSync(path.join(stateDir, 'pending-rows'))).toEqual([]);
  }, 60_000);
});
