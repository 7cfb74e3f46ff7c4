import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveUser, shimPath } from '../src/sensor/guardian.js';
import { PACKAGE_ROOT } from '../src/sensor/native.js';
import { kernelSuite } from './helpers/kernel.js';

const { skip } = kernelSuite(); // chown needs root; under WITNESS_REQUIRE_KERNEL=1 that is a failure, not a skip
const built = join(PACKAGE_ROOT, 'build', 'Release', 'witness-exec');

describe.skipIf(skip)('the exec guardian binary root runs', () => {
  const root = mkdtempSync(join(tmpdir(), 'witness-shim-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('is found in build/Release, else next to the prebuild; refused when another user could replace it', () => {
    const pre = join(root, 'prebuilds', `linux-${process.arch}`);
    mkdirSync(pre, { recursive: true });
    copyFileSync(built, join(pre, 'witness-exec'));
    chmodSync(join(pre, 'witness-exec'), 0o755);
    expect(shimPath(root)).toBe(join(pre, 'witness-exec')); // an install without a compiler
    const rel = join(root, 'build', 'Release');
    mkdirSync(rel, { recursive: true });
    copyFileSync(built, join(rel, 'witness-exec'));
    chmodSync(join(rel, 'witness-exec'), 0o755);
    expect(shimPath(root)).toBe(join(rel, 'witness-exec')); // a fresh build wins
    chmodSync(join(rel, 'witness-exec'), 0o777);
    expect(() => shimPath(root)).toThrow(/not root-owned or is group\/world-writable \(uid 0, mode 777\)/);
    chmodSync(join(rel, 'witness-exec'), 0o755);
    chownSync(join(rel, 'witness-exec'), 65534, 65534);
    expect(() => shimPath(root)).toThrow(/uid 65534/);
  });

  it('resolves users and groups through NSS, and names what does not exist', async () => {
    await expect(resolveUser('nobody', built)).resolves.toMatchObject({ uid: 65534, name: 'nobody' });
    expect((await resolveUser('65534', built)).name).toBe('nobody');
    await expect(resolveUser('root:0', built)).resolves.toMatchObject({ uid: 0, gid: 0, home: '/root' });
    await expect(resolveUser('no-such-user-wx', built)).rejects.toThrow(/no such user 'no-such-user-wx'/);
    await expect(resolveUser('nobody:no-such-group-wx', built)).rejects.toThrow(/no such group 'no-such-group-wx'/);
  });
});
