import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CosignerServer } from '../src/cosigner/server.js';
import { WitnessPusher, takeWitnessFlags } from '../src/cosigner/push.js';
import { readContinuity } from '../src/ledger/continuity.js';
import { cosignature } from '../src/index.js';
import { loadVerifierKey } from '../src/ledger/note-key-files.js';
import { splitNote } from '../src/ledger/note.js';
import { newKey, tempDir, writeSession } from './helpers/ledger-fixtures.js';
import { testKey } from './helpers/c2sp.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

describe('the sensor pushes continuity checkpoints to witnesses', () => {
  it('cosigns in order, resends from the size a 409 reports, bounds and counts its queue', async () => {
    const base = tempDir('push');
    roots.push(base);
    const stateDir = path.join(base, 'state');
    await writeSession({ stateDir, signKey: newKey() }, 100); // 4 session checkpoints + 1 host-ledger checkpoint
    const witness = testKey('witness.example/w1', 4);
    const server = new CosignerServer({ stateDir: path.join(base, 'w'), key: witness.signer, logs: [loadVerifierKey(path.join(stateDir, 'keys', 'host.vkey'))] });
    const url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
    try {
      const target = { url, vkey: witness.verifier };
      const p1 = new WitnessPusher({ stateDir, witnesses: [target] });
      await p1.sync();
      let c = readContinuity(stateDir);
      const n = c.checkpoints.length;
      expect(n).toBeGreaterThanOrEqual(5);
      expect(p1.snapshot()[0]).toMatchObject({ cosigned: n, size: n, pending: 0, dropped: 0, conflicts: 0 });
      // one cosignature per checkpoint, in order, each verifying over its own checkpoint
      expect(c.cosignatures.map((x) => x.size)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      for (const x of c.cosignatures) expect(cosignature.verify(splitNote(c.checkpoints[x.size - 1]!.note).text, x.line, witness.vkey)).toBeGreaterThan(0);

      // The pusher loses its record of the witness (fresh install): 409 tells it the size; it resends from there.
      for (const f of fs.readdirSync(path.join(stateDir, 'continuity'))) if (f.startsWith('witness-')) fs.rmSync(path.join(stateDir, 'continuity', f));
      await writeSession({ stateDir, signKey: newKey() }, 30);
      const p2 = new WitnessPusher({ stateDir, witnesses: [target] });
      await p2.sync();
      c = readContinuity(stateDir);
      expect(p2.snapshot()[0]).toMatchObject({ conflicts: 1, size: c.checkpoints.length, pending: 0 });

      // Unreachable: counted, nothing lost; a bounded queue skips (and counts) the oldest when it overflows.
      const dead = { url: 'http://127.0.0.1:9', vkey: testKey('witness.example/down', 4).verifier };
      const p3 = new WitnessPusher({ stateDir, witnesses: [dead], maxQueue: 3, timeoutMs: 1000 });
      await p3.sync();
      const s3 = p3.snapshot()[0]!;
      expect(s3.unreachable).toBe(1);
      expect(s3.dropped).toBe(c.checkpoints.length - 3);
      expect(s3.pending).toBe(3);
      await p3.sync();
      expect(p3.snapshot()[0]!.dropped).toBe(c.checkpoints.length - 3); // counted once, not per retry
    } finally {
      await server.close();
    }
  });

  it('--witness URL=VKEYFILE is taken out before the usual flags', () => {
    const dir = tempDir('flags');
    roots.push(dir);
    const w = testKey('w.example/1', 4);
    fs.writeFileSync(path.join(dir, 'w.vkey'), w.vkey);
    const r = takeWitnessFlags(['--json', '--witness', `http://127.0.0.1:7380/=${path.join(dir, 'w.vkey')}`, '--', 'sh', '--witness', 'x']);
    expect(r.argv).toEqual(['--json', '--', 'sh', '--witness', 'x']);
    expect(r.witnesses.map((x) => [x.url, x.vkey.name])).toEqual([['http://127.0.0.1:7380', 'w.example/1']]);
    expect(() => takeWitnessFlags(['--witness', 'nourl'])).toThrow(/URL=VKEYFILE/);
  });
});
