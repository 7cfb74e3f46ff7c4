import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelSuite, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();

describe.skipIf(skip)('in-kernel scoping', () => {
  let h: SensorHarness;
  let server: Server;
  let dir: string;
  beforeAll(async () => {
    h = new SensorHarness();
    dir = mkdtempSync(join(tmpdir(), 'witness-scope-'));
    server = await new Promise((resolve) => {
      const s = createServer((c) => c.end());
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
  });
  afterAll(async () => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('an untraced process doing the same things produces no events', async () => {
    const port = (server.address() as { port: number }).port;
    const script = `echo x > ${dir}/untraced; mv ${dir}/untraced ${dir}/untraced2; rm ${dir}/untraced2; cat /etc/shadow >/dev/null; ` +
      `exec 3<>/dev/tcp/127.0.0.1/${port}; exit 0`;
    const outsider = spawn('/bin/bash', ['-c', script], { stdio: 'ignore' });
    const outsiderPid = outsider.pid!;
    await new Promise((r) => outsider.once('exit', r));
    // a traced run afterwards proves the sensor was live and delivering meanwhile
    const traced = await h.run('/bin/bash', ['-c', script.replace(/untraced/g, 'traced')]);
    expect(traced.events.some((e) => e.kind === 'connect')).toBe(true);
    expect(traced.events.some((e) => e.kind === 'file_read_sensitive')).toBe(true);
    const leaked = h.all.filter((e) => e.pid === outsiderPid || ('path' in e && String(e.path).includes('untraced')));
    expect(leaked).toEqual([]);
    expect(h.sensor.isTraced(outsiderPid)).toBe(false);
  });

  it('removes exited processes from the traced set', async () => {
    const r = await h.run('/bin/true', []);
    expect(h.sensor.isTraced(r.pid)).toBe(false);
  });
});
