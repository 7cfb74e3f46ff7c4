import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();

describe.skipIf(skip)('process events on the real kernel', () => {
  let h: SensorHarness;
  beforeAll(() => { h = new SensorHarness(); });
  afterAll(async () => { await h?.close(); });

  it('follows sh → child → grandchild with argv, parentage and exit codes', async () => {
    const r = await h.run('/bin/sh', ['-c', '/bin/sh -c "/bin/echo grand child; exit 5"; exit 3']);
    expect(r.code).toBe(3);
    const execs = ofKind(r.events, 'exec');
    expect(execs.map((e) => e.argv)).toEqual([
      ['/bin/sh', '-c', '/bin/sh -c "/bin/echo grand child; exit 5"; exit 3'],
      ['/bin/sh', '-c', '/bin/echo grand child; exit 5'],
      ['/bin/echo', 'grand', 'child'],
    ]);
    const [root, child, grand] = execs;
    expect(root!.pid).toBe(r.pid);
    expect(child!.ppid).toBe(root!.pid);
    expect(grand!.ppid).toBe(child!.pid);
    expect(grand!.exe).toBe('/usr/bin/echo');
    expect(root!.cwd).toBe(process.cwd());
    const exits = new Map(ofKind(r.events, 'exit').map((e) => [e.pid, e.exitCode]));
    expect(exits.get(grand!.pid)).toBe(0);
    expect(exits.get(child!.pid)).toBe(5);
    expect(exits.get(root!.pid)).toBe(3);
  });

  it('reports the signal that killed a process', async () => {
    const r = await h.run('/bin/sh', ['-c', 'kill -KILL $$']);
    expect(r.signal).toBe('SIGKILL');
    const exit = ofKind(r.events, 'exit').find((e) => e.pid === r.pid);
    expect(exit).toMatchObject({ signal: 9, exitCode: null });
    const env = r.envelopes.find((e) => e.event === 'process.exit');
    expect(env?.attributes['witness.exit.signal']).toBe(9);
  });

  it('traces from the first instruction: the root exec is never missed', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await h.run('/bin/true', []);
      expect(ofKind(r.events, 'exec').map((e) => e.pid)).toEqual([r.pid]);
    }
  });

  it('flags argv past the bound instead of cutting silently', async () => {
    const long = 'x'.repeat(3000);
    const r = await h.run('/bin/echo', [long, long]);
    const exec = ofKind(r.events, 'exec')[0]!;
    expect(exec.argvTruncated).toBe(true);
    expect(exec.argc).toBe(3);
    expect(exec.argv[0]).toBe('/bin/echo');
    expect(exec.argv.join('\0').length).toBeLessThanOrEqual(4096);
    const env = r.envelopes.find((e) => e.event === 'process.exec');
    expect(env!.attributes['witness.flags']).toContain('argv_truncated');
  });

  it('keeps tracing a process whose leader thread exits first, and reports its exit with the last thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-leader-'));
    const bin = join(dir, 'leader-exits-first');
    execFileSync('cc', ['-O2', '-pthread', '-o', bin, join(__dirname, '..', 'fixtures', 'programs', 'leader-exits-first.c')]);
    const out = join(dir, 'written-after-leader-left');
    const r = await h.run(bin, [out]);
    expect(r.code).toBe(3);
    const write = ofKind(r.events, 'file_write').find((e) => e.path === out);
    expect(write?.pid).toBe(r.pid);
    expect(write?.tid).not.toBe(r.pid); // written by the surviving thread
    const exits = ofKind(r.events, 'exit').filter((e) => e.pid === r.pid);
    expect(exits.map((e) => e.exitCode)).toEqual([3]);
    expect(exits[0]!.tsBootNs).toBeGreaterThan(write!.tsBootNs);
  });

  it('decodes every record without error and counts no drops', () => {
    expect(h.decodeErrors).toEqual([]);
    expect(h.sensor.stats().droppedTotal).toBe(0);
  });
});
