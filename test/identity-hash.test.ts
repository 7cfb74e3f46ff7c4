import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realpathSync } from 'node:fs';
import { ExecutableHasher } from '../src/identity/exe-hash.js';
import { UserNames } from '../src/identity/users.js';

const dir = mkdtempSync(join(tmpdir(), 'witness-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** A live process running `bin` (a copy of sleep), so /proc/PID/exe is what it loaded. */
async function live(bin: string): Promise<{ pid: number; stop: () => void }> {
  const child = spawn(bin, ['30'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  return { pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

function sleeper(name: string, padBytes = 0): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([readFileSync('/bin/sleep'), Buffer.alloc(padBytes, 7)])); // trailing bytes do not stop an ELF from running
  chmodSync(p, 0o755);
  return p;
}

describe('executable identity', () => {
  it('hashes a small binary inline and serves the next exec from the cache', async () => {
    const h = new ExecutableHasher();
    const bin = realpathSync('/bin/sleep');
    const p = await live(bin);
    try {
      const a = h.identify(p.pid, bin);
      expect(a).toMatchObject({ status: 'ok', sha256: sha(bin), path: bin });
      expect(h.identify(p.pid, bin).sha256).toBe(a.sha256);
      expect(h.counts).toMatchObject({ hashedSync: 1, cacheHits: 1 });
    } finally {
      p.stop();
    }
  });

  it('hashes a big binary in the background: pending first, cached after', async () => {
    const big = sleeper('big', 3 << 20);
    const p = await live(big);
    try {
      const h = new ExecutableHasher({ syncLimitBytes: 1 << 20 });
      const first = h.identify(p.pid, big);
      expect(first.status).toBe('pending');
      expect(first.sha256).toBeNull();
      expect(await first.pending).toBe(sha(big));
      expect(h.identify(p.pid, big)).toMatchObject({ status: 'ok', sha256: sha(big) });
      expect(h.counts.hashedAsync).toBe(1);
    } finally {
      p.stop();
    }
  });

  it('hashes again when the file is replaced in place (mtime/ctime/size change the key)', async () => {
    const f = sleeper('tool');
    const h = new ExecutableHasher();
    const a = await live(f);
    const before = h.identify(a.pid, f).sha256;
    a.stop();
    await new Promise((r) => setTimeout(r, 50)); // ETXTBSY until the old one is gone
    writeFileSync(f, Buffer.concat([readFileSync('/bin/sleep'), Buffer.from('other')]));
    const b = await live(f);
    try {
      const after = h.identify(b.pid, f).sha256;
      expect(after).not.toBe(before);
      expect(after).toBe(sha(f));
    } finally {
      b.stop();
    }
  });

  it('a binary renamed over after the exec: the hash is of the file that ran, never of what sits at the path', async () => {
    const x = sleeper('x');
    const ran = sha(x);
    const p = await live(x);
    try {
      const other = join(dir, 'other');
      copyFileSync('/bin/true', other);
      renameSync(other, x); // the path now names another binary
      expect(sha(x)).not.toBe(ran);
      const id = new ExecutableHasher().identify(p.pid, x);
      expect(id).toMatchObject({ status: 'ok', sha256: ran, path: x });
    } finally {
      p.stop();
    }
  });

  it('says unavailable, with a reason, when the process is gone: even when its path still exists, it is not hashed', () => {
    const h = new ExecutableHasher();
    const id = h.identify(999_999_999, '/bin/true');
    expect(id).toMatchObject({ status: 'unavailable', sha256: null });
    expect(id.reason).toMatch(/process gone before its executable could be opened/);
    expect(h.identify(999_999_999, '', '').status).toBe('unavailable');
    expect(h.counts.hashedSync).toBe(0);
  });

  it('says unavailable when the pid has executed another file since the event', async () => {
    const p = await live(realpathSync('/bin/sleep'));
    try {
      const id = new ExecutableHasher().identify(p.pid, '/usr/bin/some-earlier-binary');
      expect(id).toMatchObject({ status: 'unavailable', reason: 'process executed another file since the event' });
    } finally {
      p.stop();
    }
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
