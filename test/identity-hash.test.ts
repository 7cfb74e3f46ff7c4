import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realpathSync } from 'node:fs';
import { ExecutableHasher } from '../src/identity/exe-hash.js';
import { UserNames } from '../src/identity/users.js';

const dir = mkdtempSync(join(tmpdir(), 'witness-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('executable identity', () => {
  it('hashes a small binary inline and serves the next exec from the cache', () => {
    const h = new ExecutableHasher();
    const a = h.identify(999_999_999, '/bin/true');
    expect(a).toMatchObject({ status: 'ok', sha256: sha('/bin/true') });
    expect(a.path).toBe(realpathSync('/bin/true'));
    expect(h.identify(999_999_999, '/bin/true').sha256).toBe(a.sha256);
    expect(h.counts).toMatchObject({ hashedSync: 1, cacheHits: 1 });
  });

  it('reads the file through /proc/PID/exe while the process lives', async () => {
    const child = spawn('/bin/sleep', ['5']);
    await new Promise((r) => child.once('spawn', r));
    try {
      const real = realpathSync('/bin/sleep');
      const id = new ExecutableHasher().identify(child.pid!, real);
      expect(id).toMatchObject({ status: 'ok', path: real, sha256: sha(real) });
    } finally {
      child.kill();
    }
  });

  it('hashes a big binary in the background: pending first, cached after', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(3 << 20, 7));
    const h = new ExecutableHasher({ syncLimitBytes: 1 << 20 });
    const first = h.identify(999_999_999, big);
    expect(first.status).toBe('pending');
    expect(first.sha256).toBeNull();
    expect(await first.pending).toBe(sha(big));
    expect(h.identify(999_999_999, big)).toMatchObject({ status: 'ok', sha256: sha(big) });
    expect(h.counts.hashedAsync).toBe(1);
  });

  it('hashes again when the file is replaced in place (mtime/ctime/size change the key)', () => {
    const f = join(dir, 'tool');
    copyFileSync('/bin/true', f);
    chmodSync(f, 0o755);
    const h = new ExecutableHasher();
    const before = h.identify(999_999_999, f).sha256;
    writeFileSync(f, '#!/bin/sh\nexit 0\n');
    const after = h.identify(999_999_999, f).sha256;
    expect(after).not.toBe(before);
    expect(after).toBe(sha(f));
  });

  it('says unavailable, with a reason, when the process is gone and the path is too', () => {
    const id = new ExecutableHasher().identify(999_999_999, join(dir, 'nope'));
    expect(id).toMatchObject({ status: 'unavailable', sha256: null, reason: 'ENOENT' });
    expect(new ExecutableHasher().identify(999_999_999, '', '').status).toBe('unavailable');
  });

  it('anchors a relative filename at the cwd when the kernel could not resolve the path', () => {
    copyFileSync('/bin/true', join(dir, 'rel'));
    const id = new ExecutableHasher().identify(999_999_999, '', 'rel', dir);
    expect(id).toMatchObject({ status: 'ok', path: join(dir, 'rel') });
  });
});

describe('user names', () => {
  it('maps uids from passwd and re-reads at most once per interval on a miss', () => {
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\n');
    let t = 0;
    const u = new UserNames(passwd, 1000, () => t);
    expect(u.nameOf(0)).toBe('root');
    writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\nagent:x:1234:1234::/home/agent:/bin/sh\n');
    expect(u.nameOf(1234)).toBeNull();
    t = 5000;
    expect(u.nameOf(1234)).toBe('agent');
  });
});
