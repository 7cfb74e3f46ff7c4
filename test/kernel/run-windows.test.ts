import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const STATE = mkdtempSync(join(tmpdir(), 'witness-state-'));

const witness = (args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, WITNESS_STATE_DIR: STATE } });

/** A session ledger seals a checkpoint at every pulse window close, on the daemon's wall-clock grid. */
describe.skipIf(skip)('witness run: a checkpoint at every pulse window close', () => {
  afterAll(() => rmSync(STATE, { recursive: true, force: true }));

  it('--window 1s over a 2.6 s agent: at least two window checkpoints, each on a window boundary, and the session verifies', () => {
    const session = join(STATE, 'windowed');
    const r = witness(['run', '--no-resident', '--user', 'nobody', '--window', '1s', '--session-dir', session, '--', '/bin/sleep', '2.6']);
    expect(r.status, r.stderr).toBe(0);
    // each line is a DSSE envelope; the statement's predicate says why and when it was sealed
    const predicates = readFileSync(join(session, 'checkpoints.ndjson'), 'utf8').trim().split('\n')
      .map((l) => (JSON.parse(Buffer.from((JSON.parse(l) as { payload: string }).payload, 'base64').toString('utf8')) as { predicate: { reason: string; time: string } }).predicate);
    const windows = predicates.filter((p) => p.reason === 'window');
    expect(windows.length).toBeGreaterThanOrEqual(2);
    // on the grid: within a timer's slack of a whole second
    for (const w of windows) {
      const off = Date.parse(w.time) % 1000;
      expect(Math.min(off, 1000 - off)).toBeLessThan(250);
    }
    // one per boundary: never two for the same second
    const seconds = windows.map((w) => Math.round(Date.parse(w.time) / 1000));
    expect(new Set(seconds).size).toBe(seconds.length);
    const ok = witness(['verify', session]);
    expect(ok.stdout).toMatch(/^VERIFIED/);
    expect(ok.status).toBe(0);
  });

  it('a bad --window is one clear error, and nothing is spawned', () => {
    const r = witness(['run', '--no-resident', '--user', 'nobody', '--window', 'soon', '--', '/bin/true']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--window/);
  });
});
