import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as keygen } from '../src/cli/keygen.js';
import { checkpoint, merkle, note } from '../src/index.js';
import { readContinuity } from '../src/ledger/continuity.js';
import { parseVerifierKey } from '../src/ledger/note-keys.js';
import { defaultOrigin } from '../src/ledger/note-key-files.js';
import { newKey, readLines, tempDir, writeSession } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

describe('witness keygen --name / --cosigner', () => {
  it('writes PREFIX.vkey: type 0x01 for a log, 0x04 for a cosigner', async () => {
    const dir = tempDir('vkey');
    roots.push(dir);
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await keygen(['--out', path.join(dir, 'log'), '--name', 'example.org/log'])).toBe(0);
      expect(await keygen(['--out', path.join(dir, 'w'), '--name', 'witness.example/w1', '--cosigner'])).toBe(0);
      await expect(keygen(['--out', path.join(dir, 'x'), '--cosigner'])).rejects.toThrow(/--name/);
    } finally { out.mockRestore(); }
    const log = parseVerifierKey(fs.readFileSync(path.join(dir, 'log.vkey'), 'utf8').trim());
    const w = parseVerifierKey(fs.readFileSync(path.join(dir, 'w.vkey'), 'utf8').trim());
    expect([log.name, log.alg, w.name, w.alg]).toEqual(['example.org/log', 1, 'witness.example/w1', 4]);
  });
});

describe('continuity log', () => {
  it('every ledger checkpoint of a state dir becomes a leaf with a signed C2SP checkpoint', async () => {
    const stateDir = tempDir('continuity');
    roots.push(stateDir);
    const dir = await writeSession({ stateDir, signKey: newKey() }, 60);
    await writeSession({ stateDir, signKey: newKey() }, 10);
    const vkeyText = fs.readFileSync(path.join(stateDir, 'keys', 'host.vkey'), 'utf8').trim();
    const vkey = parseVerifierKey(vkeyText);
    expect(vkey.name).toBe(defaultOrigin(stateDir));
    expect(vkey.alg).toBe(1);

    const c = readContinuity(stateDir);
    const sessionCheckpoints = readLines(path.join(dir, 'checkpoints.ndjson'));
    // each session checkpoint and each host-ledger checkpoint is a leaf, byte for byte
    for (const l of sessionCheckpoints) expect(c.leaves.map(String)).toContain(l);
    const globalCheckpoints = readLines(path.join(stateDir, 'ledger.checkpoints.ndjson'));
    for (const l of globalCheckpoints) expect(c.leaves.map(String)).toContain(l);
    expect(c.checkpoints.length).toBe(c.leaves.length);
    c.checkpoints.forEach((cp, i) => {
      const opened = note.open(cp.note, [vkeyText]);
      expect(opened.verified).toEqual([vkey.name]);
      const body = checkpoint.parse(opened.text);
      expect(body.origin).toBe(vkey.name);
      expect(body.size).toBe(i + 1);
      expect(Buffer.from(body.rootHash)).toEqual(Buffer.from(merkle.rootHash(c.leaves.slice(0, i + 1))));
    });
  });
});
