import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CosignerServer } from '../src/cosigner/server.js';
import { CosignerState } from '../src/cosigner/state.js';
import { cosignature, merkle } from '../src/index.js';
import { encodeSignerKey } from '../src/ledger/note-keys.js';
import { addBody, leaves, post, signedCheckpoint, testKey } from './helpers/c2sp.js';
import { tempDir } from './helpers/ledger-fixtures.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

const log = testKey('example.org/log', 1);
const other = testKey('example.org/other', 1);
const impostor = testKey('example.org/log', 1); // same name, different key
const witness = testKey('witness.example/w1', 4);
const L = leaves(40);

async function start(stateDir: string, clock: { t: number }): Promise<{ server: CosignerServer; url: string }> {
  const server = new CosignerServer({ stateDir, key: witness.signer, logs: [log.verifier, other.verifier], now: () => clock.t });
  const addr = await server.listen('127.0.0.1', 0);
  return { server, url: `http://127.0.0.1:${addr.port}` };
}

describe('cosigner: POST /add-checkpoint per c2sp.org/tlog-witness', () => {
  it('answers every status code, persists across a restart, and logs refusals as evidence', async () => {
    const stateDir = tempDir('cosigner');
    roots.push(stateDir);
    const clock = { t: 1_700_000_000 };
    let { server, url } = await start(stateDir, clock);
    try {
      const cp5 = signedCheckpoint(log.signer, L, 5);
      // 404: an origin the witness does not know
      expect((await post(url, addBody(0, [], signedCheckpoint(testKey('example.org/unknown', 1).signer, L, 5).note))).status).toBe(404);
      // 403: known origin, no signature from a trusted key (impostor key, or a corrupted signature)
      expect((await post(url, addBody(0, [], signedCheckpoint(impostor.signer, L, 5).note))).status).toBe(403);
      const corrupted = cp5.note.replace(/ (.)(\S+)\n$/, (_m, c: string, rest: string) => ` ${c === 'A' ? 'B' : 'A'}${rest}\n`);
      expect((await post(url, addBody(0, [], corrupted))).status).toBe(403);
      // 400: old > size, and malformed bodies
      expect((await post(url, addBody(6, [], cp5.note))).status).toBe(400);
      expect((await post(url, `old 01\n\n${cp5.note}`)).status).toBe(400);
      expect((await post(url, `old 0\n${cp5.note}`)).status).toBe(400);
      // 422: a non-empty proof from size 0
      expect((await post(url, addBody(0, [Buffer.alloc(32)], cp5.note))).status).toBe(422);
      // 200: first checkpoint, cosigned with the witness clock
      let r = await post(url, addBody(0, [], cp5.note));
      expect(r.status).toBe(200);
      expect(r.text.endsWith('\n') && r.text.startsWith('— witness.example/w1 ')).toBe(true);
      expect(cosignature.verify(cp5.body, r.text, witness.vkey)).toBe(1_700_000_000);
      // 409 with text/x.tlog.size: stale old size
      const cp8 = signedCheckpoint(log.signer, L, 8);
      r = await post(url, addBody(0, [], cp8.note));
      expect([r.status, r.text, r.type]).toEqual([409, '5\n', 'text/x.tlog.size']);
      // 422: a proof that does not verify
      const good = merkle.consistencyProof(L.slice(0, 8), 5);
      const bad = good.map((h, i) => (i === 0 ? Buffer.alloc(32, 9) : h));
      expect((await post(url, addBody(5, bad, cp8.note))).status).toBe(422);
      // 409: same size, different root (a fork at the size the witness holds)
      const fork5 = signedCheckpoint(log.signer, leaves(40, 'fork'), 5);
      r = await post(url, addBody(5, [], fork5.note));
      expect([r.status, r.text, r.type]).toEqual([409, '5\n', 'text/x.tlog.size']);
      // same size, same root: cosigned again
      clock.t += 10;
      expect((await post(url, addBody(5, [], cp5.note))).status).toBe(200);
      // 200: consistent growth
      clock.t += 10;
      r = await post(url, addBody(5, good, cp8.note));
      expect(r.status).toBe(200);
      expect(cosignature.verify(cp8.body, r.text, witness.vkey)).toBe(1_700_000_020);

      const refused = server.state.refused();
      expect(refused.map((x) => x.status)).toEqual([400, 422, 409, 422, 409]);
      expect(refused.find((x) => x.reason.includes('fork'))!.request).toContain(fork5.note);

      // restart: the witness still holds size 8
      await server.close();
      ({ server, url } = await start(stateDir, clock));
      r = await post(url, addBody(0, [], signedCheckpoint(log.signer, L, 9).note));
      expect([r.status, r.text]).toEqual([409, '8\n']);
      const held = await fetch(`${url}/checkpoint/${encodeURIComponent('example.org/log')}`);
      const heldText = await held.text();
      expect(heldText.startsWith(cp8.note)).toBe(true);
      expect(cosignature.verify(cp8.body, heldText.slice(cp8.note.length), witness.vkey)).toBe(1_700_000_020);
      // one cosigner per state dir
      expect(() => new CosignerState(stateDir)).toThrow(/another writer/);
    } finally {
      await server.close();
    }
  });

  it('two racing requests cannot roll the stored size back', async () => {
    const stateDir = tempDir('cosigner-race');
    roots.push(stateDir);
    const clock = { t: 1_700_000_000 };
    const { server, url } = await start(stateDir, clock);
    try {
      const all = leaves(200, 'race');
      expect((await post(url, addBody(0, [], signedCheckpoint(other.signer, all, 1).note))).status).toBe(200);
      let held = 1;
      for (let round = 0; round < 20; round++) {
        // From the same old size, a small and a large step race each other.
        const sizes = [held + 1 + (round % 3), held + 5 + round];
        const results = await Promise.all(sizes.map((s) => post(url, addBody(held, merkle.consistencyProof(all.slice(0, s), held), signedCheckpoint(other.signer, all, s).note))));
        const won = results.map((r, i) => (r.status === 200 ? sizes[i]! : -1)).filter((s) => s > 0);
        expect(won.length).toBe(1);
        const lost = results.find((r) => r.status !== 200)!;
        expect([lost.status, lost.text]).toEqual([409, `${won[0]}\n`]);
        expect(server.state.get('example.org/other')!.size).toBe(won[0]);
        held = won[0]!;
      }
    } finally {
      await server.close();
    }
  });

  it('witness cosigner serve runs as its own unprivileged user', async () => {
    expect(process.getuid?.(), 'this test drops root; run it as root').toBe(0);
    const dir = tempDir('cosigner-user');
    roots.push(dir);
    fs.chmodSync(dir, 0o755);
    const keyPath = path.join(dir, 'w.key');
    fs.writeFileSync(keyPath, witness.signer.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'w.vkey'), `${witness.vkey}\n`);
    fs.writeFileSync(path.join(dir, 'log.vkey'), `${log.vkey}\n`);
    expect(encodeSignerKey(witness.signer.name, 4, witness.signer.privateKey)).toContain('PRIVATE+KEY+witness.example/w1+');
    const bin = path.resolve('bin/witness.js');
    const child = spawn(process.execPath, [bin, 'cosigner', 'serve', '--listen', '127.0.0.1:0', '--key', keyPath, '--log', path.join(dir, 'log.vkey'), '--state', path.join(dir, 'state'), '--user', 'nobody'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => { out += d; const m = /listening .*:(\d+)\n/.exec(out); if (m) resolve(Number(m[1])); });
        child.stderr.on('data', (d: Buffer) => { err += d; });
        child.once('exit', (code) => reject(new Error(`cosigner exited ${code}: ${err}`)));
      });
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)/m.exec(status)![1]).toBe('65534');
      const cp = signedCheckpoint(log.signer, L, 3);
      const r = await post(`http://127.0.0.1:${port}`, addBody(0, [], cp.note));
      expect(r.status).toBe(200);
      expect(cosignature.verify(cp.body, r.text, witness.vkey)).toBeGreaterThan(0);
      const st = fs.statSync(path.join(dir, 'state', 'origins'));
      expect(st.uid).toBe(65534);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
