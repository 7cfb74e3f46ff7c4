import { spawn } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { netDerivedSchemas, sensorEnvelopeSchema } from '../../src/events/schemas.js';
import { NetDepth } from '../../src/sensor/netdepth.js';
import { countingTlsServer, dnsStub, type CountingTls } from '../helpers/netdepth.js';
import { kernelSuite, ofKind, SensorHarness, type TracedRun } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const NODE = process.execPath;
const DELAY_MS = 300;
const RESPONSE_BYTES = 5000;
const REQUEST = 'POST /v1/messages HTTP/1.1\\r\\nHost: api.anthropic.com\\r\\ncontent-length: 2\\r\\n\\r\\n{}';

/** A node:tls client: connects to HOST:PORT with servername SNI, sends one request, reads to the end. */
const CLIENT = (host: string, port: number, sni: string): string => `
const tls = require('tls');
const s = tls.connect({ host: '${host}', port: ${port}, servername: '${sni}', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false }, () => s.write('${REQUEST}'));
let got = 0;
s.on('data', (d) => { got += d.length; });
s.on('end', () => { s.end(); process.exitCode = got === ${RESPONSE_BYTES} ? 0 : 3; });
s.on('error', (e) => { console.error(e.message); process.exitCode = 4; });`;

function envelopesOf(r: TracedRun, h: SensorHarness): Envelope[] {
  const net = new NetDepth();
  return r.events.flatMap((ev) => net.process(ev, h.sensor.clock));
}

function validate(envs: Envelope[]): void {
  for (const e of envs) {
    const derived = (netDerivedSchemas as Record<string, { safeParse(v: unknown): { success: boolean; error?: unknown } }>)[e.event];
    const r = derived ? derived.safeParse(e.attributes) : sensorEnvelopeSchema.safeParse(JSON.parse(JSON.stringify(e)));
    expect(r.success, `${e.event}: ${JSON.stringify(r.error)}`).toBe(true);
  }
}

describe.skipIf(skip)('network depth on the real kernel', () => {
  let h: SensorHarness;
  let server: CountingTls;
  let dns: UdpSocket;
  const dnsHost = `127.${randomInt(1, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`;
  const relayHost = `127.0.0.${randomInt(2, 250)}`;

  beforeAll(async () => {
    h = new SensorHarness();
    server = await countingTlsServer(relayHost, DELAY_MS, RESPONSE_BYTES);
    dns = await dnsStub(dnsHost, { 'api.anthropic.com': relayHost });
  });
  afterAll(async () => {
    dns?.close();
    await server?.close();
    await h?.close();
  });

  it('resolves a provider name through a loopback resolver, then: ClientHello, named connect, llm.call with TTFT and exact bytes', async () => {
    const conf = `nameserver ${dnsHost}\\noptions timeout:1 attempts:1\\n`;
    const before = server.counts.length;
    const r = await h.run('/usr/bin/unshare', ['-m', '/bin/sh', '-c',
      `printf '${conf}' > /tmp/witness-resolv.$$ && mount --bind /tmp/witness-resolv.$$ /etc/resolv.conf && rm -f /tmp/witness-resolv.$$ && ` +
      `exec ${NODE} -e "${CLIENT('api.anthropic.com', server.port, 'api.anthropic.com').replace(/"/g, '\\"')}"`]);
    expect(r.code).toBe(0);
    const envs = envelopesOf(r, h);
    validate(envs);
    const answer = envs.find((e) => e.event === 'dns.answer' && e.attributes['dns.question.name'] === 'api.anthropic.com' && (e.attributes['dns.answers'] as string[]).length > 0);
    expect(answer?.attributes).toMatchObject({ 'dns.answers': [relayHost], 'witness.dns.cnames': ['edge.api.anthropic.com'], 'witness.dns.ttl': 120 });
    const connect = envs.find((e) => e.event === 'network.connect' && e.attributes['network.peer.port'] === server.port);
    expect(connect?.attributes).toMatchObject({ 'network.peer.address': relayHost, 'server.address': 'api.anthropic.com', 'witness.server.address.source': 'dns' });
    const hello = envs.find((e) => e.event === 'tls.client_hello');
    expect(hello?.attributes).toMatchObject({ 'server.address': 'api.anthropic.com', 'witness.tls.alpn': ['h2', 'http/1.1'], 'network.peer.address': relayHost, 'network.peer.port': server.port });
    expect(hello?.attributes['tls.client.ja4']).toMatch(/^t13d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$/);
    const call = envs.find((e) => e.event === 'llm.call');
    expect(call, JSON.stringify(envs.filter((e) => e.event.startsWith('network.')))).toBeDefined();
    const wire = server.counts[before]!;
    expect(call!.attributes).toMatchObject({
      'gen_ai.provider.name': 'anthropic', 'server.address': 'api.anthropic.com', 'witness.conn.end': 'close',
      'witness.llm.request_bytes': wire.up, 'witness.llm.response_bytes': wire.down,
    });
    process.stderr.write(JSON.stringify(call) + "\n");
    const ttft = call!.attributes["witness.llm.ttft_ms"] as number;
    expect(Math.abs(ttft - DELAY_MS)).toBeLessThanOrEqual(50);
    process.stderr.write(`netdepth records:\n${[answer, connect, hello, call].map((e) => JSON.stringify(e)).join('\n')}\n`);
  });

  it('an untraced process doing the same produces nothing', async () => {
    const seen = h.all.length;
    const child = spawn(NODE, ['-e', CLIENT(relayHost, server.port, 'api.anthropic.com')], { stdio: 'ignore' });
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    expect(code).toBe(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(h.all.slice(seen).filter((e) => e.pid === child.pid)).toEqual([]);
  });

  it('assembles a ClientHello written in two writes (send + writev); plaintext first bytes are never captured', async () => {
    const script = `
import os, socket, ssl, sys
port = int(sys.argv[1])
# the ClientHello Python's own ssl would send, taken from a memory BIO: no handshake needed
ctx = ssl.create_default_context(); ctx.set_alpn_protocols(['http/1.1'])
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out, server_hostname='api.openai.com')
try: o.do_handshake()
except ssl.SSLWantReadError: pass
hello = out.read()
s = socket.create_connection(('${relayHost}', port))
s.send(hello[:40])
os.writev(s.fileno(), [hello[40:]])
s.close()
p = socket.create_connection(('${relayHost}', port))
p.send(b'GET /secret HTTP/1.1\\r\\nAuthorization: Bearer sk-live\\r\\n\\r\\n')
p.close()
`;
    const r = await h.run('/usr/bin/python3', ['-c', script, String(server.port)]);
    expect(r.code).toBe(0);
    const heads = ofKind(r.events, 'stream_head');
    expect(heads.map((e) => [e.syscall, e.streamOff, e.bytes.length > 0])).toEqual([['sendto', 0, true], ['writev', 40, true]]);
    expect(heads.every((e) => !Buffer.from(e.bytes).toString('latin1').includes('Bearer'))).toBe(true);
    const envs = envelopesOf(r, h);
    validate(envs);
    const hello = envs.find((e) => e.event === 'tls.client_hello');
    expect(hello?.attributes).toMatchObject({ 'server.address': 'api.openai.com', 'witness.tls.alpn': ['http/1.1'], 'witness.tls.writes': 2 });
    // both connections are accounted; the one to a provider SNI is an llm.call, the plaintext one a plain close
    expect(envs.filter((e) => e.event === 'llm.call').map((e) => e.attributes['gen_ai.provider.name'])).toEqual(['openai']);
    const plain = envs.filter((e) => e.event === 'network.close');
    expect(plain.length).toBe(1);
    expect(plain[0]!.attributes['witness.conn.tx_bytes']).toBe(55);
  });
});
