import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonWriter, verifyPath } from '../src/ledger/index.js';
import { listSegments } from '../src/ledger/daemon.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { readLines } from './helpers/ledger-fixtures.js';
import { mountTmpfs, unmountAndRemove } from './helpers/mounts.js';
import { rootSuite } from './helpers/root.js';

/**
 * Disk full for real: the state dir is a small tmpfs, filled with a filler
 * file until the kernel says ENOSPC. The daemon's ledger writer must record a
 * gap (from, to, cause, records not written), refuse and count appends while
 * the disk is full, retry, resume once the filler is deleted, and verify
 * must pass and list the gap. Nothing sealed before the outage is lost, and
 * every record offered is either in the ledger or counted in the gap.
 */
const suite = rootSuite('the disk-full ledger test (mounts a tmpfs)');
const mounts: string[] = [];
afterAll(() => unmountAndRemove(mounts));

function smallTmpfs(sizeKiB: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-full-'));
  mountTmpfs(dir, `size=${sizeKiB}k,mode=0700`);
  mounts.push(dir);
  return dir;
}

/** Writes `file` until the file system is full; returns the bytes it took. */
function fill(file: string): number {
  const fd = fs.openSync(file, 'a');
  const chunk = Buffer.alloc(16 * 1024, 0x78);
  let n = 0;
  try {
    for (;;) {
      try { n += fs.writeSync(fd, chunk); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
    // the last partial page, byte by byte-ish
    for (const size of [4096, 512, 64, 1]) {
      for (;;) { try { n += fs.writeSync(fd, chunk.subarray(0, size)); } catch { break; } }
    }
  } finally { fs.closeSync(fd); }
  return n;
}

const line = (i: number): string => JSON.stringify({ time: '2026-12-02T00:00:00.000000000Z', event: 'file.write', attributes: { i, pad: 'p'.repeat(100 + (i % 50)) } });

function testRecords(epochDir: string): number[] {
  return listSegments(epochDir).flatMap((n) => readLines(path.join(epochDir, `segment-${String(n).padStart(6, '0')}.ndjson`))
    .map((l) => JSON.parse(l).event).filter((e) => e.event === 'file.write').map((e) => e.attributes.i as number));
}

function gapRecords(epochDir: string): Array<Record<string, unknown>> {
  return listSegments(epochDir).flatMap((n) => readLines(path.join(epochDir, `segment-${String(n).padStart(6, '0')}.ndjson`))
    .map((l) => JSON.parse(l).event).filter((e) => e.event === 'ledger.gap').map((e) => e.attributes as Record<string, unknown>));
}

describe.skipIf(suite.skip)('I/O faults on the state dir (real tmpfs and ext4: ENOSPC and EIO from the kernel)', () => {
  it('records the gap, refuses and counts while full, resumes when space returns; verify passes and shows the gap', async () => {
    const mnt = smallTmpfs(2048);
    const stateDir = path.join(mnt, 'state');
    const pub = crypto.createPublicKey(loadOrCreateHostKey(stateDir));
    const w = await DaemonWriter.create({ stateDir, segmentMaxBytes: 8 << 20, segmentMaxSeconds: 0, checkpointEveryEvents: 200, checkpointEverySeconds: 0, flushIntervalMs: 0, retryIntervalMs: 30 });
    let offered = 0;
    let thrown = 0;
    const offer = (): void => {
      try { w.append(line(offered)); } catch (e) {
        expect((e as Error).message).toMatch(/ledger|ENOSPC|no space/i);
        thrown++;
      }
      offered++;
    };
    for (let i = 0; i < 1000; i++) offer();
    w.checkpoint('window');
    expect(thrown).toBe(0);
    const sealedBefore = testRecords(w.dir);
    expect(sealedBefore).toHaveLength(1000);

    const filler = path.join(mnt, 'filler');
    fill(filler);
    // The buffer fills and reaches the disk: ENOSPC. From then on appends are refused (and counted).
    for (let i = 0; i < 5000; i++) {
      offer();
      if (i % 500 === 0) fill(filler); // whatever a retry freed (a cut torn tail), take it back
    }
    expect(w.outage.failing).toBe(true);
    expect(thrown).toBeGreaterThan(0);
    // Retries while the disk stays full keep failing.
    for (let i = 0; i < 5; i++) { fill(filler); await new Promise((r) => setTimeout(r, 40)); offer(); }
    expect(w.outage.failing).toBe(true);
    expect(w.failingForMs()).toBeGreaterThan(100);

    fs.rmSync(filler);
    const t0 = Date.now();
    while (w.outage.failing && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(w.outage.failing).toBe(false);
    const accepted0 = thrown;
    for (let i = 0; i < 500; i++) offer();
    expect(thrown).toBe(accepted0); // healthy again: every append taken
    await w.close();

    const inLog = testRecords(w.dir);
    const gaps = gapRecords(w.dir);
    expect(gaps.length).toBeGreaterThanOrEqual(1);
    for (const g of gaps) {
      expect(g['witness.ledger.gap.cause']).toMatch(/^ENOSPC/);
      expect(Date.parse(g['witness.ledger.gap.to'] as string)).toBeGreaterThanOrEqual(Date.parse(g['witness.ledger.gap.from'] as string));
    }
    // Nothing lost silently: every offered record is in the ledger or counted in a gap, exactly.
    const counted = gaps.reduce((a, g) => a + (g['witness.ledger.gap.records'] as number), 0);
    expect(inLog.length + counted).toBe(offered);
    // Nothing sealed before the outage was lost; no record twice.
    expect(inLog.slice(0, 1000)).toEqual(sealedBefore);
    expect(new Set(inLog).size).toBe(inLog.length);

    const r = await verifyPath(stateDir, { pinned: pub });
    expect(r.failure).toBeUndefined();
    expect(r.verified).toBe(true);
    expect(r.gaps!.length).toBe(gaps.length);
    expect(r.gaps![0]!.cause).toMatch(/^ENOSPC/);
    expect(r.gaps!.reduce((a, g) => a + g.records, 0)).toBe(counted);
    // the epoch dir alone lists the same gaps
    const epoch = await verifyPath(w.dir, { pinned: pub });
    expect(epoch.failure).toBeUndefined();
    expect(epoch.gaps!.map((g) => g.records)).toEqual(r.gaps!.map((g) => g.records));
    process.stderr.write(`disk full: ${offered} offered, ${inLog.length} in the ledger, ${counted} counted in ${gaps.length} gap(s) `
      + `(${gaps.map((g) => `${g['witness.ledger.gap.refused']} refused + ${g['witness.ledger.gap.lost_in_flight']} in flight, ${g['witness.ledger.gap.retries']} retries`).join('; ')})\n`);
  }, 60_000);

  it('EIO (ext4 shut down under the writer): outage, refused and counted; close leaves it unsealed; after the remount the next start seals it and records the gap; verify passes', async () => {
    const img = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'witness-eio-')), 'img');
    mounts.push(path.dirname(img));
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 32 << 20);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-eio-mnt-'));
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    mounts.unshift(mnt); // unmounted before the image's dir is removed
    const stateDir = path.join(mnt, 'state');
    // the runtime dir (a tmpfs under systemd) keeps the outage off the failing disk
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-eio-run-'));
    mounts.push(runtime);
    process.env.WITNESS_RUNTIME_DIR = runtime;
    const pub = crypto.createPublicKey(loadOrCreateHostKey(stateDir));
    const w = await DaemonWriter.create({ stateDir, segmentMaxBytes: 8 << 20, segmentMaxSeconds: 0, checkpointEveryEvents: 100, checkpointEverySeconds: 0, flushIntervalMs: 0, retryIntervalMs: 30 });
    for (let i = 0; i < 1000; i++) w.append(line(i));
    w.checkpoint('window');
    // FS_IOC_SHUTDOWN, NOLOGFLUSH: from now on every write and fsync on this file system is EIO
    execFileSync('python3', ['-c', `import fcntl,os,struct; fcntl.ioctl(os.open(${JSON.stringify(mnt)}, os.O_RDONLY), 0x8004587d, struct.pack('I', 2))`]);
    let thrown = 0;
    for (let i = 1000; i < 5000; i++) { try { w.append(line(i)); } catch { thrown++; } }
    expect(w.outage.failing).toBe(true);
    expect(thrown).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200)); // retries fail: EIO
    expect(w.outage.failing).toBe(true);
    // closing while it still fails: unsealed, and the count of what was not written goes to the log (stderr), not lost
    await expect(w.close()).rejects.toThrow(/not writable since .*\(EIO.*; \d+ records not written, kept in the runtime dir: the next writer of this log records it/);
    // the disk comes back (what systemd's restart of the daemon would find after a repair)
    execFileSync('umount', [mnt]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    const next = await DaemonWriter.create({ stateDir, segmentMaxSeconds: 0, checkpointEverySeconds: 0 });
    expect(next.sealedOnStart).toEqual([`daemon/${w.epochId}`]);
    await next.close();
    delete process.env.WITNESS_RUNTIME_DIR;
    const r = await verifyPath(stateDir, { pinned: pub });
    expect(r.failure).toBeUndefined();
    // the outage the killed writer could not write is in the ledger now, recorded by its successor
    expect(r.gaps).toHaveLength(1);
    expect(r.gaps![0]!.cause).toMatch(/^EIO/);
    expect(r.gaps![0]!.records).toBeGreaterThanOrEqual(thrown);
    // exactly: every record offered is in the ledger or in the gap (refused, or accepted in memory and lost)
    expect(testRecords(w.dir).length + r.gaps![0]!.records).toBe(5000);
    expect(fs.readdirSync(runtime)).toEqual([]);
    // everything sealed before the failure survived
    expect(testRecords(w.dir).slice(0, 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const restart = listSegments(w.dir).flatMap((n) => readLines(path.join(w.dir, `segment-${String(n).padStart(6, '0')}.ndjson`)).map((l) => JSON.parse(l).event))
      .filter((e) => e.event === 'sensor.restart');
    expect(restart).toHaveLength(1);
    expect(restart[0].attributes['witness.daemon.sealed_by']).toBe(`daemon/${next.epochId}`);
    process.stderr.write(`EIO: ${thrown} appends refused; sealed by the next start, restart at seq ${restart[0].attributes['witness.ledger.resumed_at_seq']}, gap of ${r.gaps![0]!.records} records\n`);
  }, 60_000);
});
