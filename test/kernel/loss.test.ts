import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeat } from '../../src/sensor/heartbeat.js';
import { WitnessSensor } from '../../src/sensor/sensor.js';
import type { SensorEvent } from '../../src/sensor/types.js';
import { kernelSuite, ofKind } from '../helpers/kernel.js';

/**
 * Every loss path of the kernel side, forced on the real kernel and counted
 * exactly: a full ring, a full traced set, a path walk that runs out of loop,
 * a poll thread that keeps failing. Each sensor here is opened with the
 * bound that makes the loss happen (tiny ring, tiny traced set).
 */
const { skip } = kernelSuite();
const PY = '/usr/bin/python3';

const exited = (c: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => c.once('exit', (code) => resolve(code)));

/** A sensor collecting every event, opened with `opts`. */
function collecting(opts: Partial<Parameters<typeof WitnessSensor.open>[0]> = {}): { sensor: WitnessSensor; events: SensorEvent[] } {
  const events: SensorEvent[] = [];
  const sensor = WitnessSensor.open({ onEvent: (e) => events.push(e), maxLatencyMs: 5, ...opts });
  return { sensor, events };
}

describe.skipIf(skip)('loss accounting on the real kernel', () => {
  let dir: string;
  let storm: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'witness-loss-'));
    storm = join(dir, 'storm');
    // N opens of /dev/null for write, nothing else: the ground truth is N
    execFileSync('cc', ['-O2', '-o', storm, join(__dirname, '..', '..', 'bench', 'storm.c')]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a tiny ring overflows: per kind, emitted = delivered at close and emitted + dropped = what the process did', async () => {
    const N = 5000;
    // the ring is not drained until the storm is over: it must overflow
    const { sensor, events } = collecting({ ringBytes: 16 << 10, autoStart: false, budgetEvents: 0 });
    // stdio pipes, not 'ignore': libuv would open /dev/null for write in the child
    const child = sensor.spawnTraced(storm, [String(N)], { stdio: 'pipe' });
    expect(await exited(child)).toBe(0);
    sensor.start();
    const stats = await sensor.close();

    const writes = ofKind(events, 'file_write').filter((e) => e.pid === child.pid);
    expect(stats.kernelDropped.file_write).toBeGreaterThan(0);
    expect(stats.kernelEmitted.file_write + stats.kernelDropped.file_write).toBe(N);
    expect(writes.length).toBe(stats.kernelEmitted.file_write);
    expect(stats.userDropped).toBe(0);
    for (const kind of Object.keys(stats.kernelEmitted)) {
      expect({ kind, delivered: stats.delivered[kind] }).toEqual({ kind, delivered: stats.kernelEmitted[kind] });
      expect({ kind, decoded: events.filter((e) => e.kind === kind).length }).toEqual({ kind, decoded: stats.kernelEmitted[kind] });
    }
    // the drops are the storm's, and the heartbeat names it as the top dropper
    const droppedTotal = Object.values(stats.kernelDropped).reduce((a, b) => a + b, 0);
    expect(sensor.dropsByProcess(5)).toEqual([{ pid: child.pid, comm: 'storm', count: droppedTotal }]);
    const beat = heartbeat(sensor, new Date(), stats);
    expect(beat.attributes['witness.drops.top.pids']).toEqual([String(child.pid)]);
    expect(beat.attributes['witness.drops.top.counts']).toEqual([String(droppedTotal)]);
    expect(beat.attributes['witness.drops.kernel.file_write']).toBe(stats.kernelDropped.file_write);
  });

  it('closing in the middle of a flood: probes detach before the last drain, so emitted = delivered exactly', async () => {
    // three closes: the window the old order left open (drain, then detach) is short and not hit every time
    for (let round = 0; round < 3; round++) {
      const { sensor, events } = collecting({ budgetEvents: 0 });
      const child = sensor.spawnTraced(storm, ['100000000'], { stdio: 'pipe' });
      // let it write for a while, then close while it is still writing
      await new Promise((r) => setTimeout(r, 300));
      const stats = await sensor.close();
      child.kill('SIGKILL');
      await exited(child);
      expect(stats.kernelEmitted.file_write).toBeGreaterThan(1000);
      expect(stats.userDropped).toBe(0);
      for (const kind of Object.keys(stats.kernelEmitted)) {
        expect({ round, kind, delivered: stats.delivered[kind] }).toEqual({ round, kind, delivered: stats.kernelEmitted[kind] });
        expect({ round, kind, decoded: events.filter((e) => e.kind === kind).length }).toEqual({ round, kind, decoded: stats.kernelEmitted[kind] });
      }
    }
  });

  it('a full traced set: every child that escapes is counted and named, and a root that cannot join is refused', async () => {
    // 4 slots: the root and its first 3 children; the other 5 escape
    const { sensor, events } = collecting({ tracedMax: 4 });
    const script = `
import os, sys, time
kids = []
for i in range(8):
    pid = os.fork()
    if pid == 0:
        time.sleep(1.5)
        os._exit(0)
    kids.append(pid)
print(" ".join(map(str, kids)), flush=True)
for k in kids: os.waitpid(k, 0)
`;
    const child = sensor.spawnTraced(PY, ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    await new Promise((r) => setTimeout(r, 700));
    // the set is full now (root + 3): a new root cannot be traced, and spawnTraced refuses to run it
    expect(() => sensor.spawnTraced('/bin/true', [], { stdio: 'ignore' })).toThrow(/refusing to let it run untraced/);
    expect(await exited(child)).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    const stats = await sensor.close();

    const kids = out.trim().split(/\s+/).map(Number);
    expect(kids).toHaveLength(8);
    const traced = new Set(ofKind(events, 'fork').filter((f) => f.pid === child.pid).map((f) => f.childPid));
    const overflow = ofKind(events, 'scope_overflow').filter((e) => e.pid === child.pid);
    const named = overflow.map((e) => e.childPid).sort((a, b) => a - b);
    expect(traced.size).toBe(3);
    expect(named).toEqual(kids.filter((k) => !traced.has(k)).sort((a, b) => a - b));
    for (const e of overflow) expect(e).toMatchObject({ rootPid: child.pid, depth: 1, error: -7 /* E2BIG */ });
    // 5 children + the refused root
    expect(stats.loss.scopeFull).toBe(6);
    expect(stats.kernelEmitted.scope_overflow).toBe(6);
    // an escaped child records nothing
    for (const k of named) expect(events.filter((e) => e.pid === k)).toEqual([]);
  });

  it('a full connection index: a connection whose owner cannot be indexed is a counted conn_end drop, not state the exit sweep never finds', async () => {
    // 2 owner slots, 5 processes holding a TCP connection at once, exiting without close(2):
    // the exit sweep ends the 2 indexed ones, the other 3 are counted when their connect is seen
    const held: Socket[] = [];
    const server = createServer((s) => { held.push(s); s.on('error', () => {}); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const { sensor, events } = collecting({ connOwnersMax: 2 });
    const script = `
import os, socket, sys
r_go, w_go = os.pipe()
r_ready, w_ready = os.pipe()
kids = []
for i in range(5):
    pid = os.fork()
    if pid == 0:
        os.close(w_go)
        s = socket.create_connection(("127.0.0.1", ${port}))
        os.write(w_ready, b"x")
        os.read(r_go, 1)
        os._exit(0)
    kids.append(pid)
got = b""
while len(got) < 5: got += os.read(r_ready, 5)
os.close(w_go)
for k in kids: os.waitpid(k, 0)
print(" ".join(map(str, kids)), flush=True)
`;
    const child = sensor.spawnTraced(PY, ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    expect(await exited(child)).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    const stats = await sensor.close();
    for (const s of held) s.destroy();
    server.close();

    const kids = new Set(out.trim().split(/\s+/).map(Number));
    expect(kids.size).toBe(5);
    const connects = ofKind(events, 'connect').filter((e) => kids.has(e.pid));
    expect(connects).toHaveLength(5);
    const ended = ofKind(events, 'conn_end').filter((e) => kids.has(e.pid));
    expect(ended).toHaveLength(2);
    for (const e of ended) expect(e).toMatchObject({ peerAddress: '127.0.0.1', peerPort: port });
    expect(stats.kernelDropped.conn_end).toBe(3);
    expect(ended.length + stats.kernelDropped.conn_end).toBe(connects.length);
  });

  it('a path walk that runs out of its loop bound (70 stacked mounts) is flagged truncated, not passed off as whole', async () => {
    const { sensor, events } = collecting();
    const d = join(dir, 'stack');
    const sh = `mkdir -p ${d} && for i in $(seq 70); do mount -t tmpfs none ${d} || exit 9; done; : > ${d}/f`;
    const child = sensor.spawnTraced('unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh], { stdio: 'ignore' });
    expect(await exited(child)).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    await sensor.close();
    const w = ofKind(events, 'file_write').filter((e) => e.path.endsWith('/f'));
    expect(w.length).toBe(1);
    // the top of the path is missing (the walk never reached the root): the flag says so
    expect(w[0]!.pathTruncated).toBe(true);
  });

  it('poll errors are exported, and past the bound they are fatal (the sensor says it is blind)', async () => {
    const fatal: string[] = [];
    const { sensor } = collecting({ onFatal: (e) => fatal.push(e.message) });
    sensor.native.injectPollErrors(3, 5 /* EIO */);
    await new Promise((r) => setTimeout(r, 200));
    expect(sensor.stats().pollErrors).toBe(3);
    expect(sensor.stats().pollFatalErrno).toBe(0);
    expect(heartbeat(sensor, new Date()).attributes['witness.poll_errors']).toBe(3);
    sensor.native.injectPollErrors(1000, 5);
    await new Promise((r) => setTimeout(r, 300));
    const stats = await sensor.close();
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(/errno 5/);
    expect(stats.pollFatalErrno).toBe(5);
    expect(stats.pollErrors).toBe(3 + 64); // WA_POLL_ERRORS_FATAL in a row, then it stopped polling
    expect(heartbeat(sensor, new Date(), stats).attributes['witness.poll_fatal_errno']).toBe(5);
  });
});
