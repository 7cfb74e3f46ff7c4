import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

/**
 * The agent as adversary at the boundary, on the real kernel: forging what a
 * probe reads from its memory, going around the syscall tracepoints with
 * io_uring, signalling outside its tree, and the privilege / persistence
 * syscalls. Each attack is a real program; each assertion is on what the
 * kernel did.
 */
const { skip } = kernelSuite();
const PROGRAMS = join(__dirname, '..', 'fixtures', 'programs');

describe.skipIf(skip)('the boundary on the real kernel', () => {
  let h: SensorHarness;
  let dir: string;
  const bin = (name: string): string => join(dir, name);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'witness-boundary-'));
    for (const p of ['race-connect', 'race-openat2', 'uring-openat', 'boundary-acts']) {
      execFileSync('cc', ['-O2', '-pthread', '-o', bin(p), join(PROGRAMS, `${p}.c`)]);
    }
    // no fairness budget: the openat2 race runs until both outcomes happened
    // 200 times, which can take well over the default 1024 write opens of one
    // path, and every one of them must be a record here
    h = new SensorHarness({ budgetEvents: 0 });
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  /** runs a traced program and returns its stdout with its events */
  async function runOut(cmd: string, args: string[]) {
    const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
    const r = await h.run('/bin/sh', ['-c', `"$0" "$@" > ${out}`, cmd, ...args]);
    return { ...r, stdout: execFileSync('cat', [out]).toString().trim() };
  }

  it('connect: the peer the kernel connected to, though a racing thread rewrote the sockaddr during the call', async () => {
    const r = await runOut(bin('race-connect'), []);
    const [fd, port, rewritten, rc, errno] = r.stdout.split(' ');
    // the attack happened: the connect blocked past the rewrite (EINPROGRESS on SO_SNDTIMEO)
    expect([rc, errno, rewritten]).toEqual(['-1', '115', '127.0.0.3:9']);
    const c = ofKind(r.events, 'connect').filter((e) => e.fd === Number(fd));
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ peerAddress: '127.0.0.1', peerPort: Number(port), ret: -115 });
    const env = r.envelopes.find((e) => e.event === 'network.connect' && e.attributes['witness.fd'] === Number(fd));
    expect(env?.attributes['witness.flags']).toContain('arg_rewritten');
    expect(env?.attributes['witness.user_memory']).toBeUndefined();
  });

  it('bind: the local port the kernel assigned, not the 0 in the caller\'s buffer', async () => {
    const r = await h.run(process.execPath, ['-e', `
      const s = require('node:dgram').createSocket('udp4');
      s.bind(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port)); s.close(); });`]);
    const b = ofKind(r.events, 'bind').find((e) => e.localAddress === '127.0.0.1');
    expect(b?.localPort).toBeGreaterThan(0);
  });

  it('openat2: the access mode of the file the kernel opened, though a racing thread flipped open_how', async () => {
    const target = join(dir, 'flipped');
    writeFileSync(target, 'x');
    const r = await runOut(bin('race-openat2'), [target, '200']);
    const [n, writes] = r.stdout.split(' ').map(Number);
    // the race really ran both ways
    expect(writes).toBeGreaterThanOrEqual(200);
    expect(n! - writes!).toBeGreaterThanOrEqual(200);
    expect(h.sensor.stats().droppedTotal).toBe(0);
    const recs = ofKind(r.events, 'file_write').filter((e) => e.path === target);
    expect(recs).toHaveLength(writes!);
    expect(recs.every((e) => (e.openFlags & 3) === 1)).toBe(true);
  });

  it('io_uring OPENAT is reported with its opcode and the kernel\'s copy of the path', async () => {
    const r = await runOut(bin('uring-openat'), ['/etc/hostname']);
    expect(Number(r.stdout)).toBeGreaterThanOrEqual(0);
    // the ring's creation first (io_uring_setup: fd = the ring), then the submission
    expect(ofKind(r.events, 'io_uring').map((e) => e.opName)).toEqual(['SETUP', 'OPENAT']);
    const u = ofKind(r.events, 'io_uring').filter((e) => e.opName === 'OPENAT');
    expect(u).toHaveLength(1);
    expect(u[0]).toMatchObject({ opcode: 18, path: '/etc/hostname', fd: -100 });
    const env = r.envelopes.find((e) => e.event === 'security.io_uring' && e.attributes['witness.io_uring.opcode'] === 'OPENAT');
    expect(env?.attributes).toMatchObject({ 'witness.io_uring.opcode': 'OPENAT', 'file.path': '/etc/hostname' });
  });

  it('security.kill: a signal to a process outside the tree; none for one inside it', async () => {
    const victim = spawn('/bin/sleep', ['30'], { stdio: 'ignore' }); // not traced
    try {
      const r = await h.run('/bin/sh', ['-c', `kill -USR1 ${victim.pid}; sleep 5 & kill $!; wait`]);
      const k = ofKind(r.events, 'kill');
      expect(k.map((e) => [e.targetPid, e.sig, e.source])).toEqual([[victim.pid, 10, 'generated']]);
      const env = r.envelopes.find((e) => e.event === 'security.kill');
      expect(env?.attributes).toMatchObject({ 'witness.signal.name': 'SIGUSR1', 'witness.signal.delivery': 'delivered' });
    } finally {
      victim.kill('SIGKILL');
    }
  });

  it('security.kill: a denied kill (no signal is generated) is reported from the syscall with its error', async () => {
    const r = await h.run(process.execPath, ['-e', `process.setuid(65534); try { process.kill(${process.pid}, 'SIGTERM') } catch {}`]);
    const k = ofKind(r.events, 'kill');
    expect(k.map((e) => [e.targetPid, e.sig, e.source, e.syscall, e.ret])).toEqual([[process.pid, 15, 'syscall', 'kill', -1]]);
  });

  it('link and symlink, with the names as given and flagged as user memory', async () => {
    writeFileSync(join(dir, 'orig'), 'x');
    const r = await h.run('/bin/sh', ['-c', 'ln orig hard && ln -s orig soft'], { cwd: dir });
    expect(r.code).toBe(0);
    const l = ofKind(r.events, 'link')[0];
    expect(l).toMatchObject({ path: join(dir, 'orig'), path2: join(dir, 'hard'), ret: 0 });
    const s = ofKind(r.events, 'symlink')[0];
    expect(s).toMatchObject({ path: 'orig', path2: join(dir, 'soft'), ret: 0 });
    const env = r.envelopes.find((e) => e.event === 'security.link');
    expect(env?.attributes['witness.user_memory']).toEqual(['file.path', 'witness.link.target']);
  });

  it('chmod setuid by path and fchmod +x by fd (with the mode after, from the inode)', async () => {
    const f = join(dir, 'tool');
    writeFileSync(f, '#!/bin/sh\n');
    const r = await h.run('/bin/sh', ['-c', `chmod 4755 ${f} && "$0" fchmod ${f} 755`, bin('boundary-acts')]);
    expect(r.code).toBe(0);
    const envs = r.envelopes.filter((e) => e.event === 'security.chmod');
    expect(envs.map((e) => [e.attributes['witness.syscall'], e.attributes['file.path'], e.attributes['witness.chmod.mode']]))
      .toEqual([['fchmodat', f, '4755'], ['fchmod', f, '0755']]);
    expect(envs[0]?.attributes['witness.chmod.special']).toEqual(['setuid']);
    expect(envs[1]?.attributes['witness.chmod.mode_after']).toBe('0755');
  });

  it('memfd_create then exec of the memfd: the exec is flagged fileless', async () => {
    const r = await h.run(bin('boundary-acts'), ['memfd-exec', '/bin/true']);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'memfd').map((e) => e.path)).toEqual(['payload']);
    const ex = r.envelopes.filter((e) => e.event === 'process.exec');
    expect(ex).toHaveLength(2);
    expect(ex[0]?.attributes['witness.flags'] ?? []).not.toContain('fileless_exec');
    expect(ex[1]?.attributes['witness.flags']).toContain('fileless_exec');
  });

  it('finit_module and bpf(BPF_PROG_LOAD), refused, are still reported', async () => {
    const r = await h.run('/bin/sh', ['-c', '"$0" finit-devnull; "$0" bpf-prog-load', bin('boundary-acts')]);
    const m = r.envelopes.find((e) => e.event === 'security.module');
    expect(m?.attributes).toMatchObject({ 'witness.syscall': 'finit_module', 'file.path': '/dev/null' });
    expect(m?.attributes['witness.result']).toBeLessThan(0);
    const b = r.envelopes.find((e) => e.event === 'security.bpf');
    expect(b?.attributes).toMatchObject({ 'witness.bpf.cmd': 'BPF_PROG_LOAD', 'witness.bpf.prog_type': 1 });
  });

  it('unshare, mount and umount2 in a private mount namespace; setns by fd', async () => {
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    // classic mount(2): util-linux 2.39+ (Debian 13) would otherwise use the new mount API
    const env = { ...process.env, LIBMOUNT_FORCE_MOUNT2: 'always' };
    const r = await h.run('/usr/bin/unshare', ['-m', '/bin/sh', '-c', `mount -t tmpfs witness-test ${mnt} && umount ${mnt} && nsenter --uts=/proc/self/ns/uts /bin/true`], { env });
    expect(r.code).toBe(0);
    const ns = r.envelopes.filter((e) => e.event === 'security.namespace');
    expect(ns.find((e) => e.attributes['witness.syscall'] === 'unshare')?.attributes['witness.namespace.flags']).toContain('CLONE_NEWNS');
    const setns = ns.find((e) => e.attributes['witness.syscall'] === 'setns');
    const utsIno = Number(execFileSync('stat', ['-L', '-c', '%i', '/proc/self/ns/uts']).toString());
    expect(setns?.attributes).toMatchObject({ 'witness.namespace.flags': ['CLONE_NEWUTS'], 'witness.namespace.inode': utsIno });
    const mounts = r.envelopes.filter((e) => e.event === 'security.mount' && e.attributes['file.path'] === mnt);
    expect(mounts.map((e) => [e.attributes['witness.syscall'], e.attributes['witness.result']])).toEqual([['mount', 0], ['umount2', 0]]);
    expect(mounts[0]?.attributes['witness.mount.source']).toBe('witness-test');
  });

  it('a mount through the new mount API (fsopen/fsmount) is seen where it is attached: move_mount', async () => {
    const mnt = join(dir, 'mnt-new');
    mkdirSync(mnt);
    // util-linux's default: the new API where libmount has it (Debian 13), mount(2) otherwise (Debian 12)
    const env = { ...process.env, LIBMOUNT_FORCE_MOUNT2: 'never' };
    const r = await h.run('/usr/bin/unshare', ['-m', '/bin/sh', '-c', `mount -t tmpfs witness-new ${mnt} && umount ${mnt}`], { env });
    expect(r.code).toBe(0);
    const attach = r.envelopes.filter((e) => e.event === 'security.mount' && e.attributes['file.path'] === mnt && e.attributes['witness.syscall'] !== 'umount2');
    expect(attach.map((e) => e.attributes['witness.result'])).toEqual([0]);
    expect(['mount', 'move_mount']).toContain(attach[0]?.attributes['witness.syscall']);
  });
});
