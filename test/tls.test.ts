import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { isGrease, parseClientHello } from '../src/sensor/tls.js';

const u16 = (v: number): number[] => [v >> 8, v & 0xff];
const vec16 = (b: number[]): number[] => [...u16(b.length), ...b];
const ext = (type: number, body: number[]): number[] => [...u16(type), ...vec16(body)];

/** A ClientHello with the spec example's ciphers, extensions and signature algorithms (JA4.md), plus GREASE. */
function specHello(opts: { sni?: string; alpn?: string[]; grease?: boolean } = {}): Uint8Array {
  const grease = opts.grease !== false;
  const ciphers = [...(grease ? [0x0a0a] : []), 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
  const sni = opts.sni ?? 'api.anthropic.com';
  const host = [...Buffer.from(sni)];
  const alpn = (opts.alpn ?? ['h2', 'http/1.1']).flatMap((p) => [p.length, ...Buffer.from(p, 'latin1')]);
  const sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601].flatMap(u16);
  const order = [0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015];
  const exts: number[] = grease ? ext(0x1a1a, []) : [];
  for (const t of order) {
    if (t === 0x0000) exts.push(...ext(t, vec16([0, ...vec16(host)])));
    else if (t === 0x0010) exts.push(...ext(t, vec16(alpn)));
    else if (t === 0x000d) exts.push(...ext(t, vec16(sig)));
    else if (t === 0x002b) exts.push(...ext(t, [6, ...u16(0x2a2a), ...u16(0x0304), ...u16(0x0303)]));
    else exts.push(...ext(t, []));
  }
  const body = [...u16(0x0303), ...new Array(32).fill(7), 0, ...vec16(ciphers.flatMap(u16)), 1, 0, ...vec16(exts)];
  const hs = [1, 0, body.length >> 8, body.length & 0xff, ...body];
  return new Uint8Array([0x16, 3, 1, ...u16(hs.length), ...hs]);
}

describe('ClientHello parser and JA4', () => {
  it('computes the JA4 of the specification example, GREASE ignored', () => {
    const r = parseClientHello(specHello());
    expect(r).toMatchObject({ ok: true, serverName: 'api.anthropic.com', alpn: ['h2', 'http/1.1'], versions: ['1.3', '1.2'], cipherCount: 15, extensionCount: 16 });
    expect(r.ok && r.ja4).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
    expect(r.ok && r.ja4Raw).toBe('t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601');
    // the same hello without GREASE has the same fingerprint
    const plain = parseClientHello(specHello({ grease: false }));
    expect(plain.ok && plain.ja4).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
  });

  it('follows the ALPN rules: http/1.1 is h1, non-alphanumeric ends are hex, none is 00', () => {
    const a = (alpn: string[]) => { const r = parseClientHello(specHello({ alpn })); return r.ok ? r.ja4.slice(8, 10) : r.reason; };
    expect(a(['http/1.1'])).toBe('h1');
    expect(a(['\u00ab'])).toBe('ab'); // 0xab: hex "ab", first and last digit
    expect(a([])).toBe('00');
  });

  it('parses a ClientHello split across TLS records and reports incomplete input', () => {
    const whole = specHello();
    const hs = whole.subarray(5);
    const split = new Uint8Array([0x16, 3, 1, 0, 50, ...hs.subarray(0, 50), 0x16, 3, 1, ...u16(hs.length - 50), ...hs.subarray(50)]);
    const r = parseClientHello(split);
    expect(r.ok && r.ja4).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
    for (const cut of [0, 1, 4, 5, 9, 60, whole.length - 1]) {
      expect(parseClientHello(whole.subarray(0, cut))).toMatchObject({ ok: false, reason: 'incomplete' });
    }
    expect(parseClientHello(new Uint8Array(Buffer.from('GET / HTTP/1.1\r\n')))).toMatchObject({ ok: false, reason: 'not_tls' });
    expect(parseClientHello(new Uint8Array([0x16, 3, 3, 0, 4, 2, 0, 0, 0]))).toMatchObject({ ok: false, reason: 'not_client_hello' });
  });

  it('is total: random and mutated inputs give a result or a typed reason, never a throw', () => {
    const base = specHello();
    const reasons = new Set<string>();
    for (let i = 0; i < 20000; i++) {
      let input: Uint8Array;
      if (i % 3 === 0) input = new Uint8Array(randomBytes(i % 600));
      else {
        input = new Uint8Array(base);
        const flips = 1 + (i % 8);
        for (let f = 0; f < flips; f++) input[(i * 7919 + f * 104729) % input.length] = (i * 31 + f) & 0xff;
        if (i % 5 === 0) input = input.subarray(0, (i * 13) % input.length);
        if (i % 3 === 1) { input[0] = 0x16; input[1] = 3; }
      }
      const r = parseClientHello(input);
      reasons.add(r.ok ? 'ok' : r.reason);
      if (r.ok) expect(r.ja4).toMatch(/^t(13|12|11|10|s3|s2|s1|00)[di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/);
    }
    expect([...reasons].sort()).toEqual(expect.arrayContaining(['incomplete', 'malformed', 'not_tls', 'ok']));
  });

  it('recognises GREASE values exactly', () => {
    const g = [];
    for (let v = 0; v < 0x10000; v++) if (isGrease(v)) g.push(v.toString(16));
    expect(g).toEqual(['a0a', '1a1a', '2a2a', '3a3a', '4a4a', '5a5a', '6a6a', '7a7a', '8a8a', '9a9a', 'aaaa', 'baba', 'caca', 'dada', 'eaea', 'fafa']);
  });

  it('parses what node:tls actually sends (SNI, ALPN, TLS 1.3)', async () => {
    const first = await new Promise<Buffer>((resolve) => {
      const srv = createServer((s) => s.once('data', (d) => { resolve(d); s.destroy(); srv.close(); }));
      srv.listen(0, '127.0.0.1', () => {
        const c = connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, servername: 'api.openai.com', ALPNProtocols: ['h2', 'http/1.1'] });
        c.on('error', () => {});
      });
    });
    const r = parseClientHello(new Uint8Array(first));
    expect(r).toMatchObject({ ok: true, serverName: 'api.openai.com', alpn: ['h2', 'http/1.1'] });
    expect(r.ok && r.versions[0]).toBe('1.3');
    expect(r.ok && r.ja4).toMatch(/^t13d\d{4}h2_/);
  });
});
