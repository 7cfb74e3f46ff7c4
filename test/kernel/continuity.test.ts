import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CosignerServer } from '../../src/cosigner/server.js';
import { readContinuity } from '../../src/ledger/continuity.js';
import { parseCheckpointLine } from '../../src/ledger/checkpoint.js';
import { loadVerifierKey } from '../../src/ledger/note-key-files.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';
import { testKey } from '../helpers/c2sp.js';

const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  // async: the cosigner answering the CLI lives in this process
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    c.stdout.on('data', (d) => { out += String(d); });
    c.stderr.on('data', (d) => { err += String(d); });
    c.once('exit', (code) => resolve({ code, out, err }));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip)('witnessed continuity from the real sensor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-continuity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  const env = { ...process.env, WITNESS_STATE_DIR: state };
  const witness = testKey('witness.test/w1', 4);
  const wv = join(dir, 'w1.vkey');
  writeFileSync(wv, `${witness.vkey}\n`);

  it('daemon: a checkpoint per pulse window, pushed and cosigned; verify --from --to passes; run --witness; prove one event', async () => {
    mkdirSync(join(state, 'keys'), { recursive: true, mode: 0o700 });
    // the log's origin chosen before first use, as docs/continuity.md says
    expect(spawnSync(process.execPath, [BIN, 'keygen', '--out', join(state, 'keys', 'host'), '--name', 'test.example/agent-host'], { env }).status).toBe(0);
    const hostVkey = join(state, 'keys', 'host.vkey');
    const server = new CosignerServer({ stateDir: join(dir, 'cosigner'), key: witness.signer, logs: [loadVerifierKey(hostVkey)] });
    const url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
    try {
      const config = join(dir, 'witness.json');
      writeFileSync(config, JSON.stringify({
        stateDir: state, scopeSocket: join(dir, 'scope.sock'),
        heartbeat: '500ms', ledger: { enabled: true }, witnesses: [{ url, vkey: wv }],
        pulse: { tick: '200ms', options: { windowMs: 2000, maxSilenceMs: 1500 } },
      }));
      const daemon = spawn(process.execPath, [BIN, 'daemon', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      daemon.stderr.on('data', (d) => { stderr += String(d); });
      const windowLeaves = (): number => readContinuity(state).leaves.filter((l) => (parseCheckpointLine(l) as { predicate: { reason: string } }).predicate?.reason === 'window').length;
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline && (!existsSync(join(state, 'continuity')) || windowLeaves() < 5 || readContinuity(state).cosignatures.length < 5)) await sleep(250);
      await sleep(2200); // one more push round
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
      const c = readContinuity(state);
      expect(windowLeaves(), stderr).toBeGreaterThanOrEqual(5);
      // windows 2..4 that the daemon closed: each has its checkpoint, cosigned
      const times = c.leaves.map((l) => parseCheckpointLine(l)).flatMap((p) => (typeof p === 'string' || p.predicate.reason !== 'window' ? [] : [Date.parse(p.predicate.time)]));
      const from = Math.floor(times[1]! / 2000) * 2000 - 2000;
      const to = Math.floor(times[4]! / 2000) * 2000;
      const v = await cli(['verify', '--pubkey', hostVkey, '--witness', wv, '--from', new Date(from).toISOString(), '--to', new Date(to).toISOString(), '--window', '2s', '--json', state], env);
      const report = JSON.parse(v.out);
      expect(report.failures, v.out).toEqual([]);
      expect(v.code).toBe(0);
      expect(report.windows.length).toBe((to - from) / 2000);
      for (const w of report.windows) expect(w.status).toBe('ok');

      // witness run --witness: the session's checkpoints are cosigned before it exits; one event proved
      const r = await cli(['run', '--user', 'nobody', '--json', '--witness', `${url}=${wv}`, '--', '/bin/sh', '-c', 'echo proved > /dev/null'], env);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(/witness: witness.test\/w1 cosigned \d+, size \d+, pending 0, dropped 0/);
      const session = /witness: session (\S+)/.exec(r.err)![1]!;
      const id = session.split('/').pop()!;
      const p = await cli(['prove', '--event', `${id}:1`, state], env);
      expect(p.code, p.err).toBe(0);
      writeFileSync(join(dir, 'e.tlog-proof'), p.out);
      const ok = await cli(['verify-proof', '--pubkey', hostVkey, '--witness', wv, '--json', join(dir, 'e.tlog-proof')], env);
      expect(ok.code, ok.out + ok.err).toBe(0);
      const proved = JSON.parse(ok.out);
      expect(proved).toMatchObject({ result: 'VERIFIED', log: 'session', logId: id, seq: 1 });
      expect(JSON.parse(proved.event).event).toMatch(/^[a-z]+\./);
      expect(readFileSync(join(dir, 'e.tlog-proof'), 'utf8')).toContain('\n— witness.test/w1 ');
    } finally {
      await server.close();
    }
  }, 120_000);
});
