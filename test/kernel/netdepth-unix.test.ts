import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netDerivedSchemas, sensorEnvelopeSchema } from '../../src/events/schemas.js';
import { NetDepth } from '../../src/sensor/netdepth.js';
import { kernelSuite, ofKind, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const NODE = process.execPath;

const listen = (path: string): Promise<Server> => new Promise((r) => { const s = createServer((c) => c.end()); s.listen(path, () => r(s)); });

describe.skipIf(skip)('unix sockets, listen and accept on the real kernel', () => {
  let h: SensorHarness;
  let dir: string;
  let docker: Server;
  let abstract: Server;
  const abstractName = `witness-test-${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    h = new SensorHarness();
    dir = mkdtempSync(join(tmpdir(), 'witness-unix-'));
    docker = await listen(join(dir, 'docker.sock'));
    abstract = await listen(`\0${abstractName}`);
  });
  afterAll(async () => {
    docker?.close();
    abstract?.close();
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('records the peer path of a unix connect from the kernel socket, and raises a runtime-socket finding', async () => {
    const path = join(dir, 'docker.sock');
    const missing = join(dir, 'gone', 'containerd.sock');
    const r = await h.run(NODE, ['-e', `
const net = require('net');
const a = net.connect('${path}', () => {
  a.destroy();
  const b = net.connect('\\0${abstractName}', () => {
    b.destroy();
    net.connect('${missing}').on('error', () => {});
  });
});`]);
    expect(r.code).toBe(0);
    const unix = ofKind(r.events, 'unix_connect');
    expect(unix.map((e) => [e.path, e.ret === 0, e.userAddress])).toEqual([
      [path, true, false], [`@${abstractName}`, true, false], [missing, false, true],
    ]);
    const net = new NetDepth();
    const envs = r.events.flatMap((ev) => net.process(ev, h.sensor.clock));
    const findings = envs.filter((e) => e.event === 'finding.runtime_socket');
    expect(findings.map((f) => [f.attributes['network.peer.address'], f.attributes['witness.finding.runtime'], f.attributes['witness.unix.path_source']]))
      .toEqual([[path, 'docker', 'kernel'], [missing, 'containerd', 'user']]);
    for (const f of findings) expect(netDerivedSchemas['finding.runtime_socket'].safeParse(f.attributes).success).toBe(true);
    const env = envs.find((e) => e.event === 'network.unix_connect');
    expect(sensorEnvelopeSchema.safeParse(JSON.parse(JSON.stringify(env))).success).toBe(true);
    expect(env?.attributes).toMatchObject({ 'network.transport': 'unix', 'network.peer.address': path, 'witness.unix.sock_type': 'stream' });
  });

  it('a symlink with an innocent name does not hide the Docker socket: the path is the listener\'s, from the kernel', async () => {
    const link = join(dir, 'innocent');
    symlinkSync(join(dir, 'docker.sock'), link);
    const r = await h.run(NODE, ['-e', `const a = require('net').connect('${link}', () => a.destroy());`]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'unix_connect').map((e) => e.path)).toEqual([join(dir, 'docker.sock')]);
    const net = new NetDepth();
    const envs = r.events.flatMap((ev) => net.process(ev, h.sensor.clock));
    expect(envs.filter((e) => e.event === 'finding.runtime_socket').map((e) => e.attributes['witness.finding.runtime'])).toEqual(['docker']);
  });

  it('records listen and accept with addresses from the kernel socket', async () => {
    const r = await h.run(NODE, ['-e', `
const net = require('net');
const s = net.createServer((c) => { c.end(); s.close(); });
s.listen(0, '127.0.0.1', () => { const c = net.connect(s.address().port, '127.0.0.1', () => c.end()); });`]);
    expect(r.code).toBe(0);
    const [l] = ofKind(r.events, 'listen');
    const [a] = ofKind(r.events, 'accept');
    const [c] = ofKind(r.events, 'connect');
    expect(l).toMatchObject({ ret: 0, localAddress: '127.0.0.1', sockType: 1, protocol: 6, backlog: 511 });
    expect(l!.localPort).toBeGreaterThan(0);
    expect(c!.peerPort).toBe(l!.localPort);
    expect(a).toMatchObject({ localAddress: '127.0.0.1', localPort: l!.localPort, peerAddress: '127.0.0.1' });
    expect(a!.peerPort).toBeGreaterThan(0);
    expect(a!.ret).toBe(a!.fd);
    const net = new NetDepth();
    const envs = r.events.flatMap((ev) => net.process(ev, h.sensor.clock)).filter((e) => e.event === 'network.listen' || e.event === 'network.accept');
    expect(envs.map((e) => e.event)).toEqual(['network.listen', 'network.accept']);
    for (const e of envs) expect(sensorEnvelopeSchema.safeParse(JSON.parse(JSON.stringify(e))).success).toBe(true);
    expect(envs[1]!.attributes).toMatchObject({ 'network.transport': 'tcp', 'network.local.port': l!.localPort, 'network.peer.address': '127.0.0.1' });
  });
});
