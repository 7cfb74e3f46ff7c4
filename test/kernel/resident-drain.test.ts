import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { kernelSuite } from '../helpers/kernel.js';
import { runCollect, startResidentDaemon, stopDaemon, WITNESS_BIN, type TestDaemon } from '../helpers/resident-daemon.js';

/**
 * The end of a resident run drains the daemon's ring at once (sensor.flushSoon) instead of
 * waiting out its poll thread's maxLatencyMs for the guardian's exit record. Here that
 * latency is 5 s, past the 2 s the daemon waits for the record: without the early drain the
 * barrier times out (`witness.loss.resident_barrier_timeout`) and the tree's last records,
 * still in the daemon's batch, never reach the session. With it, every record is there.
 */
const { skip } = kernelSuite();
const run = (args: string[], env: NodeJS.ProcessEnv) => runCollect(process.execPath, [WITNESS_BIN, ...args], env);

describe.skipIf(skip)('a resident run drains the daemon\'s ring when its tree is done', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-resident-drain-'));
  const sock = join(dir, 'resident.sock');
  const state = join(dir, 'state');
  let daemon: TestDaemon;
  const env: NodeJS.ProcessEnv = { ...process.env, WITNESS_RESIDENT: 'on', WITNESS_RESIDENT_SOCKET: sock, WITNESS_STATE_DIR: state };

  beforeAll(async () => {
    writeFileSync(join(dir, 'w.json'), JSON.stringify({
      stateDir: state, scopeSocket: join(dir, 'scope.sock'),
      store: { enabled: false }, pulse: { enabled: false }, ledger: { enabled: false },
      sensor: { maxLatencyMs: 5000 },
    }));
    chmodSync(dir, 0o755);
    daemon = await startResidentDaemon(join(dir, 'w.json'), sock);
  });

  afterAll(async () => {
    await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tree\'s last records (a child\'s exec and exit, the root\'s exit) are in the session, and no barrier timed out', async () => {
    const r = await run(['run', '--user', 'nobody', '--session-dir', join(dir, 's'), '--out', join(dir, 'out.ndjson'), '--',
      '/bin/sh', '-c', '/bin/true; exit 7'], env);
    expect(r.code, r.stderr).toBe(7);
    const s = JSON.parse(readFileSync(join(dir, 's', 'session.json'), 'utf8')) as { agent: Record<string, unknown>; exit_code: number };
    expect(s.agent['witness.sensor.resident_pid'], 'the run must have gone through the daemon').toBe(daemon.proc.pid);
    expect(s.exit_code).toBe(7);
    const ev = readFileSync(join(dir, 'out.ndjson'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Envelope);
    const exits = ev.filter((e) => e.event === 'process.exit');
    expect(ev.some((e) => e.event === 'process.exec' && String(e.attributes['process.executable.path']).endsWith('/true'))).toBe(true);
    expect(exits.map((e) => e.attributes['process.exit.code']).sort()).toEqual([0, 7]);
    const beat = ev.filter((e) => e.event === 'sensor.heartbeat').at(-1)!.attributes;
    expect(beat['witness.loss.resident_barrier_timeout']).toBeUndefined();
    expect(daemon.stderr()).not.toContain('did not arrive');
  });
});
