import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

/**
 * Read-only opens skip the sensitive ancestry walk on filesystems that hold no
 * sensitive identity (bpf/sensitive.bpf.h, wa_sens_dev_filter). The skip must never
 * hide a sensitive read: one sensitive file on tmpfs (/dev/shm) and one on
 * the root filesystem are both seen, each only on its own filesystem, while
 * reads elsewhere stay unrecorded.
 */
const { skip } = kernelSuite();

describe.skipIf(skip)('sensitive reads on more than one filesystem', () => {
  let shm: string;
  let disk: string;
  let h: SensorHarness;
  beforeAll(() => {
    shm = mkdtempSync('/dev/shm/witness-sens-');
    disk = mkdtempSync(join(tmpdir(), 'witness-sens-'));
    writeFileSync(join(shm, 'token'), 'secret');
    writeFileSync(join(shm, 'plain'), 'nothing');
    writeFileSync(join(disk, 'key'), 'secret');
    writeFileSync(join(disk, 'plain'), 'nothing');
    h = new SensorHarness({ sensitivePaths: [join(shm, 'token'), join(disk, 'key')] });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(shm, { recursive: true, force: true });
    rmSync(disk, { recursive: true, force: true });
  });

  it('sees the sensitive read on each filesystem and none of the plain ones', async () => {
    const files = [join(shm, 'token'), join(shm, 'plain'), join(disk, 'key'), join(disk, 'plain'), '/proc/self/status', '/dev/null'];
    const r = await h.run('/bin/sh', ['-c', files.map((f) => `cat ${f} > /dev/null`).join('; ')]);
    expect(r.code).toBe(0);
    const paths = ofKind(r.events, 'file_read_sensitive').map((e) => e.path).sort();
    expect(paths).toEqual([join(disk, 'key'), join(shm, 'token')].sort());
  });
});
