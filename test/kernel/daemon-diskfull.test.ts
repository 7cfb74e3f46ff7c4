import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPublicKey, verifyPath } from '../../src/ledger/index.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { mountTmpfs, unmountAndRemove } from '../helpers/mounts.js';
import { kernelSuite } from '../helpers/kernel.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';

/**
 * The compiled daemon, host-wide on the real kernel, with its state dir on a
 * small tmpfs that fills up. While the ledger cannot write for longer than
 * ledger.failureTimeout the daemon must stop petting the systemd watchdog
 * (so systemd would restart it); once the filler is deleted the ledger
 * resumes on its own (ledger.retryInterval), records the outage as a gap,
 * the pets come back, and the stopped daemon's state verifies with the gap.
 */
const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const mounts: string[] = [];
afterAll(() => unmountAndRemove(mounts));

async function until(cond: () => boolean, what: string, ms: number, log: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skip)('daemon with a full state dir (real tmpfs, real kernel)', () => {
  it('stops petting the watchdog past failureTimeout, resumes by itself when space returns, and the gap verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-dfull-'));
    const mnt = join(dir, 'mnt');
    execFileSync('mkdir', [mnt]);
    mountTmpfs(mnt, 'size=4m,mode=0700');
    mounts.push(mnt);
    mounts.push(dir);
    const state = join(mnt, 'state');
    const notify = await new NotifyReceiver(join(dir, 'notify.sock')).start();
    const configPath = join(dir, 'witness.json');
    writeFileSync(configPath, JSON.stringify({
      heartbeat: '1s', scopeSocket: join(dir, 'scope.sock'), store: { enabled: false }, pulse: { enabled: false },
      export: { stdout: { enabled: false } },
      ledger: { failureTimeout: '1s', retryInterval: '200ms' },
    }));
    const child = spawn(process.execPath, [BIN, 'daemon', '--config', configPath], {
      env: { ...process.env, WITNESS_STATE_DIR: state, WITNESS_LOG_LEVEL: 'info', NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: '400000' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const pets = (): number => notify.messages.filter((m) => m === 'WATCHDOG=1').length;
    // host-wide: keep some events coming so the ledger has appends to refuse
    const busy = spawn('/bin/sh', ['-c', 'while :; do /bin/true; sleep 0.02; done'], { stdio: 'ignore' });
    try {
      await until(() => notify.messages.some((m) => m.startsWith('READY=1')), 'READY=1', 90_000, () => err);
      await until(() => pets() >= 2, 'watchdog pets', 10_000, () => err);

      const filler = join(mnt, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' }); // until ENOSPC
      await until(() => err.includes('ledger write failed; refusing appends'), 'the ledger outage', 20_000, () => err);
      await until(() => err.includes('not petting the watchdog'), 'the watchdog pets to stop', 10_000, () => err);
      const petsAtStop = pets();
      // top up whatever a retry freed, and make sure no pet goes out for a while (systemd would restart us)
      for (let i = 0; i < 6; i++) {
        spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'oflag=append', 'conv=notrunc'], { stdio: 'ignore' });
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(pets()).toBeLessThanOrEqual(petsAtStop + 1); // at most one already on its way
      expect(child.exitCode).toBeNull(); // it does not exit by itself: systemd restarts it

      rmSync(filler);
      await until(() => err.includes('ledger writable again; gap recorded'), 'the ledger to resume', 10_000, () => err);
      const petsAtResume = pets();
      await until(() => pets() >= petsAtResume + 2, 'watchdog pets again', 10_000, () => err);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      busy.kill('SIGKILL');
      notify.stop();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(existsSync(join(state, 'keys', 'host.pub'))).toBe(true);
    const v = await verifyPath(state, { pinned: loadPublicKey(join(state, 'keys', 'host.pub')) });
    expect(v.failure).toBeUndefined();
    expect(v.gaps!.length).toBeGreaterThanOrEqual(1);
    for (const g of v.gaps!) {
      expect(g.log).toMatch(/^daemon\//);
      expect(g.cause).toMatch(/^ENOSPC/);
    }
    const stopped = err.split('\n').find((l) => l.includes('"daemon stopped"'));
    // every line the ledger sink could not write is in a gap (plus those accepted in memory and lost with the disk)
    const sinkDropped = (JSON.parse(stopped!) as { sinks: { ledger: { dropped: number } } }).sinks.ledger.dropped;
    expect(sinkDropped).toBeGreaterThan(0);
    expect(v.gaps!.reduce((a, g) => a + g.records, 0)).toBeGreaterThanOrEqual(sinkDropped);
    process.stderr.write(`daemon, disk full: ${v.gaps!.length} gap(s), ${v.gaps!.map((g) => `${g.records} records, ${g.from} .. ${g.to}`).join('; ')}\n${stopped ?? ''}\n`);
  }, 180_000);
});
