import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPrivateKey, rawPublicKey, writeKeyPair } from '../src/ledger/keys.js';
import { existingHostKey } from '../src/ledger/rotation.js';
import { hostNoteSigner } from '../src/ledger/note-key-files.js';
import { loginHomes } from '../src/sensor/sensitive.js';

/**
 * A long-lived daemon keeps what it parsed from key files and /etc/passwd between runs
 * (src/ledger/keys.ts, note-key-files.ts, sensor/sensitive.ts). The attack on such a cache
 * is a file changed under it: a rotated or replaced key must sign from then on, a user
 * added to passwd must have their home watched. Each case changes the file and asks again.
 */
const dirs: string[] = [];
const tmp = (): string => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-caches-')); dirs.push(d); return d; };
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

const pub = (p: string): string => rawPublicKey(loadPrivateKey(p)).toString('hex');

/** Two key pairs a and b, and `live.key`: a copy of a's private key, mode 0600. */
function twoKeysLiveIsFirst(): { b: ReturnType<typeof writeKeyPair>; live: string } {
  const d = tmp();
  const a = writeKeyPair(path.join(d, 'a'));
  const b = writeKeyPair(path.join(d, 'b'));
  const live = path.join(d, 'live.key');
  fs.copyFileSync(a.privatePath, live);
  fs.chmodSync(live, 0o600);
  return { b, live };
}

describe('caches of parsed files follow the files', () => {
  it('a key file replaced at the same path (rename over it) is the key loaded next', () => {
    const { b, live } = twoKeysLiveIsFirst();
    const first = pub(live);
    expect(pub(live)).toBe(first); // served from the cache: the same key
    fs.copyFileSync(b.privatePath, `${live}.new`);
    fs.chmodSync(`${live}.new`, 0o600);
    fs.renameSync(`${live}.new`, live);
    expect(pub(live)).toBe(pub(b.privatePath));
    expect(pub(live)).not.toBe(first);
  });

  it('a key file rewritten in place is read again, and its mode is checked on every load', () => {
    const { b, live } = twoKeysLiveIsFirst();
    pub(live);
    fs.writeFileSync(live, fs.readFileSync(b.privatePath)); // same inode, new bytes
    expect(pub(live)).toBe(pub(b.privatePath));
    fs.chmodSync(live, 0o644);
    expect(() => loadPrivateKey(live)).toThrow(/accessible to other users/);
  });

  it("the host note signer follows a replaced host key (the cached signer is not reused)", () => {
    const state = tmp();
    const before = hostNoteSigner(state);
    expect(hostNoteSigner(state)).toBe(before);
    const keys = path.join(state, 'keys');
    const other = writeKeyPair(path.join(state, 'other'));
    fs.renameSync(other.privatePath, path.join(keys, 'host.key'));
    fs.rmSync(path.join(keys, 'host.vkey'));
    const after = hostNoteSigner(state);
    expect(after).not.toBe(before);
    expect(after.keyHash).not.toBe(before.keyHash);
  });

  it("the state dir's host key as sealCrashed and the host ledger look at it follows a replaced key file", () => {
    const state = tmp();
    const keys = path.join(state, 'keys');
    fs.mkdirSync(keys, { mode: 0o700 });
    expect(existingHostKey(state)).toBeNull();
    const a = writeKeyPair(path.join(keys, 'host'));
    const first = existingHostKey(state)!;
    expect(existingHostKey(state)).toBe(first); // parsed once
    expect(rawPublicKey(first).toString('hex')).toBe(pub(a.privatePath));
    const b = writeKeyPair(path.join(state, 'b'));
    fs.renameSync(b.privatePath, path.join(keys, 'host.key'));
    expect(rawPublicKey(existingHostKey(state)!).toString('hex')).toBe(pub(path.join(keys, 'host.key')));
    expect(rawPublicKey(existingHostKey(state)!).toString('hex')).not.toBe(rawPublicKey(first).toString('hex'));
    fs.rmSync(path.join(keys, 'host.key'));
    expect(existingHostKey(state)).toBeNull();
  });

  it("a key's raw public key is a copy: changing one answer changes nothing for the next", () => {
    const { live } = twoKeysLiveIsFirst();
    const k = loadPrivateKey(live);
    const raw = rawPublicKey(k);
    raw.fill(0);
    expect(rawPublicKey(k).equals(raw)).toBe(false);
  });

  it('a login user added to passwd has their home in the next answer', () => {
    const d = tmp();
    const passwd = path.join(d, 'passwd');
    fs.writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n');
    expect(loginHomes(passwd)).toEqual(['/root']);
    expect(loginHomes(passwd)).toEqual(['/root']);
    fs.appendFileSync(passwd, 'agent:x:1000:1000::/home/agent:/bin/sh\n');
    expect(loginHomes(passwd)).toEqual(['/root', '/home/agent']);
    // the answer is a copy: a caller that changes it changes nothing for the next one
    loginHomes(passwd).push('/tmp/forged');
    expect(loginHomes(passwd)).toEqual(['/root', '/home/agent']);
  });
});
