import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { parseDnsMessage } from '../../src/sensor/dns.js';

/** A throwaway self-signed certificate (openssl CLI), made at test time. */
export function selfSignedCert(cn: string): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'witness-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${cn}`, '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A loopback TLS server that reads a request up to a blank line, waits
 * `delayMs`, then answers `responseBytes` bytes and closes; in front of it a
 * TCP relay that counts the bytes each way exactly (what the client sent and
 * received on the wire), listening on `host`.
 */
export interface CountingTls { port: number; host: string; counts: { up: number; down: number }[]; close(): Promise<void> }

export async function countingTlsServer(host: string, delayMs: number, responseBytes: number): Promise<CountingTls> {
  const { key, cert } = selfSignedCert('witness-test');
  const tls: TlsServer = createTlsServer({ key, cert, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      got = '';
      setTimeout(() => s.end(Buffer.alloc(responseBytes, 0x61)), delayMs);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  const tlsPort = (tls.address() as AddressInfo).port;
  const counts: { up: number; down: number }[] = [];
  const relay: Server = createTcpServer((c: Socket) => {
    const n = { up: 0, down: 0 };
    counts.push(n);
    const u = new (c.constructor as typeof Socket)();
    u.connect(tlsPort, '127.0.0.1');
    c.on('data', (d) => { n.up += d.length; u.write(d); });
    u.on('data', (d) => { n.down += d.length; c.write(d); });
    c.on('end', () => u.end());
    u.on('end', () => c.end());
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, host, r));
  return {
    port: (relay.address() as AddressInfo).port, host, counts,
    close: async () => { relay.close(); tls.close(); },
  };
}

const be16 = (v: number): number[] => [v >> 8, v & 0xff];

/**
 * A DNS stub on UDP `host`:53 (a loopback address unique to the test):
 * A queries for names in `records` get a CNAME to `edge.<name>` and an A
 * record for it (TTL 120); everything else NOERROR with no answers.
 */
export async function dnsStub(host: string, records: Record<string, string>): Promise<UdpSocket> {
  const sock = createSocket('udp4');
  sock.on('message', (q, rinfo) => {
    const parsed = parseDnsMessage(new Uint8Array(q));
    if (!parsed.ok || parsed.questions.length === 0) return;
    const { name, type } = parsed.questions[0]!;
    const qEnd = 12 + name.split('.').reduce((a, l) => a + l.length + 1, 1) + 4;
    const ip = records[name];
    const answers: number[] = [];
    let an = 0;
    if (ip !== undefined && type === 'A') {
      const edge = [4, ...Buffer.from('edge'), 0xc0, 12]; // edge.<question name>
      answers.push(0xc0, 12, ...be16(5), ...be16(1), 0, 0, 0, 120, ...be16(edge.length), ...edge);
      const edgeAt = qEnd + 12; // the CNAME rdata follows the 12 fixed bytes of the first answer
      answers.push(0xc0 | (edgeAt >> 8), edgeAt & 0xff, ...be16(1), ...be16(1), 0, 0, 0, 120, ...be16(4), ...ip.split('.').map(Number));
      an = 2;
    }
    const head = [q[0]!, q[1]!, 0x81, 0x80, 0, 1, ...be16(an), 0, 0, 0, 0];
    sock.send(Buffer.from([...head, ...q.subarray(12, qEnd), ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(53, host, r));
  return sock;
}
