import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonWriter, verifyPath } from '../src/ledger/index.js';
import { eventLine, newKey, readLines, tempDir, writeSession } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

async function daemonRun(stateDir: string, key: crypto.KeyObject, events: number): Promise<DaemonWriter> {
  const d = await DaemonWriter.create({ stateDir, signKey: key, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEveryEvents: 20, checkpointEverySeconds: 0 });
  for (let i = 0; i < events; i++) d.append(eventLine(i));
  return d;
}

describe('DaemonWriter (segmented daemon stream)', () => {
  it('rotates by size into chained segments that verify alone and from the host ledger', async () => {
    const stateDir = tempDir('daemon');
    roots.push(stateDir);
    const key = newKey();
    const pub = crypto.createPublicKey(key);
    const d = await daemonRun(stateDir, key, 300);
    expect(d.currentSegment).toBeGreaterThanOrEqual(3);
    await d.close({ 'sensor.events': 300 }, {});
    await writeSession({ stateDir, signKey: key }, 4);

    const r = await verifyPath(d.dir, { pinned: pub });
    expect(r.failure).toBeUndefined();
    expect(r.kind).toBe('daemon');
    expect(r.segments).toBe(d.currentSegment + 1);
    // 300 events + one start record per segment + one stop.
    expect(r.records).toBe(300 + r.segments! + 1);
    const g = await verifyPath(stateDir, { pinned: pub, mode: 'fast' });
    expect(g.failure).toBeUndefined();
    expect(g.daemonSegments).toBe(r.segments);
    expect(g.sessions).toBe(1);
  });

  it('detects a removed or swapped segment', async () => {
    const stateDir = tempDir('daemon-tamper');
    roots.push(stateDir);
    const key = newKey();
    const d = await daemonRun(stateDir, key, 300);
    await d.close();
    const seg = (n: number, cp = false): string => path.join(d.dir, `segment-${String(n).padStart(6, '0')}${cp ? '.checkpoints' : ''}.ndjson`);
    // Swap segments 1 and 2 (files renamed together): the link records catch it.
    for (const cp of [false, true]) { fs.renameSync(seg(1, cp), `${seg(1, cp)}.x`); fs.renameSync(seg(2, cp), seg(1, cp)); fs.renameSync(`${seg(1, cp)}.x`, seg(2, cp)); }
    const swapped = await verifyPath(d.dir);
    expect(swapped.verified).toBe(false);
    expect(swapped.failure!.reason).toMatch(/checkpoints seal segment-000002\.ndjson, expected segment-000001\.ndjson/);
    for (const cp of [false, true]) fs.rmSync(seg(1, cp));
    const removed = await verifyPath(d.dir);
    expect(removed.failure!.reason).toMatch(/segment 1 is missing/);
  });

  it('resumes the last segment of an epoch after a crash', async () => {
    const stateDir = tempDir('daemon-crash');
    roots.push(stateDir);
    const key = newKey();
    const d = await daemonRun(stateDir, key, 120);
    // Simulate kill -9: no close, plus a torn tail.
    const segFile = path.join(d.dir, `segment-${String(d.currentSegment).padStart(6, '0')}.ndjson`);
    (d as unknown as { log: { flush(): void } }).log.flush();
    const torn = '{"seq":12,"prev';
    fs.appendFileSync(segFile, torn);
    fs.rmSync(path.join(d.dir, 'writer.lock'));
    const again = await DaemonWriter.create({ stateDir, signKey: key, epochId: d.epochId, segmentMaxBytes: 20_000, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    for (let i = 0; i < 50; i++) again.append(eventLine(i));
    await again.close();
    const r = await verifyPath(d.dir);
    expect(r.failure).toBeUndefined();
    const restarts = fs.readdirSync(d.dir).filter((f) => /^segment-\d+\.ndjson$/.test(f))
      .flatMap((f) => readLines(path.join(d.dir, f)).map((l) => JSON.parse(l).event))
      .filter((e) => e.event === 'sensor.restart');
    expect(restarts).toHaveLength(1);
    expect(restarts[0].attributes['witness.ledger.lost_bytes']).toBe(Buffer.byteLength(torn));
  });
});
