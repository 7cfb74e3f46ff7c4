import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelDev } from '../../src/sensor/sensitive.js';
import { registerSensitive } from '../../src/sensor/sensitive-set.js';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

/**
 * Sensitive reads that cannot be dodged: a hard link made elsewhere, a
 * symlink, an overlayfs path whose stat(2) identity is not the kernel's, and
 * a sensitive directory that only appears after the sensor started. The
 * overlay is mounted under this test's own temp dir and unmounted after.
 */
const { skip } = kernelSuite();

describe.skipIf(skip)('sensitive reads on the real kernel', () => {
  let h: SensorHarness;
  let dir: string;
  let secretDir: string;
  let ovl: string;
  const mounted: string[] = [];
  // past a dentry's inline name (32-40 bytes) and the 63 bytes names are compared on
  const longName = 'a-credential-file-whose-name-is-longer-than-any-inline-dentry-name';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'witness-sensitive-'));
    secretDir = join(dir, 'keys');
    mkdirSync(secretDir);
    writeFileSync(join(secretDir, 'id_key'), 'secret\n');
    // overlay: lower on the temp dir's filesystem, upper on a tmpfs of its own,
    // so stat(2) reports a per-layer pseudo device for a lower file
    ovl = join(dir, 'ovl');
    for (const d of ['lower', 'upper', 'merged']) mkdirSync(join(ovl, d), { recursive: true });
    writeFileSync(join(ovl, 'lower', 'token'), 'secret\n');
    execFileSync('mount', ['-t', 'tmpfs', 'witness-test', join(ovl, 'upper')]);
    mounted.push(join(ovl, 'upper'));
    mkdirSync(join(ovl, 'upper', 'u'));
    mkdirSync(join(ovl, 'upper', 'w'));
    execFileSync('mount', ['-t', 'overlay', 'witness-test', '-o',
      `lowerdir=${join(ovl, 'lower')},upperdir=${join(ovl, 'upper', 'u')},workdir=${join(ovl, 'upper', 'w')}`, join(ovl, 'merged')]);
    mounted.unshift(join(ovl, 'merged'));
    h = new SensorHarness({ sensitivePaths: [secretDir, join(ovl, 'merged', 'token'), join(dir, 'later'), join(dir, longName)] });
  });
  afterAll(async () => {
    await h?.close();
    for (const m of mounted) execFileSync('umount', [m]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers identities from the kernel, not stat(2)', () => {
    expect(h.sensor.sensitive.identity).toBe('kernel');
    expect(h.sensor.sensitive.refused).toEqual([]);
  });

  it('a hard link to a file in a sensitive directory, read from outside it', async () => {
    const r = await h.run('/bin/sh', ['-c', `ln ${join(secretDir, 'id_key')} ${join(dir, 'copy')} && cat ${join(dir, 'copy')}`]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([join(dir, 'copy')]);
  });

  it('a symlink to a sensitive file', async () => {
    const r = await h.run('/bin/sh', ['-c', `ln -s ${join(secretDir, 'id_key')} ${join(dir, 'sym')} && cat ${join(dir, 'sym')}`]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([join(secretDir, 'id_key')]);
  });

  it('an overlayfs file, whose stat(2) device is not the one the kernel matches', async () => {
    const token = join(ovl, 'merged', 'token');
    // the premise: user space and the kernel disagree on this file's identity
    const fd = openSync(token, 0o10000000);
    try {
      const k = h.sensor.native.kernelIdentities().find((row) => row.fd === fd)!;
      expect(kernelDev(statSync(token, { bigint: true }).dev)).not.toBe(k.dev);
    } finally {
      closeSync(fd);
    }
    const r = await h.run('/bin/cat', [token]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([token]);
  });

  it('a sensitive directory created after the sensor started', async () => {
    const later = join(dir, 'later');
    const r = await h.run('/bin/sh', ['-c', `mkdir ${later} && echo x > ${later}/cred && cat ${later}/cred`]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([join(later, 'cred')]);
  });

  it('a file watched by name whose name is longer than a dentry holds inline, read by a relative path', async () => {
    // not there at registration: watched by its name only, whose first byte the walk
    // reads through the dentry's name pointer (an external name here)
    const r = await h.run('/bin/sh', ['-c', `echo x > ${longName} && cat ./${longName}`], { cwd: dir });
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([join(dir, longName)]);
  });

  it('a sensitive read by the legacy open(2) syscall, not openat', async () => {
    // syscall 2 on x86_64: its own exit handler, and no enter one (bpf/syscall.bpf.h)
    const script = 'my $fd = syscall(2, $ARGV[0], 0, 0); die "open: $!" if $fd < 0;';
    const r = await h.run('/usr/bin/perl', ['-e', script, join(secretDir, 'id_key')]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([join(secretDir, 'id_key')]);
  });

  it('a path outside the set is not reported', async () => {
    writeFileSync(join(dir, 'plain'), 'x');
    const r = await h.run('/bin/cat', [join(dir, 'plain')]);
    expect(ofKind(r.events, 'file_read_sensitive')).toEqual([]);
  });
});

describe.skipIf(skip)('a sensitive set past the kernel cap', () => {
  it('starts, watches what fits and names what it refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-sensitive-cap-'));
    const files = Array.from({ length: 1100 }, (_, i) => join(dir, `f${i}`));
    for (const f of files) writeFileSync(f, 'x');
    const h = new SensorHarness({ sensitivePaths: files });
    try {
      const reg = h.sensor.sensitive;
      expect(reg.watched).toBe(1024);
      // 76 identities and the 1100 names past the per-map cap, each named
      expect(reg.refused.filter((p) => files.includes(p)).length).toBeGreaterThanOrEqual(76);
      const r = await h.run('/bin/cat', [files[0]!]);
      expect(ofKind(r.events, 'file_read_sensitive').map((e) => e.path)).toEqual([files[0]]);
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The walk skips a filesystem whose filter bit is clear and looks up only
 * identities whose filter bit is set (bpf/sensitive.bpf.h); the loader sets the
 * bits before the map entries and clears them only with the whole set
 * (native/loader_maps.c). So a filesystem that held nothing sensitive when a
 * read was let through, and a set cleared and registered again (the daemon's
 * reload), must still report: each read below would pass unseen if the bits
 * were not set on every registration.
 */
describe.skipIf(skip)('the sensitive filters follow the set', () => {
  let h: SensorHarness;
  let dir: string;
  let fresh: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'witness-sensitive-filter-'));
    fresh = join(dir, 'fresh');
    mkdirSync(fresh);
    // a filesystem of its own: no identity on it is in the set at first
    execFileSync('mount', ['-t', 'tmpfs', 'witness-test', fresh]);
    for (const f of ['one', 'two']) writeFileSync(join(fresh, f), 'secret\n');
    h = new SensorHarness({ sensitivePaths: [join(dir, 'elsewhere')] });
  });
  afterAll(async () => {
    await h?.close();
    execFileSync('umount', [fresh]);
    rmSync(dir, { recursive: true, force: true });
  });
  const seen = async (...files: string[]) => {
    const r = await h.run('/bin/cat', files);
    expect(r.code).toBe(0);
    return ofKind(r.events, 'file_read_sensitive').map((e) => e.path);
  };

  it('a filesystem made sensitive after reads on it were let through', async () => {
    const one = join(fresh, 'one');
    expect(await seen(one)).toEqual([]);
    expect(registerSensitive(h.sensor.native, [one]).watched).toBe(1);
    expect(await seen(one)).toEqual([one]);
  });

  it('a set cleared and registered again, as on a daemon reload', async () => {
    const one = join(fresh, 'one');
    const two = join(fresh, 'two');
    h.sensor.native.clearSensitive();
    expect(await seen(one, two)).toEqual([]);
    expect(registerSensitive(h.sensor.native, [two]).watched).toBe(1);
    expect(await seen(one, two)).toEqual([two]);
    h.sensor.native.clearSensitive();
    expect(registerSensitive(h.sensor.native, [one]).watched).toBe(1);
    expect(await seen(one, two)).toEqual([one]);
  });

  it('a name registered after its directory was walked without one', async () => {
    const three = join(fresh, 'three'); // not there yet: watched by name under `fresh`
    writeFileSync(join(fresh, 'other'), 'x\n');
    expect(await seen(join(fresh, 'other'))).toEqual([]);
    expect(registerSensitive(h.sensor.native, [three]).names).toBeGreaterThan(0);
    writeFileSync(three, 'secret\n');
    expect(await seen(join(fresh, 'other'), three)).toEqual([three]);
  });
});
