import { describe, expect, it } from 'vitest';
import { HpackDecoder } from '../src/sensor/http/hpack.js';
import { huffmanCode, huffmanDecode } from '../src/sensor/http/huffman.js';
import { Http2Parser, PREFACE, type H2Handler } from '../src/sensor/http/http2.js';
import { TlsSessions } from '../src/sensor/tls-sessions.js';
import { enc, h2frame, hpackLiteral, huffmanEncode, prng, splitCalls } from './helpers/tls-events.js';

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const CLOCK = { bootToEpochNs: 0n };

describe('HPACK Huffman (RFC 7541 Appendix B)', () => {
  it('decodes the RFC examples and round-trips every octet', () => {
    expect(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'))).toEqual({ ok: true, bytes: enc('www.example.com') });
    expect(huffmanDecode(hex('6402'))).toEqual({ ok: true, bytes: enc('302') });
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    const coded = new Uint8Array(huffmanEncode(all));
    const r = huffmanDecode(coded);
    expect(r.ok && Buffer.from(r.bytes).toString('latin1')).toBe(all);
    let kraft = 0;
    for (let s = 0; s <= 256; s++) kraft += 2 ** -huffmanCode(s)[1];
    expect(kraft).toBe(1); // a complete prefix code: every bit string decodes or is padding
  });

  it('refuses bad padding and EOS inside the string (§5.2)', () => {
    expect(huffmanDecode(hex('07')).ok).toBe(true); // '0' + three 1-bits of padding
    expect(huffmanDecode(hex('00')).ok).toBe(false); // padding not ones
    expect(huffmanDecode(hex('07ff')).ok).toBe(false); // more than 7 bits of padding
    expect(huffmanDecode(hex('ffffffff')).ok).toBe(false); // EOS
  });
});

describe('HPACK decoder', () => {
  it('RFC 7541 C.3 and C.4: three requests sharing a dynamic table, without and with Huffman', () => {
    for (const blocks of [
      ['828684410f7777772e6578616d706c652e636f6d', '828684be58086e6f2d6361636865', '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565'],
      ['828684418cf1e3c2e5f23a6ba0ab90f4ff', '828684be5886a8eb10649cbf', '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'],
    ]) {
      const d = new HpackDecoder();
      expect(d.decode(hex(blocks[0]!))).toEqual({ ok: true, headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']] });
      expect(d.decode(hex(blocks[1]!))).toEqual({ ok: true, headers: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']] });
      expect(d.decode(hex(blocks[2]!))).toEqual({ ok: true, headers: [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']] });
    }
  });

  it('typed reasons: a bad index, a truncated string, an oversized table update, then failed_before', () => {
    expect(new HpackDecoder().decode(hex('ff00'))).toMatchObject({ ok: false, reason: 'bad_index' });
    expect(new HpackDecoder().decode(hex('0085aaaa'))).toMatchObject({ ok: false, reason: 'truncated' });
    const d = new HpackDecoder();
    expect(d.decode(new Uint8Array([0x3f, 0xe1, 0xff, 0x03]))).toMatchObject({ ok: false, reason: 'table_size' });
    expect(d.decode(hex('82'))).toMatchObject({ ok: false, reason: 'failed_before' });
    expect(new HpackDecoder().decode(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toMatchObject({ ok: false });
  });
});

interface Seen { headers: [number, [string, string][]][]; data: Map<number, string>; ended: number[]; failed: string[] }

function collect(): [H2Handler, Seen] {
  const s: Seen = { headers: [], data: new Map(), ended: [], failed: [] };
  return [{
    headers: (id, h) => s.headers.push([id, h]),
    data: (id, b) => s.data.set(id, (s.data.get(id) ?? '') + Buffer.from(b).toString('latin1')),
    skip: (id, n) => s.data.set(id, (s.data.get(id) ?? '') + '?'.repeat(n)),
    endStream: (id) => s.ended.push(id),
    reset: () => {},
    tableSize: () => {},
    fail: (r) => s.failed.push(r),
  }, s];
}

/** A client's connection: preface, SETTINGS, a padded HEADERS + CONTINUATION, padded DATA in two frames. */
function clientBytes(): Uint8Array {
  const block = [0x83, 0x87, ...hpackLiteral(':authority', 'api.example.com', true), ...hpackLiteral(':path', '/v1/messages?x=1', false),
    ...hpackLiteral('content-type', 'application/json', true), ...hpackLiteral('authorization', 'Bearer s3cr3t', true)];
  const cut = 7;
  return new Uint8Array([
    ...enc(PREFACE), ...h2frame(4, 0, 0, [0, 1, 0, 0, 0x10, 0]),
    ...h2frame(1, 0x08 | 0x20, 1, [3, 0, 0, 0, 0, 16, ...block.slice(0, cut), 0, 0, 0]), // PADDED | PRIORITY, no END_HEADERS
    ...h2frame(9, 0x04, 1, block.slice(cut)),
    ...h2frame(0, 0x08, 1, [2, ...enc('{"model":"m-'), 0, 0]),
    ...h2frame(0, 0x01, 1, enc('2","x":[1,2]}')),
  ]);
}

describe('HTTP/2 frames', () => {
  it('the same headers, body and end whatever the split into SSL calls (every cut, then random multi-cuts)', () => {
    const bytes = clientBytes();
    const [h0, want] = collect();
    new Http2Parser(true, h0).feed(bytes);
    expect(want.failed).toEqual([]);
    expect(want.headers[0]![1]).toContainEqual([':authority', 'api.example.com']);
    expect(want.data.get(1)).toBe('{"model":"m-2","x":[1,2]}');
    expect(want.ended).toEqual([1]);
    const rand = prng(7);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const cuts = cut < bytes.length ? [cut] : [1 + Math.floor(rand() * (bytes.length - 2)), Math.floor(rand() * bytes.length), Math.floor(rand() * bytes.length)];
      const [h, got] = collect();
      const p = new Http2Parser(true, h);
      const pts = [0, ...cuts.sort((a, b) => a - b), bytes.length];
      for (let i = 0; i + 1 < pts.length; i++) p.feed(bytes.subarray(pts[i]!, pts[i + 1]!));
      expect(got, `cut ${cuts.join(',')}`).toEqual(want);
    }
  });

  it('a capture gap inside a DATA payload is skipped; outside one it is a typed failure', () => {
    const [h, got] = collect();
    const p = new Http2Parser(false, h);
    const frame = h2frame(0, 1, 3, enc('0123456789'));
    p.feed(new Uint8Array(frame.slice(0, 12)));
    p.gap(5);
    p.feed(new Uint8Array(frame.slice(17)));
    expect(got.data.get(3)).toBe('012?????89');
    expect(got.ended).toEqual([3]);
    p.gap(3);
    expect(got.failed).toEqual(['capture_gap']);
  });

  it('through TlsSessions: one tls.http_request per stream with the response usage, across calls that split frames', () => {
    const req = clientBytes();
    const respBlock = [0x88, ...hpackLiteral('content-type', 'application/json', true)];
    const body = enc('{"usage":{"input_tokens":7,"output_tokens":9},"content":"secret answer"}');
    const resp = new Uint8Array([...h2frame(4, 0, 0, []), ...h2frame(1, 0x04, 1, respBlock), ...h2frame(0, 0x01, 1, body)]);
    const t = new TlsSessions();
    const envs = [...splitCalls('tx', req, [30, 31, 60]), ...splitCalls('rx', resp, [5, 40])].flatMap((e) => t.process(e, CLOCK));
    expect(envs).toHaveLength(1);
    expect(envs[0]!.attributes).toMatchObject({
      'network.protocol.version': '2', 'http.request.method': 'POST', 'server.address': 'api.example.com', 'url.path': '/v1/messages',
      'http.response.status_code': 200, 'gen_ai.request.model': 'm-2', 'gen_ai.usage.input_tokens': 7, 'gen_ai.usage.output_tokens': 9,
    });
    expect(JSON.stringify(envs)).not.toMatch(/s3cr3t|secret answer|x=1/);
  });
});

describe('fuzz: the HTTP/2 and HPACK parsers are total', () => {
  it('random and mutated input never throws and always ends (a result or a typed reason)', () => {
    const rand = prng(2026);
    const base = clientBytes();
    for (let i = 0; i < 3000; i++) {
      let b: Uint8Array;
      if (i % 3 === 0) b = new Uint8Array(Array.from({ length: Math.floor(rand() * 400) }, () => Math.floor(rand() * 256)));
      else {
        b = base.slice();
        for (let k = 0; k < 1 + (i % 8); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        if (i % 5 === 0) b = b.subarray(0, Math.floor(rand() * b.length));
      }
      const [h, got] = collect();
      const p = new Http2Parser(i % 2 === 0, h);
      expect(() => { p.feed(b); p.gap(Math.floor(rand() * 50)); }).not.toThrow();
      for (const r of got.failed) expect(r).toMatch(/^(bad_preface|frame_too_large|bad_frame|capture_gap|hpack_[a-z_]+)$/);
      const d = new HpackDecoder();
      const r = d.decode(b.subarray(24));
      expect(r.ok || /^[a-z_]+$/.test(r.reason)).toBe(true);
      const t = new TlsSessions();
      expect(() => splitCalls('tx', b, [Math.floor(rand() * b.length)]).forEach((e) => t.process(e, CLOCK))).not.toThrow();
      expect(() => t.flushAll()).not.toThrow();
    }
  });
});
