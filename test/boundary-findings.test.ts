import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { findingEnvelopeSchema, sensorEnvelopeSchema } from '../src/events/schemas.js';
import { AttributionEnricher } from '../src/identity/enricher.js';
import { EgressPolicy } from '../src/manifest/egress.js';
import { parseManifest } from '../src/manifest/load.js';
import { ScopeRegistry } from '../src/scope/registry.js';
import type { IoUringEvent, SysopEvent } from '../src/sensor/boundary-types.js';
import { LAYOUT as L } from '../src/sensor/layout.js';
import { toEnvelope } from '../src/sensor/ndjson.js';
import type { EventHeader, ExecEvent, FileEvent, SensorEvent } from '../src/sensor/types.js';

// pids far above pid_max: /proc has none of them, so identity comes from the records
const A = 0x3ff10001;
const clock = { bootToEpochNs: 0n };
let t = BigInt(Date.now()) * 1_000_000n;
const hdr = (pid: number, flags = 0): EventHeader => {
  t += 1000n;
  return { pid, tid: pid, uid: 1000, gid: 1000, cgroupId: 1n, comm: 'coder', tsBootNs: t, flags };
};
const exec = (pid: number, exe: string, flags = 0): ExecEvent => ({
  ...hdr(pid, flags), kind: 'exec', ppid: 1, argc: 1, euid: 1000, egid: 1000, filename: exe, argv: [exe], cwd: '/tmp', exe, root: null,
  argvTruncated: false, filenameTruncated: false, pathTruncated: false,
});
const write = (pid: number, path: string, flags = 0): FileEvent => ({
  ...hdr(pid, flags), kind: 'file_write', ret: 3, openFlags: 0o101, mode: 0o644, path, pathTruncated: false, relativePath: false,
});
const sysop = (kind: SysopEvent['kind'], syscall: string, path: string, path2: string, args: number[]): SysopEvent => ({
  ...hdr(A, L.WA_F_USER_MEMORY), kind, ret: 0, syscall, path, path2, args: [args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0],
});
const uring = (opName: string, opcode: number): IoUringEvent => ({
  ...hdr(A), kind: 'io_uring', fd: -100, opcode, opName, opFlags: 0, sqThread: false, path: '/etc/hostname', path2: '',
  peerFamily: 0, peerAddress: null, peerPort: 0,
});

const manifest = parseManifest(JSON.stringify({
  version: 1,
  sensitive_paths: ['/srv/secrets'],
  agents: [{ name: 'coder', match: [{ executable: '/opt/coder/bin/coder' }] }],
}), 'agents.json');

function setup() {
  const e = new AttributionEnricher({
    clock, manifest, registry: new ScopeRegistry({ isAlive: () => true, childrenOf: () => [], now: () => t }),
    egress: new EgressPolicy(manifest, async () => [], new Set()), homes: ['/root'],
  });
  return (ev: SensorEvent): Envelope[] => {
    const out = e.enrich(ev, toEnvelope(ev, clock));
    for (const env of out) {
      const schema = env.event.startsWith('finding.') ? findingEnvelopeSchema : sensorEnvelopeSchema;
      const r = schema.safeParse(JSON.parse(JSON.stringify(env)));
      expect(r.success, `${env.event}: ${r.success ? '' : JSON.stringify(r.error.issues)}`).toBe(true);
    }
    return out.filter((x) => x.event.startsWith('finding.'));
  };
}

describe('boundary findings', () => {
  it('io_uring use is a finding once per process', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    expect(feed(uring('OPENAT', 18)).map((f) => [f.event, f.attributes['witness.io_uring.opcode']])).toEqual([['finding.io_uring', 'OPENAT']]);
    expect(feed(uring('CONNECT', 16))).toEqual([]);
  });

  it('a link or symlink to or over a sensitive path', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    expect(feed(sysop('link', 'linkat', '/root/.ssh/id_rsa', '/tmp/k', [])).map((f) => f.event)).toEqual(['finding.sensitive_link']);
    expect(feed(sysop('symlink', 'symlinkat', '/tmp/x', '/srv/secrets/db', []))[0]?.attributes['witness.finding.reason']).toMatch(/over/);
    expect(feed(sysop('symlink', 'symlinkat', 'relative', '/tmp/y', []))).toEqual([]);
    expect(feed(sysop('link', 'linkat', '/tmp/a', '/tmp/b', []))).toEqual([]);
  });

  it('chmod: setuid/setgid always, +x only on a file the agent wrote', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    expect(feed(sysop('chmod', 'fchmodat', '/tmp/tool', '', [0o4755]))[0]?.attributes['witness.finding.reason']).toMatch(/setuid/);
    expect(feed(sysop('chmod', 'fchmodat', '/tmp/other', '', [0o755]))).toEqual([]);
    feed(write(A, '/tmp/dropper'));
    expect(feed(sysop('chmod', 'fchmodat', '/tmp/dropper', '', [0o755])).map((f) => f.attributes['witness.chmod.mode'])).toEqual(['0755']);
    expect(feed(sysop('chmod', 'fchmodat', '/tmp/dropper', '', [0o644]))).toEqual([]);
  });

  it('a fileless exec', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    expect(feed(exec(A, '/memfd:payload (deleted)', L.WA_F_FILELESS)).map((f) => f.event)).toEqual(['finding.fileless_exec']);
  });

  it('a kernel module load, refused or not', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    const f = feed({ ...sysop('module', 'finit_module', '/tmp/rootkit.ko', '', [0]), ret: -1 });
    expect(f.map((x) => [x.event, x.attributes['file.path'], x.attributes['witness.result']])).toEqual([['finding.kernel_module', '/tmp/rootkit.ko', -1]]);
    expect(f[0]?.attributes['witness.finding.reason']).toMatch(/failed \(-1\)/);
  });

  it('bpf(): loading or attaching a program is a finding, a map lookup is not', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    expect(feed(sysop('bpf', 'bpf', '', '', [5])).map((f) => [f.event, f.attributes['witness.bpf.cmd']])).toEqual([['finding.bpf_program', 'BPF_PROG_LOAD']]);
    expect(feed(sysop('bpf', 'bpf', '', '', [28])).map((f) => f.attributes['witness.bpf.cmd'])).toEqual(['BPF_LINK_CREATE']);
    expect(feed(sysop('bpf', 'bpf', '', '', [1]))).toEqual([]);
  });

  it('mount and namespace calls', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    // the target path is the caller's string: the finding says so, as its cause does
    expect(feed(sysop('mount', 'mount', 'tmpfs', '/root/.ssh', [0])).map((f) => [f.event, f.attributes['file.path'], f.attributes['witness.user_memory']]))
      .toEqual([['finding.mount', '/root/.ssh', ['file.path']]]);
    expect(feed(sysop('namespace', 'unshare', '', '', [0x10020000])).map((f) => f.event)).toEqual(['finding.namespace']);
  });

  it('a file reached outside a chroot', () => {
    const feed = setup();
    feed(exec(A, '/opt/coder/bin/coder'));
    expect(feed(write(A, '/tmp/inside', L.WA_F_CHROOT))).toEqual([]);
    const f = feed(write(A, '/home/u/escaped', L.WA_F_CHROOT | L.WA_F_OUTSIDE_ROOT));
    expect(f.map((x) => [x.event, x.attributes['file.path']])).toEqual([['finding.chroot_escape', '/home/u/escaped']]);
  });
});
