import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as verifyCli } from '../src/cli/verify.js';
import { CosignerServer } from '../src/cosigner/server.js';
import { WitnessPusher } from '../src/cosigner/push.js';
import { signCheckpoint, type CheckpointPredicate } from '../src/ledger/checkpoint.js';
import { appendContinuity } from '../src/ledger/continuity.js';
import type { PeriodReport } from '../src/ledger/continuity-period.js';
import { keyIdOf, rawPublicKey } from '../src/ledger/keys.js';
import { hostNoteSigner } from '../src/ledger/note-key-files.js';
import { newKey, tempDir } from './helpers/ledger-fixtures.js';
import { testKey } from './helpers/c2sp.js';

const roots: string[] = [];
afterAll(() => { for (const r of roots) fs.rmSync(r, { recursive: true, force: true }); });

const H = 3_600_000;
const T0 = Date.parse('2026-11-02T00:00:00Z');
const at = (h: number, m = 0, s = 0): number => T0 + h * H + m * 60_000 + s * 1000;

/**
 * A daemon on a fake clock: each seal is a real DSSE ledger checkpoint line
 * (as LedgerLog writes them) appended to the continuity log, as the
 * LedgerLog hook does, with the time the fake clock says.
 */
class FakeDaemon {
  private epoch = 'e1';
  private index = 0;
  private size = 0;
  private restarts = 0;
  drops = 0;
  private readonly key = newKey();
  private readonly signer;
  constructor(private readonly stateDir: string, private readonly clock: { ms: number }) { this.signer = hostNoteSigner(stateDir); }
  /** A new epoch is a new log: its counters start over, as a restarted sensor's do. */
  newEpoch(name: string): void { this.epoch = name; this.index = 0; this.size = 0; this.drops = 0; }
  crashRestart(): void { this.restarts++; }
  seal(reason: CheckpointPredicate['reason']): void {
    this.size += 7;
    const predicate: CheckpointPredicate = {
      log: 'daemon', log_id: `${this.epoch}/0`, index: this.index++, reason, tree_size: this.size,
      root_hash: crypto.createHash('sha256').update(`${this.epoch}:${this.size}`).digest('hex'),
      chain_head: crypto.createHash('sha256').update(`chain:${this.epoch}:${this.size}`).digest('hex'),
      frontier: [], events_file: 'segment-000000.ndjson', events_bytes: this.size * 100, prev_checkpoint_sha256: null,
      prev_tree_size: 0, consistency_proof: [], counters: { 'ledger.records': this.size }, drops: { 'ring.lost': this.drops },
      sensor_boot_id: 'boot-a', restart_count: this.restarts, time: new Date(this.clock.ms).toISOString(),
      public_key: rawPublicKey(this.key).toString('base64'),
    };
    appendContinuity(this.stateDir, signCheckpoint(predicate, this.key, keyIdOf(this.key)), { signer: this.signer, now: () => new Date(this.clock.ms) });
  }
}

async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try { return { code: await verifyCli(argv), out }; } finally { o.mockRestore(); e.mockRestore(); }
}

describe('witnessed continuity over a time-warped 72-hour run', () => {
  it('lists the sensor outage, the witness outage and the restarts, passes honest history, fails the rolled-back one', async () => {
    const base = tempDir('period');
    roots.push(base);
    const stateDir = path.join(base, 'state');
    const snapshot = path.join(base, 'snapshot');
    const witnessState = path.join(base, 'witness');
    const clock = { ms: T0 };
    const witness = testKey('witness.example/w1', 4);
    const daemon = new FakeDaemon(stateDir, clock);
    const hostVkeyPath = path.join(stateDir, 'keys', 'host.vkey');
    const witnessVkeyPath = path.join(base, 'w1.vkey');
    fs.writeFileSync(witnessVkeyPath, `${witness.vkey}\n`);
    const hostVkey = (await import('../src/ledger/note-key-files.js')).loadVerifierKey(hostVkeyPath);

    let server: CosignerServer | null = null;
    let port = 0;
    const startWitness = async (): Promise<void> => {
      server = new CosignerServer({ stateDir: witnessState, key: witness.signer, logs: [hostVkey], now: () => Math.floor(clock.ms / 1000) });
      port = (await server.listen('127.0.0.1', port)).port;
    };
    await startWitness();
    const url = `http://127.0.0.1:${port}`;
    const pusher = new WitnessPusher({ stateDir, witnesses: [{ url, vkey: witness.verifier }], now: () => clock.ms / 1000, timeoutMs: 2000 });
    const sync = async (): Promise<void> => { await pusher.sync(); };

    for (let h = 0; h < 72; h++) {
      if (h === 20) { clock.ms = at(20, 30); continue; } // killed at 20:30, no shutdown record
      if (h > 20 && h < 24) continue; // down
      if (h === 24) { clock.ms = at(24, 30); daemon.newEpoch('e2'); daemon.crashRestart(); daemon.seal('restart'); await sync(); }
      if (h === 30) daemon.drops += 17;
      if (h === 40) { clock.ms = at(40, 10); await server!.close(); server = null; }
      if (h === 42) { clock.ms = at(42, 10); await startWitness(); await sync(); } // back: the queue catches up in order
      if (h === 50) { clock.ms = at(50, 20); daemon.seal('shutdown'); clock.ms = at(50, 21); daemon.newEpoch('e3'); }
      clock.ms = at(h + 1, 0, 1); // the pulse closes window h
      daemon.seal('window');
      await sync();
      if (h === 59) fs.cpSync(stateDir, snapshot, { recursive: true }); // what an attacker keeps for later
    }
    const stats = pusher.snapshot()[0]!;
    expect(stats.unreachable).toBeGreaterThanOrEqual(1);
    expect(stats.pending).toBe(0);

    const args = ['--pubkey', hostVkeyPath, '--witness', witnessVkeyPath, '--from', new Date(T0).toISOString(), '--to', new Date(at(72)).toISOString()];
    const honest = await cli([...args, '--json', stateDir]);
    const report = JSON.parse(honest.out) as PeriodReport;
    if (process.env.C2SP_REPORT_DIR) {
      fs.writeFileSync(path.join(process.env.C2SP_REPORT_DIR, 'honest.json'), honest.out);
      fs.writeFileSync(path.join(process.env.C2SP_REPORT_DIR, 'honest.txt'), (await cli([...args, stateDir])).out);
    }
    expect(report.failures).toEqual([]);
    expect(honest.code).toBe(0);
    expect(report.windows.length).toBe(72);
    const status = (h: number): string => report.windows[h]!.status;
    for (const h of [20, 21, 22, 23]) expect(status(h)).toBe('gap');
    expect(report.gaps).toHaveLength(1);
    expect(report.gaps[0]).toMatchObject({ from: new Date(at(20)).toISOString(), to: new Date(at(24)).toISOString(), windows: 4 });
    expect(report.gaps[0]!.cause).toMatch(/sensor down from .*T20:00:01.* to .*T00:30:00.*restarted after a crash/);
    for (const h of [40, 41]) {
      expect(status(h)).toBe('late');
      expect(report.windows[h]!.cause).toMatch(/witness witness.example\/w1 unreachable/);
      expect(report.windows[h]!.cosigned['witness.example/w1']).toBe(new Date(at(42, 10)).toISOString());
    }
    expect(report.restarts.map((r) => r.time)).toEqual([new Date(at(24, 30)).toISOString(), new Date(at(51, 0, 1)).toISOString()]);
    expect(report.windows[24]!.restarts).toBe(1);
    expect(report.windows[50]!.restarts).toBe(1);
    expect(report.windows[50]!.cause).toMatch(/daemon restarted \(new epoch e3\)/);
    expect(report.windows[30]!.drops).toBe(17);
    expect(report.drops).toBe(17);
    const okHours = report.windows.filter((w) => w.status === 'ok').length;
    expect(okHours).toBe(72 - 4 - 2);

    // The rollback: the attacker restores the hour-60 snapshot and carries on from there.
    const held = path.join(base, 'held.checkpoint');
    fs.writeFileSync(held, await (await fetch(`${url}/checkpoint/${encodeURIComponent(hostVkey.name)}`)).text());
    const attacker = new FakeDaemon(snapshot, clock);
    attacker.newEpoch('e3');
    const attackerPusher = new WitnessPusher({ stateDir: snapshot, witnesses: [{ url, vkey: witness.verifier }], now: () => clock.ms / 1000 });
    for (let i = 0; i < 14; i++) {
      clock.ms = at(72, 0, 1 + i);
      attacker.seal('time');
      await attackerPusher.sync();
    }
    expect(attackerPusher.snapshot()[0]!.cosigned).toBe(0);
    expect(attackerPusher.snapshot()[0]!.lastError).toMatch(/fork|rolled back|HTTP 422/);
    const refused = server!.state.refused();
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map((r) => r.status))).toEqual(new Set([409, 422]));

    const rolled = await cli([...args, '--held', held, '--json', snapshot]);
    const bad = JSON.parse(rolled.out) as PeriodReport;
    if (process.env.C2SP_REPORT_DIR) {
      fs.writeFileSync(path.join(process.env.C2SP_REPORT_DIR, 'rollback.json'), rolled.out);
      fs.writeFileSync(path.join(process.env.C2SP_REPORT_DIR, 'rollback.txt'), (await cli([...args, '--held', held, snapshot])).out);
      fs.writeFileSync(path.join(process.env.C2SP_REPORT_DIR, 'refused.ndjson'), refused.map((r) => JSON.stringify(r)).join('\n'));
    }
    expect(rolled.code).toBe(1);
    expect(bad.result).toBe('MISMATCH');
    expect(bad.failures.some((f) => /FORK: witness witness.example\/w1 cosigned a different tree at size/.test(f))).toBe(true);
    for (let h = 60; h < 71; h++) expect(bad.windows[h]!.status).toBe('unexplained');
    // and without the held checkpoint, the attacker's new checkpoints are still uncosigned
    const noHeld = JSON.parse((await cli([...args, '--json', snapshot])).out) as PeriodReport;
    expect(noHeld.result).toBe('MISMATCH');
    // the honest dir with the held checkpoint still verifies
    expect((await cli([...args, '--held', held, stateDir])).code).toBe(0);
    await server!.close();
  });
});
