import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYOUT } from '../../src/sensor/layout.js';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();

/**
 * Paths in one root (issue 14 item 4). A chrooted process names files relative to
 * its root; the sensor's resolved paths (from struct file / the cwd walk) must use
 * the same root, or one event family says /tmp/x and another /srv/jail/tmp/x for
 * the same file. The exec record says where the root is; a file reached outside
 * the root (a cwd kept from before chroot) is flagged and keeps its global path.
 */
describe.skipIf(skip)('paths of a chrooted process', () => {
  let h: SensorHarness;
  let jail: string;
  let outside: string;
  beforeAll(() => {
    h = new SensorHarness();
    jail = mkdtempSync(join(tmpdir(), 'witness-jail-'));
    outside = mkdtempSync(join(tmpdir(), 'witness-outside-'));
    // merged /usr (Debian 12 and 13): /usr read-only, and the top-level links to it
    for (const d of ['usr', 'tmp', 'work', 'proc']) mkdirSync(join(jail, d));
    for (const l of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${l}`, join(jail, l));
    execFileSync('mount', ['--bind', '/usr', join(jail, 'usr')]);
    execFileSync('mount', ['-o', 'remount,bind,ro', join(jail, 'usr')]);
  });
  afterAll(async () => {
    await h?.close();
    execFileSync('umount', [join(jail, 'usr')]);
    rmSync(jail, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('resolved and as-given paths agree, relative to the chroot, and the exec names the root', async () => {
    const script = 'cd /work && echo a > rel && echo b > /tmp/abs && mv rel moved && rm /tmp/abs';
    const r = await h.run('/usr/sbin/chroot', [jail, '/bin/sh', '-c', script]);
    expect(r.code).toBe(0);
    const sh = ofKind(r.events, 'exec').find((e) => e.filename === '/bin/sh');
    expect(sh?.root).toBe(jail);
    expect(sh?.cwd).toBe('/');
    expect(sh?.exe).toBe('/usr/bin/dash');
    const shEnv = r.envelopes.find((e) => e.event === 'process.exec' && e.attributes['witness.exec.filename'] === '/bin/sh');
    expect(shEnv?.attributes['witness.process.root']).toBe(jail);
    // the exec of chroot itself happened before the chroot: no root, no flag
    const chrootExec = ofKind(r.events, 'exec').find((e) => e.filename === '/usr/sbin/chroot');
    expect(chrootExec?.root).toBeNull();

    const writes = ofKind(r.events, 'file_write').map((e) => e.path);
    expect(writes).toEqual(expect.arrayContaining(['/work/rel', '/tmp/abs'])); // from struct file
    const ren = ofKind(r.events, 'file_rename').map((e) => [e.oldPath, e.newPath]);
    expect(ren).toEqual([['/work/rel', '/work/moved']]); // as given, relative to the cwd
    const un = ofKind(r.events, 'file_unlink').map((e) => e.path);
    expect(un).toEqual(['/tmp/abs']); // as given, absolute
    // every file event after the exec into the jail (the harness's /dev/null opens came before)
    const jailed = r.events.filter((e) => e.kind.startsWith('file_') && sh !== undefined && e.tsBootNs > sh.tsBootNs);
    expect(jailed.length).toBeGreaterThanOrEqual(4);
    for (const e of jailed) expect([e.kind, e.flags & LAYOUT.WA_F_CHROOT]).toEqual([e.kind, LAYOUT.WA_F_CHROOT]);
    const names = r.envelopes.filter((e) => e.event === 'file.rename').map((e) => e.attributes['witness.flags']);
    expect(names).toEqual([expect.arrayContaining(['chroot', 'user_memory'])]);
    expect(writes.some((p) => p.startsWith(jail))).toBe(false);
  });

  it('flags a file reached outside the root (a cwd kept across chroot) with its global path', async () => {
    // perl chroots without chdir: its cwd stays outside the new root, the classic escape
    const code = `chroot(q{${jail}}) or die "chroot: $!"; open(my $f, ">", "escaped") or die "open: $!"; print $f "x"; close $f`;
    const r = await h.run('/usr/bin/perl', ['-e', code], { cwd: outside });
    expect(r.code).toBe(0);
    const w = ofKind(r.events, 'file_write').find((e) => e.path.endsWith('/escaped'));
    expect(w?.path).toBe(join(outside, 'escaped'));
    const env = r.envelopes.find((e) => e.event === 'file.write' && String(e.attributes['file.path']).endsWith('/escaped'));
    expect(env?.attributes['witness.flags']).toEqual(expect.arrayContaining(['chroot', 'outside_root']));
  });

  it('an unchrooted process carries neither flag nor root', async () => {
    const r = await h.run('/bin/sh', ['-c', 'echo x > plain'], { cwd: outside });
    expect(r.code).toBe(0);
    const exec = ofKind(r.events, 'exec')[0];
    expect(exec?.root).toBeNull();
    const env = r.envelopes.find((e) => e.event === 'file.write' && e.attributes['file.path'] === join(outside, 'plain'));
    expect(env).toBeDefined();
    expect(env?.attributes['witness.flags'] ?? []).not.toContain('chroot');
  });
});
