import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WitnessSensor } from '../../src/sensor/sensor.js';
import type { SensorEvent } from '../../src/sensor/types.js';
import { kernelSuite } from '../helpers/kernel.js';

/**
 * Targeted mode attaches the syscall hooks only while a traced tree exists
 * (native/loader_hooks.c). The risk is a traced process acting before its
 * hooks are live, so the agent here does nothing but its first write-open
 * and its first connect, started while the hooks were detached.
 */
const { skip } = kernelSuite();
const PROGRAMS = join(__dirname, '..', 'fixtures', 'programs');

describe.skipIf(skip)('syscall hooks attached only while a traced tree exists', () => {
  let dir: string;
  let agent: string;
  let server: Server;
  let port: number;
  let sensor: WitnessSensor;
  const events: SensorEvent[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'witness-lazy-'));
    agent = join(dir, 'first-acts');
    execFileSync('cc', ['-O2', '-static', '-o', agent, join(PROGRAMS, 'first-acts.c')]);
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    sensor = WitnessSensor.open({ onEvent: (ev) => events.push(ev), maxLatencyMs: 5 });
  });
  afterAll(async () => {
    await sensor?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** the file_write of `path` and the connect to our port by `pid`, once its exit is in */
  async function firstActsOf(pid: number, path: string) {
    const t0 = Date.now();
    while (!events.some((e) => e.kind === 'exit' && e.pid === pid) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    const mine = events.filter((e) => e.pid === pid);
    return {
      exited: mine.some((e) => e.kind === 'exit'),
      write: mine.find((e) => e.kind === 'file_write' && e.path === path),
      connect: mine.find((e) => e.kind === 'connect' && e.peerPort === port && e.peerAddress === '127.0.0.1'),
    };
  }

  const exitOf = (child: ReturnType<typeof spawn>) =>
    new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  it('starts detached: no traced tree, no syscall hooks', () => {
    const st = sensor.hooks('idle');
    expect(st.lazy).toBe(true);
    expect(st.attached).toBe(false);
  });

  it("records a spawned agent's very first write-open and connect, though the hooks were detached when it was asked for", async () => {
    expect(sensor.hooks('idle').attached).toBe(false);
    const path = join(dir, 'spawned');
    const child = sensor.spawnTraced(agent, [path, String(port)], { stdio: 'ignore' });
    const attachedAtSpawn = sensor.hooks().attached;
    expect(await exitOf(child)).toBe(0);
    const r = await firstActsOf(child.pid!, path);
    expect(r.exited).toBe(true);
    expect(r.write, 'the first write-open').toBeDefined();
    expect(r.connect, 'the first connect').toBeDefined();
    expect(attachedAtSpawn).toBe(true); // armSpawn attached them before the fork
  });

  it('detaches once the tree is gone, and attaches again for the next one', async () => {
    const before = sensor.hooks().detaches;
    expect(sensor.hooks('idle').attached).toBe(false);
    expect(sensor.hooks().detaches).toBeGreaterThanOrEqual(before);
    const path = join(dir, 'again');
    const child = sensor.spawnTraced(agent, [path, String(port)], { stdio: 'ignore' });
    expect(await exitOf(child)).toBe(0);
    const r = await firstActsOf(child.pid!, path);
    expect(r.write).toBeDefined();
    expect(r.connect).toBeDefined();
    expect(sensor.hooks('idle').attached).toBe(false);
  });

  it('addRoot attaches the hooks before the running process joins the traced set', async () => {
    expect(sensor.hooks('idle').attached).toBe(false);
    const path = join(dir, 'added');
    const child = spawn(agent, [path, String(port), '--wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
    await new Promise((r) => child.once('spawn', r));
    sensor.addRoot(child.pid!);
    const attachedAtAdd = sensor.hooks().attached;
    child.stdin!.end('g');
    expect(await exitOf(child)).toBe(0);
    const r = await firstActsOf(child.pid!, path);
    expect(r.write).toBeDefined();
    expect(r.connect).toBeDefined();
    expect(attachedAtAdd).toBe(true);
  });

  it('stays detached while only untraced processes run, and records none of them', async () => {
    expect(sensor.hooks('idle').attached).toBe(false);
    const path = join(dir, 'untraced');
    const child = spawn(agent, [path, String(port)], { stdio: 'ignore' });
    expect(await exitOf(child)).toBe(0);
    expect(sensor.hooks().attached).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(events.filter((e) => e.pid === child.pid)).toEqual([]);
  });

  it('a hold keeps them attached with no tree, until released', () => {
    expect(sensor.hooks('hold')).toMatchObject({ attached: true, held: 1 });
    expect(sensor.hooks('idle').attached).toBe(true);
    expect(sensor.hooks('release').held).toBe(0);
    expect(sensor.hooks('idle').attached).toBe(false);
  });
});
