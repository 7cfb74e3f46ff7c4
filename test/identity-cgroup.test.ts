import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rootSuite } from './helpers/root.js';
import { cgroup2MountFrom, CgroupResolver, findCgroup2Mount, parseCgroupPath, v2PathFromProcCgroup } from '../src/identity/cgroup.js';

const FIX = join(import.meta.dirname, 'fixtures', 'identity');
const cases = JSON.parse(readFileSync(join(FIX, 'cgroup-paths.json'), 'utf8')) as
  { shape: string; path: string; containerId: string | null; containerRuntime: string | null; podUid: string | null; systemdUnit: string | null }[];

describe('cgroup path → container / pod / unit', () => {
  it.each(cases)('$shape', ({ path, containerId, containerRuntime, podUid, systemdUnit }) => {
    expect(parseCgroupPath(path)).toEqual({ containerId, containerRuntime, podUid, systemdUnit });
  });
});

describe('cgroup2 mount and /proc/PID/cgroup', () => {
  it('finds cgroup2 on a hybrid host (under /sys/fs/cgroup/unified), a unified host, and none on a v1-only host', () => {
    expect(cgroup2MountFrom(readFileSync(join(FIX, 'mountinfo-hybrid.txt'), 'utf8'))).toBe('/sys/fs/cgroup/unified');
    expect(cgroup2MountFrom(readFileSync(join(FIX, 'mountinfo-unified.txt'), 'utf8'))).toBe('/sys/fs/cgroup');
    expect(cgroup2MountFrom(readFileSync(join(FIX, 'mountinfo-none.txt'), 'utf8'))).toBeNull();
    expect(cgroup2MountFrom('36 35 0:30 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw')).toBe('/mnt/cg two');
  });

  it('takes the v2 line of a hybrid /proc/PID/cgroup', () => {
    expect(v2PathFromProcCgroup('4:memory:/x\n1:cpu:/\n0::/system.slice/a.service\n')).toBe('/system.slice/a.service');
    expect(v2PathFromProcCgroup('4:memory:/x\n')).toBeNull();
  });
});

const mount = findCgroup2Mount();
const { skip } = rootSuite('the cgroup resolver suite', mount === null ? 'no cgroup2 mount' : null);
describe.skipIf(skip)('CgroupResolver on this host', () => {
  const name = `witness-test-${process.pid}`;
  const rel = `/${name}/inner`;
  afterAll(() => {
    try { rmdirSync(join(mount!, name, 'inner')); rmdirSync(join(mount!, name)); } catch { /* not created */ }
  });

  it('maps a cgroup id (inode) to its path by walking on a miss, and confirms /proc hints', () => {
    mkdirSync(join(mount!, name, 'inner'), { recursive: true });
    const r = new CgroupResolver({ walkIntervalMs: 0 });
    expect(r.mount).toBe(mount);
    const id = r.idOf(rel);
    expect(id).not.toBeNull();
    expect(r.pathOf(id!)).toBe(rel);
    expect(r.pathOf(1n)).toBe('/');
    // our own process: /proc/self/cgroup names the path, stat confirms the id
    const own = v2PathFromProcCgroup(readFileSync('/proc/self/cgroup', 'utf8'))!;
    const fresh = new CgroupResolver({ walkIntervalMs: 1e12 });
    expect(fresh.pathOf(fresh.idOf(own)!, process.pid)).toBe(own);
  });

  it('does not walk again within the interval for an unknown id', () => {
    let t = 0;
    const r = new CgroupResolver({ walkIntervalMs: 1000, now: () => t });
    expect(r.pathOf(0xdeadbeefn)).toBeNull(); // walked once
    mkdirSync(join(mount!, name, 'late'), { recursive: true });
    const late = r.idOf(`/${name}/late`)!;
    expect(r.pathOf(late)).toBeNull(); // within the interval: no walk
    t = 2000;
    expect(r.pathOf(late)).toBe(`/${name}/late`);
    rmdirSync(join(mount!, name, 'late'));
  });
});
