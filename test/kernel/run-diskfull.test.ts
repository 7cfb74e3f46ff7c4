import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPublicKey, verifyPath } from '../../src/ledger/index.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { mountTmpfs, unmountAndRemove } from '../helpers/mounts.js';
import { kernelSuite } from '../helpers/kernel.js';

/**
 * `witness run` while the traced agent fills the disk the witness writes to.
 * The state dir (session ledger) and the --out file sit on one small tmpfs;
 * the agent (as nobody) fills it through a world-writable directory, keeps
 * exec'ing while it is full, deletes its filler and exec's some more. The
 * witness must not die: it finishes with the agent's exit code, reports the
 * failing sinks in its summary, the session ledger records the outage as a
 * gap (cause ENOSPC, records not written) and resumes, the session closes
 * and verifies with the gap listed, and `witness verify` exits 4 (verified,
 * pinned, with gaps).
 */
const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const mounts: string[] = [];
afterAll(() => unmountAndRemove(mounts));

describe.skipIf(skip)('witness run on a disk the agent fills (real tmpfs, real kernel)', () => {
  it('finishes with the agent\'s exit code, reports the sink failures, records the gap and verifies', () => {
    const mnt = mkdtempSync(join(tmpdir(), 'witness-runfull-'));
    mountTmpfs(mnt, 'size=3m,mode=0755');
    mounts.push(mnt);
    const state = join(mnt, 'state');
    const fill = join(mnt, 'fill');
    mkdirSync(fill);
    chmodSync(fill, 0o1777);
    const out = join(mnt, 'events.ndjson');
    const loop = (n: number): string => `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`;
    const topUp = `dd if=/dev/zero of=${fill}/f bs=4k oflag=append conv=notrunc 2>/dev/null`;
    const script = [
      loop(30),
      topUp,
      // full: every exec is an event the witness cannot write; top up whatever a retry freed
      `${loop(150)}; ${topUp}; sleep 1.2; ${topUp}; ${loop(150)}`,
      `rm -f ${fill}/f`,
      'sleep 2.5', // retries run every second: the ledger resumes
      loop(30),
      'exit 5',
    ].join('; ');
    const r = spawnSync(process.execPath, [BIN, 'run', '--user', 'nobody', '--out', out, '--', '/bin/sh', '-c', script], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, WITNESS_STATE_DIR: state },
    });
    expect(r.status, r.stderr).toBe(5);
    // the failing session ledger is reported in the summary (appends refused while the disk was full)
    expect(r.stderr).toMatch(/witness: sink ledger failed \d+ times \(first: .*(ENOSPC|not writable)/);
    expect(r.stderr).toMatch(/output [1-9]\d*\)/); // the --out lines that could not be written, counted as output drops

    const sessions = readdirSync(join(state, 'sessions'));
    expect(sessions).toHaveLength(1);
    const sessionDir = join(state, 'sessions', sessions[0]!);
    expect(existsSync(join(sessionDir, 'session.json'))).toBe(true); // closed, not left unclosed
    const session = JSON.parse(readFileSync(join(sessionDir, 'session.json'), 'utf8'));
    expect(session.exit_code).toBe(5);
    expect(session.drops['sink.ledger.failed']).toBeGreaterThan(0);
    expect(session.drops.output).toBeGreaterThan(0);

    const pub = loadPublicKey(join(state, 'keys', 'host.pub'));
    return verifyPath(state, { pinned: pub }).then((v) => {
      expect(v.failure).toBeUndefined();
      expect(v.gaps!.length).toBeGreaterThanOrEqual(1);
      for (const g of v.gaps!) {
        expect(g.log).toBe(`session/${sessions[0]}`);
        expect(g.cause).toMatch(/^ENOSPC/);
        expect(g.records).toBeGreaterThan(0);
      }
      // refused appends are in the gap count: each one the summary counted as a ledger sink failure
      expect(v.gaps!.reduce((a, g) => a + g.records, 0)).toBeGreaterThanOrEqual(session.drops['sink.ledger.failed']);
      const cli = spawnSync(process.execPath, [BIN, 'verify', '--pubkey', join(state, 'keys', 'host.pub'), state], { encoding: 'utf8' });
      expect(cli.status, cli.stdout + cli.stderr).toBe(4);
      expect(cli.stdout).toMatch(/^VERIFIED global/);
      expect(cli.stdout).toMatch(new RegExp(`GAP session/${sessions[0]}: \\d+ records not written from \\S+ to \\S+ \\(ENOSPC`));
      // the session dir alone (what the run's last line suggests checking) shows the gap and exits 4 too
      const one = spawnSync(process.execPath, [BIN, 'verify', '--pubkey', join(state, 'keys', 'host.pub'), sessionDir], { encoding: 'utf8' });
      expect(one.status, one.stdout + one.stderr).toBe(4);
      expect(one.stdout).toMatch(new RegExp(`^VERIFIED session .*\\nGAP session/${sessions[0]}: `));
      process.stderr.write(`witness run, disk full: ${v.gaps!.length} gap(s), ${v.gaps!.map((g) => `${g.records} records`).join(', ')}; `
        + `ledger sink failures ${session.drops['sink.ledger.failed']}, output drops ${session.drops.output}\n`);
    });
  }, 150_000);
});
