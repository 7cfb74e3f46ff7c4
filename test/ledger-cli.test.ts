import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as keygen } from '../src/cli/keygen.js';
import { run as verify } from '../src/cli/verify.js';
import { loadPrivateKey, loadPublicKey, keyIdOf } from '../src/ledger/index.js';
import { tempDir, writeSession } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try { return { code: await fn(), out, err }; } finally { o.mockRestore(); e.mockRestore(); }
}

describe('witness keygen', () => {
  it('writes PREFIX.key (0600) and PREFIX.pub, and refuses to overwrite', async () => {
    const dir = tempDir('keygen');
    roots.push(dir);
    const prefix = path.join(dir, 'witness');
    const r = await capture(() => keygen(['--out', prefix]));
    expect(r.code).toBe(0);
    expect(fs.statSync(`${prefix}.key`).mode & 0o777).toBe(0o600);
    const priv = loadPrivateKey(`${prefix}.key`);
    const pub = loadPublicKey(`${prefix}.pub`);
    expect(keyIdOf(pub)).toBe(keyIdOf(priv));
    expect(r.out).toContain(`key id ${keyIdOf(pub)}`);
    const msg = Buffer.from('m');
    expect(crypto.verify(null, msg, pub, crypto.sign(null, msg, priv))).toBe(true);
    await expect(keygen(['--out', prefix])).rejects.toThrow(/cannot create private key/);
    await expect(keygen([])).rejects.toThrow(/--out/);
  });

  it('refuses a signing key readable by other users', async () => {
    const dir = tempDir('keymode');
    roots.push(dir);
    await capture(() => keygen(['--out', path.join(dir, 'k')]));
    fs.chmodSync(path.join(dir, 'k.key'), 0o644);
    expect(() => loadPrivateKey(path.join(dir, 'k.key'))).toThrow(/accessible to other users/);
  });
});

describe('witness verify on a state dir', () => {
  it('verifies the host ledger and every session in it; bad arguments are typed errors', async () => {
    const stateDir = tempDir('cli-state');
    roots.push(stateDir);
    await capture(() => keygen(['--out', path.join(stateDir, 'signer')]));
    const key = loadPrivateKey(path.join(stateDir, 'signer.key'));
    await writeSession({ stateDir, signKey: key }, 3);
    await writeSession({ stateDir, signKey: key }, 4);
    const ok = await capture(() => verify(['--pubkey', path.join(stateDir, 'signer.pub'), '--fast', stateDir]));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^VERIFIED global .*2 records, 2 checkpoints, 2 sessions/);
    await expect(verify(['--bogus', stateDir])).rejects.toThrow(/unknown option/);
    await expect(verify(['--pubkey', path.join(stateDir, 'nope.pub'), stateDir])).rejects.toThrow(/nope\.pub/);
    expect((await capture(() => verify([]))).code).toBe(2);
  });
});
