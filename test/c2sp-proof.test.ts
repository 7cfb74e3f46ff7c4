import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as proveCli } from '../src/cli/prove.js';
import { run as verifyProofCli } from '../src/cli/verify-proof.js';
import { CosignerServer } from '../src/cosigner/server.js';
import { WitnessPusher } from '../src/cosigner/push.js';
import { verifyEventProof } from '../src/ledger/event-proof.js';
import { loadVerifierKey } from '../src/ledger/note-key-files.js';
import { tlogProof } from '../src/index.js';
import { eventLine, newKey, tempDir, writeSession } from './helpers/ledger-fixtures.js';
import { testKey } from './helpers/c2sp.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

async function cli(fn: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try { return { code: await fn(argv), out }; } finally { o.mockRestore(); e.mockRestore(); }
}

describe('witness prove / verify-proof (c2sp.org/tlog-proof)', () => {
  it('round trips one event for a third party; any flipped byte is rejected', async () => {
    const base = tempDir('proof');
    roots.push(base);
    const stateDir = path.join(base, 'state');
    const sessionDir = await writeSession({ stateDir, signKey: newKey() }, 80);
    const sessionId = path.basename(sessionDir);
    const witness = testKey('witness.example/w1', 4);
    const hostVkeyPath = path.join(stateDir, 'keys', 'host.vkey');
    const logKey = loadVerifierKey(hostVkeyPath);
    const server = new CosignerServer({ stateDir: path.join(base, 'w'), key: witness.signer, logs: [logKey] });
    const url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
    try {
      // before any witness has seen it, a proof that requires the witness fails
      const early = await cli(proveCli, ['--event', `${sessionId}:17`, stateDir]);
      expect(early.code).toBe(0);
      expect(() => verifyEventProof(early.out, logKey, [witness.verifier])).toThrow(/not cosigned by witness witness.example\/w1/);

      await new WitnessPusher({ stateDir, witnesses: [{ url, vkey: witness.verifier }] }).sync();
      const proved = await cli(proveCli, ['--event', `${sessionId}:17`, stateDir]);
      const file = path.join(base, 'e.tlog-proof');
      fs.writeFileSync(file, proved.out);
      expect(proved.out.startsWith('c2sp.org/tlog-proof@v1\nextra ')).toBe(true);
      const parsed = tlogProof.parse(proved.out);
      expect(parsed.checkpoint).toContain('\n— witness.example/w1 ');

      const wv = path.join(base, 'w1.vkey');
      fs.writeFileSync(wv, witness.vkey);
      const ok = await cli(verifyProofCli, ['--pubkey', hostVkeyPath, '--witness', wv, '--json', file]);
      expect(ok.code).toBe(0);
      const r = JSON.parse(ok.out);
      // seq 0 is sensor.start, so the session's 17th record is eventLine(16)
      expect(r).toMatchObject({ result: 'VERIFIED', log: 'session', logId: sessionId, seq: 17, event: eventLine(16), origin: logKey.name });
      expect(r.witnesses.map((w: { name: string }) => w.name)).toEqual(['witness.example/w1']);

      // host-ledger row (bare seq) too
      const row = await cli(proveCli, ['--event', '0', stateDir]);
      expect(verifyEventProof(row.out, logKey, [witness.verifier]).log).toBe('global');

      // every single flipped byte fails
      const bytes = Buffer.from(proved.out, 'utf8');
      let accepted = 0;
      for (let i = 0; i < bytes.length; i++) {
        const b = Buffer.from(bytes);
        b[i] = b[i]! ^ 0x01;
        try { verifyEventProof(b.toString('utf8'), logKey, [witness.verifier]); accepted++; } catch { /* rejected */ }
      }
      expect(accepted).toBe(0);
      const flipped = Buffer.from(bytes);
      flipped[flipped.indexOf('index ') + 6] ^= 0x01;
      fs.writeFileSync(file, flipped);
      const bad = await cli(verifyProofCli, ['--pubkey', hostVkeyPath, '--witness', wv, file]);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/^MISMATCH /);
    } finally {
      await server.close();
    }
  });
});
