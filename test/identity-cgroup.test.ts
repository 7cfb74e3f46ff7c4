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
    expect(parseCgroupPath(path)).toEqual({ containerId, containerRuntime, podUid, systemdUnit, userUnit: null, userUnitUid: null });
  });
});

describe('only root-owned directories vouch for units, containers and pods', () => {
  const id = '3f4e9c1b7a2d5e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7';
  // user@1000.service is delegated: systemd chowns it (and everything below) to the user
  const owner = (p: string): number | null => (p.startsWith('/user.slice/user-1000.slice/user@1000.service') ? 1000 : 0);

  it('a unit under a delegated directory is a user unit, with its uid', () => {
    expect(parseCgroupPath('/user.slice/user-1000.slice/user@1000.service/app.slice/coder.service', owner)).toEqual({
      containerId: null, containerRuntime: null, podUid: null, systemdUnit: null, userUnit: 'coder.service', userUnitUid: 1000,
    });
    expect(parseCgroupPath('/system.slice/coder.service', owner).systemdUnit).toBe('coder.service');
  });

  it('a container id or pod slice a user names is not a container or pod', () => {
    const path = `/user.slice/user-1000.slice/user@1000.service/kubepods-pod12345678_1234_1234_1234_123456789abc.slice/docker-${id}.scope`;
    expect(parseCgroupPath(path, owner)).toMatchObject({ containerId: null, containerRuntime: null, podUid: null, systemdUnit: null, userUnitUid: 1000 });
    expect(parseCgroupPath(`/system.slice/docker-${id}.scope`, owner)).toMatchObject({ containerId: id, containerRuntime: 'docker' });
  });

  it('a directory that cannot be stat\'ed (gone) vouches for nothing', () => {
    expect(parseCgroupPath('/system.slice/coder.service', () => null)).toMatchObject({ systemdUnit: null, userUnit: 'coder.service', userUnitUid: null });
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
