import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonWriter, SessionWriter, verifyPath, type VerifyReport } from '../src/ledger/index.js';
import { rotateHostKey } from '../src/ledger/rotate.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { eventLine, readLines, tempDir, writeLines } from './helpers/ledger-fixtures.js';

/**
 * Rollback and truncation as the agent (or whoever holds root after it)
 * would try them on a state dir: each must be MISMATCH with its reason.
 * Sessions sign with the state dir's own host key, as `witness run` does.
 */
const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

function state(tag: string): { stateDir: string; pub: crypto.KeyObject } {
  const stateDir = tempDir(tag);
  roots.push(stateDir);
  return { stateDir, pub: crypto.createPublicKey(loadOrCreateHostKey(stateDir)) };
}

async function runSession(stateDir: string, events = 5): Promise<string> {
  const w = await SessionWriter.create({ stateDir, command: ['agent'], checkpointEveryEvents: 4, checkpointEverySeconds: 0 });
  for (let i = 0; i < events; i++) w.append(eventLine(i));
  await w.close({ exitCode: 0, counters: {}, drops: {} });
  return w.dir;
}

function expectMismatch(r: VerifyReport, reason: RegExp): void {
  expect(r.verified, 'must not verify').toBe(false);
  expect(r.failure!.reason).toMatch(reason);
}

const cutLastLine = (file: string): void => writeLines(file, readLines(file).slice(0, -1));

describe('rollback and truncation are findings', () => {
  it('the rollback from issue 10: newest session deleted, both host-ledger files cut back one row', async () => {
    const { stateDir, pub } = state('rb-issue');
    await runSession(stateDir);
    const newest = await runSession(stateDir);
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
    fs.rmSync(newest, { recursive: true });
    cutLastLine(path.join(stateDir, 'ledger.ndjson'));
    cutLastLine(path.join(stateDir, 'ledger.checkpoints.ndjson'));
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /ledger\.head holds host-ledger checkpoint 1 .* ends at checkpoint 0 .*rolled back or truncated/);
    expectMismatch(await verifyPath(stateDir), /rolled back or truncated/);
  });

  it('a host ledger (and ledger.head) cut back behind the checkpoint a running daemon epoch recorded when it opened', async () => {
    const { stateDir, pub } = state('rb-anchor');
    await runSession(stateDir);
    const second = await runSession(stateDir);
    const d = await DaemonWriter.create({ stateDir, segmentMaxSeconds: 0, checkpointEveryEvents: 5, checkpointEverySeconds: 0 });
    for (let i = 0; i < 12; i++) d.append(eventLine(i));
    d.checkpoint('window');
    const live = await verifyPath(stateDir, { pinned: pub });
    expect(live.failure).toBeUndefined();
    expect(live.open).toHaveLength(1); // the live epoch: open, not a finding
    // Everything about session 2 removed together, ledger.head rewound with it.
    fs.rmSync(second, { recursive: true });
    for (const f of ['ledger.ndjson', 'ledger.checkpoints.ndjson']) cutLastLine(path.join(stateDir, f));
    writeLines(path.join(stateDir, 'ledger.head'), readLines(path.join(stateDir, 'ledger.checkpoints.ndjson')));
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /daemon epoch .* segment 0 opened when the host ledger had checkpoint 1 \(tree size 2\), but the host ledger ends at checkpoint 0 \(tree size 1\): rolled back or truncated/);
    await d.close();
  });

  it('a deleted session', async () => {
    const { stateDir, pub } = state('rb-session');
    const dir = await runSession(stateDir);
    await runSession(stateDir);
    fs.rmSync(dir, { recursive: true });
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /session .* directory .* is missing \(session deleted\)/);
  });

  it('a truncated host ledger (rows and checkpoints cut, ledger.head kept)', async () => {
    const { stateDir, pub } = state('rb-trunc');
    for (let i = 0; i < 3; i++) await runSession(stateDir);
    const ledger = path.join(stateDir, 'ledger.ndjson');
    fs.truncateSync(ledger, fs.statSync(ledger).size - 40);
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /truncated|record missing/);
    writeLines(ledger, readLines(ledger).slice(0, 2));
    cutLastLine(path.join(stateDir, 'ledger.checkpoints.ndjson'));
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /ledger\.head holds host-ledger checkpoint 2/);
  });

  it('a removed sealed daemon segment (middle, last, and the whole epoch)', async () => {
    const { stateDir, pub } = state('rb-segment');
    const key = loadOrCreateHostKey(stateDir);
    const d = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 8_000, segmentMaxSeconds: 0, checkpointEveryEvents: 20, checkpointEverySeconds: 0 });
    for (let i = 0; i < 200; i++) d.append(eventLine(i));
    await d.close();
    expect(d.currentSegment).toBeGreaterThanOrEqual(3);
    expect((await verifyPath(stateDir, { pinned: pub })).failure).toBeUndefined();
    const seg = (n: number, cp: boolean): string => path.join(d.dir, `segment-${String(n).padStart(6, '0')}${cp ? '.checkpoints' : ''}.ndjson`);
    const hide = (n: number): void => { for (const cp of [false, true]) fs.renameSync(seg(n, cp), `${seg(n, cp)}.hidden`); };
    const unhide = (n: number): void => { for (const cp of [false, true]) fs.renameSync(`${seg(n, cp)}.hidden`, seg(n, cp)); };
    hide(1);
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /segment 1 is missing/);
    unhide(1);
    hide(d.currentSegment);
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), new RegExp(`segment ${d.currentSegment} recorded in the host ledger is missing \\(sealed segment removed\\)`));
    unhide(d.currentSegment);
    fs.renameSync(d.dir, `${d.dir}.hidden`);
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /daemon epoch .* directory .* is missing/);
  });

  it('a re-keyed state dir: unpinned, the change of signer is a MISMATCH; a signed rotation is not', async () => {
    const { stateDir, pub } = state('rb-rekey');
    await runSession(stateDir);
    // Someone replaces the host key and carries on.
    fs.rmSync(path.join(stateDir, 'keys'), { recursive: true });
    await runSession(stateDir);
    expectMismatch(await verifyPath(stateDir), /signer changed from key \w+ to \w+ at checkpoint 1 without a key_rotation record signed by the old key/);
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /signer changed from key \w+ to \w+ at checkpoint 1 without a key_rotation record/);

    // The honest way: a rotation signed by the old key.
    const ok = state('rb-rotate');
    await runSession(ok.stateDir);
    rotateHostKey(ok.stateDir);
    await runSession(ok.stateDir);
    const r = await verifyPath(ok.stateDir, { pinned: ok.pub });
    expect(r.failure).toBeUndefined();
    expect(r.signers).toHaveLength(2);
    // A rotation row whose signature is not the old key's does not authorise anything.
    const rows = readLines(path.join(ok.stateDir, 'ledger.ndjson'));
    expect(rows[1]).toContain('"kind":"key_rotation"');
  });

  it('a killed session is unclosed until the next run seals it (with its last checkpoint and the cause)', async () => {
    const { stateDir, pub } = state('rb-unclosed');
    await runSession(stateDir);
    const w = await SessionWriter.create({ stateDir, command: ['killed'], checkpointEveryEvents: 3, checkpointEverySeconds: 0 });
    for (let i = 0; i < 7; i++) w.append(eventLine(i));
    const log = (w as unknown as { log: { flush(): void; sealsQueued: number } }).log;
    log.flush();
    // the count checkpoints fsync on the threadpool (src/ledger/seal-queue.ts): killed once they are on disk
    while (log.sealsQueued > 0) await new Promise((r) => setTimeout(r, 5));
    // kill -9: no close; the kernel drops a killed writer's flock (released here), its lock file names a dead pid.
    (w as unknown as { unlock(): void }).unlock();
    fs.writeFileSync(path.join(w.dir, 'writer.lock'), String(deadPid()));
    expectMismatch(await verifyPath(stateDir, { pinned: pub }), /session .* is unclosed: last checkpoint #\d+ at tree size \d+ .*its writer \(pid \d+\) is gone: killed or crashed before closing/);
    await runSession(stateDir);
    const r = await verifyPath(stateDir, { pinned: pub });
    expect(r.failure).toBeUndefined();
    expect(r.sessions).toBe(3);
    const stop = readLines(path.join(w.dir, 'events.ndjson')).map((l) => JSON.parse(l).event).find((e) => e.event === 'sensor.stop');
    expect(stop.attributes['witness.ledger.sealed_by']).toMatch(/^session\//);
  });
});

/** A pid that is certainly not running: the child has exited and been reaped. */
function deadPid(): number {
  return spawnSync('true').pid!;
}
