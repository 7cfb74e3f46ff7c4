import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');

interface StatusRow { agent: string; lastWindow: { status: string; end: string } | null }

describe.skipIf(skip)('witness pulse status reads a running daemon', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-daemon-pulse-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports windows the live daemon closed, and they keep advancing', async () => {
    const config = join(dir, 'witness.json');
    // two-second windows so a test sees several close; heartbeats well inside them
    writeFileSync(config, JSON.stringify({ heartbeat: '500ms', pulse: { tick: '200ms', options: { windowMs: 2000, maxSilenceMs: 1500 } } }));
    const env = { ...process.env, WITNESS_STATE_DIR: join(dir, 'state') };
    const daemon = spawn(process.execPath, [BIN, 'daemon', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    daemon.stderr.on('data', (d) => { stderr += String(d); });
    const status = (): StatusRow[] => {
      const r = spawnSync(process.execPath, [BIN, 'pulse', 'status', '--json'], { env, encoding: 'utf8' });
      return r.status === 0 ? (JSON.parse(r.stdout).agents as StatusRow[]) : [];
    };
    try {
      const until = async (cond: () => boolean, what: string): Promise<void> => {
        const deadline = Date.now() + 90_000;
        while (!cond()) {
          if (Date.now() > deadline || daemon.exitCode !== null) throw new Error(`waiting for ${what}\n${stderr}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      let first = '';
      await until(() => {
        const row = status().find((a) => a.lastWindow?.status === 'ok');
        first = row?.lastWindow?.end ?? '';
        return first !== '';
      }, 'a closed window in pulse status');
      await until(() => status().some((a) => (a.lastWindow?.end ?? '') > first), 'a later window');
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    expect(daemon.exitCode).toBe(0);
  }, 180_000);
});
