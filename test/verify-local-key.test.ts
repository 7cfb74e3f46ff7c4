import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EXIT_UNPINNED, run as verifyCli } from '../src/cli/verify.js';
import { findLocalHostKey } from '../src/ledger/local-key.js';
import { loadOrCreateHostKey } from '../src/ledger/session.js';
import { writeKeyPair } from '../src/ledger/keys.js';
import { newKey, tempDir, writeSession } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try { return { code: await verifyCli(argv), out, err }; } finally { o.mockRestore(); e.mockRestore(); }
}

/** A state dir whose default host key signed one session, as after the quick start. */
async function stateWithHostKey(): Promise<{ stateDir: string; session: string }> {
  const stateDir = tempDir('localkey');
  roots.push(stateDir);
  const session = await writeSession({ stateDir, signKey: loadOrCreateHostKey(stateDir) }, 10);
  return { stateDir, session };
}

describe('verify pins the state dir\'s own host key by default', () => {
  it('state dir and a session inside it: pinned, says which key, VERIFIED with signer pinned', async () => {
    const { stateDir, session } = await stateWithHostKey();
    for (const target of [stateDir, session]) {
      const r = await cli([target]);
      expect(r.code, r.out + r.err).toBe(0);
      expect(r.err).toContain(`verify: pinned ${path.join(fs.realpathSync(stateDir), 'keys', 'host.pub')}`);
      expect(r.err).not.toMatch(/UNPINNED/);
      expect(r.out).toMatch(/^VERIFIED .*signer pinned\)$/m);
    }
  });

  it('a session signed by another key in the same state dir is not pinned: the warning names the host key', async () => {
    const { stateDir } = await stateWithHostKey();
    const other = await writeSession({ stateDir, signKey: newKey() }, 10);
    for (const target of [other, stateDir]) {
      const r = await cli([target]);
      expect(r.err).toContain(`not every signature is by this state dir's host key ${path.join(fs.realpathSync(stateDir), 'keys', 'host.pub')}`);
      expect(r.err).not.toMatch(/verify: pinned/);
      expect(r.out).toMatch(/SIGNER UNPINNED/);
      expect(r.code).toBe(EXIT_UNPINNED);
    }
  });

  it('a tampered session of the host key is MISMATCH, not rescued by the unpinned retry', async () => {
    const { session } = await stateWithHostKey();
    const events = path.join(session, 'events.ndjson');
    fs.writeFileSync(events, fs.readFileSync(events, 'utf8').replace('file-3.ts', 'file-4.ts'));
    const r = await cli([session]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^MISMATCH events\.ndjson/);
  });

  it('a host.pub swapped for another key is refused, never pinned', async () => {
    const { stateDir } = await stateWithHostKey();
    const other = writeKeyPair(path.join(stateDir, 'other'));
    fs.copyFileSync(other.publicPath, path.join(stateDir, 'keys', 'host.pub'));
    expect(() => findLocalHostKey(stateDir)).toThrow(/keys\/host\.pub is not the public half of keys\/host\.key/);
  });

  it('no host key above the path: unpinned, with the warning', async () => {
    const { session } = await stateWithHostKey();
    const alone = tempDir('nokey');
    roots.push(alone);
    fs.cpSync(session, alone, { recursive: true });
    expect(findLocalHostKey(alone)).toBeNull();
    const r = await cli([alone]);
    expect(r.code).toBe(EXIT_UNPINNED);
    expect(r.err).toMatch(/SIGNER UNPINNED: no --pubkey given/);
  });
});
