import type { Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSensorWithListeners, kernelSuite, listenLoopback as listen, ofKind, openSensorWithListeners, portOf, SensorHarness } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const NODE = process.execPath;
const PY = '/usr/bin/python3';


// A DNS query for NAME type A, built by hand: no resolver library involved.
const DNS_QUERY_JS = `
const name = process.argv[1];
const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
const q = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
`;

describe.skipIf(skip)('network events on the real kernel', () => {
  let h: SensorHarness;
  let v4: Server;
  let v6: Server;
  beforeAll(async () => { ({ h, v4, v6 } = await openSensorWithListeners()); });
  afterAll(async () => { await closeSensorWithListeners({ h, v4, v6 }); });

  it('sees a TCP connect to an IPv4 loopback listener, with its result', async () => {
    const port = portOf(v4);
    const r = await h.run(NODE, ['-e', `const s=require('net').connect(${port},'127.0.0.1',()=>{s.destroy()})`]);
    expect(r.code).toBe(0);
    const c = ofKind(r.events, 'connect').filter((e) => e.peerPort === port);
    expect(c.length).toBe(1);
    expect(c[0]).toMatchObject({ peerAddress: '127.0.0.1', peerFamily: 2 });
    expect([0, -115]).toContain(c[0]!.ret); // 0 or -EINPROGRESS (non-blocking socket)
    const env = r.envelopes.find((e) => e.event === 'network.connect' && e.attributes['network.peer.port'] === port);
    expect(env?.attributes).toMatchObject({ 'network.transport': 'tcp', 'network.type': 'ipv4', 'network.peer.address': '127.0.0.1' });
  });

  it('sees a TCP connect over IPv6', async () => {
    const port = portOf(v6);
    const r = await h.run(NODE, ['-e', `const s=require('net').connect(${port},'::1',()=>{s.destroy()})`]);
    const env = r.envelopes.find((e) => e.event === 'network.connect' && e.attributes['network.peer.port'] === port);
    expect(env?.attributes).toMatchObject({ 'network.transport': 'tcp', 'network.type': 'ipv6', 'network.peer.address': '::1' });
  });

  it('sees a UDP connect', async () => {
    const r = await h.run(NODE, ['-e', `const d=require('dgram').createSocket('udp4');d.connect(9,'127.0.0.2',()=>d.close())`]);
    const env = r.envelopes.find((e) => e.event === 'network.connect' && e.attributes['network.peer.port'] === 9);
    expect(env?.attributes).toMatchObject({ 'network.transport': 'udp', 'network.peer.address': '127.0.0.2', 'witness.result': 0 });
  });

  it('decodes a DNS query sent as a raw datagram by a program without a resolver (sendmsg)', async () => {
    const r = await h.run(NODE, ['-e', `${DNS_QUERY_JS}
const d = require('dgram').createSocket('udp4');
d.send(q, 53, '127.0.0.1', () => d.close());`, 'agent-witness.test']);
    const dns = ofKind(r.events, 'dns');
    expect(dns.length).toBeGreaterThanOrEqual(1);
    expect(dns[0]!.dns).toMatchObject({ ok: true, questions: [{ name: 'agent-witness.test', type: 'A' }] });
    const env = r.envelopes.find((e) => e.event === 'dns.query');
    expect(env?.attributes['dns.question.name']).toBe('agent-witness.test');
    expect(env?.attributes['network.peer.port']).toBe(53);
  });

  it('decodes DNS written with write(2) on a connected UDP socket and sent over a raw socket', async () => {
    const script = `
import os, socket, struct
def q(name):
    b = b'\\x43\\x21\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00'
    for l in name.split('.'):
        b += bytes([len(l)]) + l.encode()
    return b + b'\\x00\\x00\\x1c\\x00\\x01'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('127.0.0.1', 53))
os.write(s.fileno(), q('written.example'))
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
p = q('raw.example')
r.sendto(struct.pack('!HHHH', 40000, 53, 8 + len(p), 0) + p, ('127.0.0.1', 0))
`;
    const r = await h.run(PY, ['-c', script]);
    expect(r.code).toBe(0);
    const names = ofKind(r.events, 'dns').map((e) => (e.dns.ok ? `${e.syscall} ${e.dns.questions[0]!.name} ${e.dns.questions[0]!.type}` : e.dns.error));
    expect(names).toContain('write written.example AAAA');
    expect(names).toContain('sendto raw.example AAAA');
  });

  it('decodes glibc resolver queries sent as a sendmmsg pair (A + AAAA)', async () => {
    // a private mount namespace whose resolv.conf points at loopback: nothing leaves the host
    const conf = 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n';
    const r = await h.run('/usr/bin/unshare', ['-m', '/bin/sh', '-c',
      `printf '${conf}' > /tmp/witness-resolv.$$ && mount --bind /tmp/witness-resolv.$$ /etc/resolv.conf && ` +
      'getent ahosts glibc-resolver.test; rm -f /tmp/witness-resolv.$$; exit 0']);
    expect(r.code).toBe(0);
    const seen = ofKind(r.events, 'dns').map((e) => (e.dns.ok ? `${e.syscall} ${e.dns.questions[0]!.name} ${e.dns.questions[0]!.type}` : e.dns.error));
    expect(seen).toEqual(expect.arrayContaining(['sendmmsg glibc-resolver.test A', 'sendmmsg glibc-resolver.test AAAA']));
  });

  it('sees bind to a loopback port', async () => {
    const probe = await listen('127.0.0.1');
    const port = portOf(probe);
    await new Promise((r) => probe.close(r));
    const r = await h.run(NODE, ['-e', `const s=require('net').createServer();s.listen(${port},'127.0.0.1',()=>s.close())`]);
    const env = r.envelopes.find((e) => e.event === 'security.bind');
    expect(env?.attributes).toMatchObject({ 'network.local.address': '127.0.0.1', 'network.local.port': port, 'network.transport': 'tcp', 'witness.result': 0 });
  });
});
