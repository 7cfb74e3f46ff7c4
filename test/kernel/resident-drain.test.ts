import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';

/**
 * The end of a resident run drains the daemon's ring at once (sensor.flushSoon) instead of
 * waiting out its poll thread's maxLatencyMs for the guardian's exit record. Here that
 * latency is 5 s, past the 2 s the daemon waits for the record: without the early drain the
 * barrier times out (`witness.loss.resident_barrier_timeout`) and the tree's last records,
 * still in the daemon's batch, never reach the session. With it, every record is there.
 */
const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');

interface Done { code: number | null; stdout: string; stderr: string }

function run(args: string[], env: NodeJS.ProcessEnv): Promise<Done> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.once('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

describe.skipIf(skip)('a resident run drains the daemon\'s ring when its tree is done', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-resident-drain-'));
  const sock = join(dir, 'resident.sock');
  const state = join(dir, 'state');
  let daemon: ChildProcess;
  let daemonErr = '';
  const env: NodeJS.ProcessEnv = { ...process.env, WITNESS_RESIDENT: 'on', WITNESS_RESIDENT_SOCKET: sock, WITNESS_STATE_DIR: state };

  beforeAll(async () => {
    writeFileSync(join(dir, 'w.json'), JSON.stringify({
      stateDir: state, scopeSocket: join(dir, 'scope.sock'),
      store: { enabled: false }, pulse: { enabled: false }, ledger: { enabled: false },
      sensor: { maxLatencyMs: 5000 },
    }));
    chmodSync(dir, 0o755);
    daemon = spawn(process.execPath, [BIN, 'daemon', '--config', join(dir, 'w.json')], {
      env: { ...process.env, WITNESS_LOG_LEVEL: 'info', NOTIFY_SOCKET: '' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (d: Buffer) => { daemonErr += d.toString(); });
    for (let i = 0; i < 600 && !daemonErr.includes('resident socket listening'); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(sock)) throw new Error(`the daemon did not open its resident socket:\n${daemonErr}`);
  });

  afterAll(async () => {
    daemon?.kill('SIGTERM');
    await new Promise((r) => (daemon && daemon.exitCode === null ? daemon.once('exit', r) : r(null)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tree\'s last records (a child\'s exec and exit, the root\'s exit) are in the session, and no barrier timed out', async () => {
    const r = await run(['run', '--user', 'nobody', '--session-dir', join(dir, 's'), '--out', join(dir, 'out.ndjson'), '--',
      '/bin/sh', '-c', '/bin/true; exit 7'], env);
    expect(r.code, r.stderr).toBe(7);
    const s = JSON.parse(readFileSync(join(dir, 's', 'session.json'), 'utf8')) as { agent: Record<string, unknown>; exit_code: number };
    expect(s.agent['witness.sensor.resident_pid'], 'the run must have gone through the daemon').toBe(daemon.pid);
    expect(s.exit_code).toBe(7);
    const ev = readFileSync(join(dir, 'out.ndjson'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Envelope);
    const exits = ev.filter((e) => e.event === 'process.exit');
    expect(ev.some((e) => e.event === 'process.exec' && String(e.attributes['process.executable.path']).endsWith('/true'))).toBe(true);
    expect(exits.map((e) => e.attributes['process.exit.code']).sort()).toEqual([0, 7]);
    const beat = ev.filter((e) => e.event === 'sensor.heartbeat').at(-1)!.attributes;
    expect(beat['witness.loss.resident_barrier_timeout']).toBeUndefined();
    expect(daemonErr).not.toContain('did not arrive');
  });
});
