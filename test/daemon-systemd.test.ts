import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sdNotify, watchdogIntervalMs } from '../src/daemon/sdnotify.js';

const UNIT = join(import.meta.dirname, '..', 'deploy', 'agent-witness.service');
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('systemd unit', () => {
  it.skipIf(!hasSystemdAnalyze && process.env.WITNESS_REQUIRE_SYSTEMD !== '1')('passes systemd-analyze verify with no warnings', () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is Type=notify with a watchdog, always restarts, and does not forbid bpf(2)', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const directives = unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
    expect(directives).toContain('Type=notify');
    expect(directives).toContain('Restart=always');
    expect(directives.some((d) => /^WatchdogSec=\d+s$/.test(d))).toBe(true);
    expect(directives.some((d) => d.startsWith('SystemCallFilter='))).toBe(false);
    expect(directives).toContain('NoNewPrivileges=yes');
    expect(directives).toContain('ProtectSystem=strict');
    const caps = directives.find((d) => d.startsWith('CapabilityBoundingSet='))!;
    for (const cap of ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN']) expect(caps).toContain(cap);
  });
});

describe('sd_notify from the addon', () => {
  it('delivers the state datagram to $NOTIFY_SOCKET (file system and abstract)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-notify-'));
    for (const address of [join(dir, 'notify.sock'), `@witness-test-${process.pid}`]) {
      // Node cannot bind a datagram Unix socket; python3 plays systemd's part.
      const bind = address.startsWith('@') ? `'\\0${address.slice(1)}'` : `'${address}'`;
      const py = spawn('python3', ['-c', [
        'import socket,sys',
        's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
        `s.bind(${bind})`,
        'print("ready",flush=True)',
        's.settimeout(10)',
        'print(s.recv(4096).decode().replace("\\n","|"),flush=True)',
      ].join('\n')]);
      let out = '';
      py.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      for (let i = 0; i < 500 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 10));
      const saved = process.env.NOTIFY_SOCKET;
      process.env.NOTIFY_SOCKET = address; // the C side reads the real environment, which process.env writes through to
      try {
        expect(sdNotify('READY=1\nSTATUS=test')).toBe(true);
      } finally {
        if (saved === undefined) delete process.env.NOTIFY_SOCKET;
        else process.env.NOTIFY_SOCKET = saved;
      }
      await new Promise((r) => py.once('exit', r));
      expect(out.split('\n')[1]).toBe('READY=1|STATUS=test');
    }
  });

  it('is a no-op outside systemd', () => {
    const saved = process.env.NOTIFY_SOCKET;
    delete process.env.NOTIFY_SOCKET;
    try {
      expect(sdNotify('READY=1')).toBe(false);
    } finally {
      if (saved !== undefined) process.env.NOTIFY_SOCKET = saved;
    }
  });

  it('watchdog interval is half of WATCHDOG_USEC, only for our pid', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 5)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '5' }, 5)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '6' }, 5)).toBeNull();
    expect(watchdogIntervalMs({}, 5)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'x' }, 5)).toBeNull();
  });
});
