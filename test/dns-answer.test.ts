import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ipv6Text, parseDnsAnswer } from '../src/sensor/dns-answer.js';

const be16 = (v: number): number[] => [v >> 8, v & 0xff];
const name = (n: string): number[] => [...n.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]), 0];

/** api.example.com A? -> CNAME edge.example.net (TTL 300) -> A 10.1.2.3 (TTL 60), AAAA 2001:db8::1 (TTL 90) */
function response(): Uint8Array {
  const q = name('api.example.com');
  const head = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
  const edge = name('edge.example.net');
  const edgeAt = 12 + q.length + 4 + 12;
  const rr1 = [0xc0, 12, ...be16(5), 0, 1, 0, 0, 1, 44, ...be16(edge.length), ...edge];
  const rr2 = [0xc0 | (edgeAt >> 8), edgeAt & 0xff, ...be16(1), 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3];
  const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const rr3 = [0xc0 | (edgeAt >> 8), edgeAt & 0xff, ...be16(28), 0, 1, 0, 0, 0, 90, 0, 16, ...v6];
  return new Uint8Array([...head, ...q, 0, 1, 0, 1, ...rr1, ...rr2, ...rr3]);
}

describe('DNS answer parser', () => {
  it('follows a CNAME chain to its addresses, with the lowest address TTL', () => {
    expect(parseDnsAnswer(response())).toMatchObject({
      ok: true, id: 0x1234, rcode: 0, question: 'api.example.com', cnames: ['edge.example.net'],
      addresses: ['10.1.2.3', '2001:db8::1'], minTtl: 60, truncated: false,
    });
  });

  it('reads the TCP framing (2-byte length prefix)', () => {
    const r = response();
    expect(parseDnsAnswer(new Uint8Array([...be16(r.length), ...r]))).toMatchObject({ ok: true, addresses: ['10.1.2.3', '2001:db8::1'] });
  });

  it('a compression loop is an error, not a hang', () => {
    const r = response();
    // point the first answer's name at itself, then at a later byte: both must be refused
    const at = 12 + name('api.example.com').length + 4;
    for (const target of [at, at + 2, 0x3fff]) {
      const bad = new Uint8Array(r);
      bad[at] = 0xc0 | (target >> 8);
      bad[at + 1] = target & 0xff;
      expect(parseDnsAnswer(bad)).toMatchObject({ ok: false, error: expect.stringContaining('does not point backwards') });
    }
  });

  it('a query is not an answer; a capture cut short keeps what was read', () => {
    const q = response();
    q[2] = 0x01;
    expect(parseDnsAnswer(q)).toMatchObject({ ok: false, error: expect.stringContaining('QR bit clear') });
    const cut = response().subarray(0, response().length - 10);
    expect(parseDnsAnswer(cut, true)).toMatchObject({ ok: true, addresses: ['10.1.2.3'], truncated: true });
    expect(parseDnsAnswer(cut, false)).toMatchObject({ ok: false });
  });

  it('formats IPv6 per RFC 5952', () => {
    const t = (hex: string) => ipv6Text(new Uint8Array(Buffer.from(hex, 'hex')), 0);
    expect(t('20010db8000000000001000000000001')).toBe('2001:db8::1:0:0:1');
    expect(t('00000000000000000000ffff0a000001')).toBe('::ffff:10.0.0.1');
    expect(t('00000000000000000000000000000001')).toBe('::1');
    expect(t('20010db8000100020003000400050006')).toBe('2001:db8:1:2:3:4:5:6');
  });

  it('is total and bounded on random and mutated input', () => {
    const base = response();
    for (let i = 0; i < 20000; i++) {
      let b: Uint8Array;
      if (i % 2 === 0) b = new Uint8Array(randomBytes(i % 300));
      else {
        b = new Uint8Array(base);
        for (let f = 0; f <= i % 6; f++) b[(i * 7919 + f * 31) % b.length] = (i * 13 + f) & 0xff;
      }
      const r = parseDnsAnswer(b, i % 3 === 0);
      if (r.ok) expect(r.records.length).toBeLessThanOrEqual(64);
    }
  });
});
