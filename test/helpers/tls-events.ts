import { gzipSync } from 'node:zlib';
import { huffmanCode } from '../../src/sensor/http/huffman.js';
import type { TlsDataEvent } from '../../src/sensor/types-net.js';

/** The seeded PRNG the pulse fixtures use: fuzz runs are reproducible from their seed. */
export { prng } from '../fixtures/pulse/sim.js';

let ts = 1_000_000n;

/** One SSL call's bytes as the probe delivers them: records of at most `chunk` bytes, the last `truncated` past `keep`. */
export function sslCall(direction: 'tx' | 'rx', bytes: Uint8Array, opts: { ssl?: bigint; pid?: number; chunk?: number; keep?: number } = {}): TlsDataEvent[] {
  const chunk = opts.chunk ?? 8192;
  const keep = Math.min(opts.keep ?? bytes.length, bytes.length);
  const out: TlsDataEvent[] = [];
  for (let off = 0; off < keep || (off === 0 && keep === 0); off += chunk) {
    const n = Math.min(chunk, keep - off);
    out.push({
      kind: 'tls_data', pid: opts.pid ?? 4242, tid: opts.pid ?? 4242, uid: 0, gid: 0, cgroupId: 1n, tsBootNs: (ts += 1000n),
      comm: 'node', flags: 0, ssl: opts.ssl ?? 0xabc0n, direction, fn: direction === 'tx' ? 'SSL_write' : 'SSL_read',
      callLen: bytes.length, callOff: off, bytes: bytes.slice(off, off + n), truncated: off + n >= keep && keep < bytes.length,
    });
    if (keep === 0) break;
  }
  return out;
}

/** bytes cut into calls at the given boundaries (or randomly with `rand`) */
export function splitCalls(direction: 'tx' | 'rx', bytes: Uint8Array, cuts: number[], ssl?: bigint): TlsDataEvent[] {
  const pts = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  const out: TlsDataEvent[] = [];
  for (let i = 0; i + 1 < pts.length; i++) out.push(...sslCall(direction, bytes.subarray(pts[i]!, pts[i + 1]!), ssl !== undefined ? { ssl } : {}));
  return out;
}

export const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
export { gzipSync };

/** HPACK literal-without-indexing of a new name (optionally Huffman-coded), for building test blocks. */
export function hpackLiteral(name: string, value: string, huffman = false): number[] {
  return [0x00, ...hpackString(name, huffman), ...hpackString(value, huffman)];
}

export function hpackString(s: string, huffman: boolean): number[] {
  const body = huffman ? huffmanEncode(s) : [...Buffer.from(s, 'latin1')];
  return [...hpackInt(body.length, 7, huffman ? 0x80 : 0), ...body];
}

/** The Huffman coding of s, padded with ones (RFC 7541 §5.2). */
export function huffmanEncode(s: string): number[] {
  const raw = [...Buffer.from(s, 'latin1')];
  let body: number[];
  {
    let acc = 0n;
    let bits = 0;
    for (const c of raw) {
      const [code, len] = huffmanCode(c);
      acc = (acc << BigInt(len)) | BigInt(code);
      bits += len;
    }
    const pad = (8 - (bits % 8)) % 8;
    acc = (acc << BigInt(pad)) | ((1n << BigInt(pad)) - 1n);
    bits += pad;
    body = [];
    for (let i = bits - 8; i >= 0; i -= 8) body.push(Number((acc >> BigInt(i)) & 0xffn));
  }
  return body;
}

export function hpackInt(v: number, prefix: number, first: number): number[] {
  const max = (1 << prefix) - 1;
  if (v < max) return [first | v];
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** One HTTP/2 frame. */
export function h2frame(type: number, flags: number, stream: number, payload: number[] | Uint8Array): number[] {
  const p = [...payload];
  return [(p.length >> 16) & 0xff, (p.length >> 8) & 0xff, p.length & 0xff, type, flags, (stream >>> 24) & 0x7f, (stream >> 16) & 0xff, (stream >> 8) & 0xff, stream & 0xff, ...p];
}
