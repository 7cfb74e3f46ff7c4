import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const NODE = process.execPath;

describe.skipIf(skip)('file and security events on the real kernel', () => {
  let h: SensorHarness;
  let dir: string;
  beforeAll(() => {
    h = new SensorHarness();
    dir = mkdtempSync(join(tmpdir(), 'witness-file-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('sees create/write, rename and unlink, with relative paths made absolute', async () => {
    const r = await h.run('/bin/sh', ['-c', 'mkdir sub && echo data > sub/a && mv sub/a sub/b && rm sub/b'], { cwd: dir });
    expect(r.code).toBe(0);
    const writes = ofKind(r.events, 'file_write').map((e) => e.path);
    expect(writes).toContain(join(dir, 'sub/a'));
    const ren = ofKind(r.events, 'file_rename');
    expect(ren.map((e) => [e.oldPath, e.newPath, e.ret])).toEqual([[join(dir, 'sub/a'), join(dir, 'sub/b'), 0]]);
    const un = ofKind(r.events, 'file_unlink');
    expect(un.map((e) => [e.path, e.ret])).toEqual([[join(dir, 'sub/b'), 0]]);
    const w = r.envelopes.find((e) => e.event === 'file.write' && e.attributes['file.path'] === join(dir, 'sub/a'));
    expect(w?.attributes['witness.open.flags']).toEqual(expect.arrayContaining(['O_WRONLY', 'O_CREAT', 'O_TRUNC']));
  });

  it('flags a path deeper than the walk bound instead of cutting it silently', async () => {
    const deep = Array.from({ length: 60 }, (_, i) => `d${i}`).join('/');
    const r = await h.run('/bin/sh', ['-c', `mkdir -p ${deep} && cd ${deep} && echo x > leaf`], { cwd: dir });
    expect(r.code).toBe(0);
    const leaf = ofKind(r.events, 'file_write').find((e) => e.path.endsWith('/leaf'));
    expect(leaf?.pathTruncated).toBe(true);
    const env = r.envelopes.find((e) => e.event === 'file.write' && String(e.attributes['file.path']).endsWith('/leaf'));
    expect(env?.attributes['witness.flags']).toContain('path_truncated');
  });

  it('sees a read of a sensitive path, also through a relative path', async () => {
    const r = await h.run('/bin/sh', ['-c', 'cat /etc/shadow > /dev/null; cd /etc && cat ./shadow > /dev/null; cat /etc/hostname > /dev/null']);
    const reads = ofKind(r.events, 'file_read_sensitive');
    expect(reads.map((e) => e.path)).toEqual(['/etc/shadow', '/etc/shadow']);
    expect(reads.every((e) => e.ret >= 0)).toBe(true);
    expect(r.envelopes.filter((e) => e.event === 'file.read_sensitive').length).toBe(2);
  });

  it('sees setuid to nobody with the ids before and after', async () => {
    const r = await h.run(NODE, ['-e', 'process.setgid(65534); process.setuid(65534)']);
    expect(r.code).toBe(0);
    const gid = ofKind(r.events, 'setgid')[0];
    const uid = ofKind(r.events, 'setuid')[0];
    expect(gid).toMatchObject({ ret: 0, newIds: [65534, 65534, 65534], oldIds: [0, 0, 0] });
    expect(uid).toMatchObject({ ret: 0, newIds: [65534, 65534, 65534], oldIds: [0, 0, 0] });
    const env = r.envelopes.find((e) => e.event === 'security.setuid');
    expect(env?.attributes['witness.ids.new']).toEqual(['65534', '65534', '65534']);
  });

  it('sees ptrace of a child', async () => {
    const r = await h.run('/usr/bin/strace', ['-f', '-o', '/dev/null', '/bin/true']);
    expect(r.code).toBe(0);
    const pt = ofKind(r.events, 'ptrace');
    expect(pt.length).toBeGreaterThan(0);
    const names = r.envelopes.filter((e) => e.event === 'security.ptrace').map((e) => e.attributes['witness.ptrace.request']);
    expect(names).toContain('PTRACE_SEIZE');
    const child = ofKind(r.events, 'exec').find((e) => e.filename === '/bin/true');
    expect(pt.some((e) => e.targetPid === child?.pid)).toBe(true);
  });
});
