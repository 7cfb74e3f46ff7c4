import { huffmanDecode } from './huffman.js';

/**
 * An HPACK decoder (RFC 7541) for one direction of one HTTP/2 connection.
 * Every header field is decoded, values we never keep included, because the
 * dynamic table needs them; the caller keeps only what docs/privacy.md says.
 * Total: any block yields headers or a typed reason, never a throw; a failed
 * block leaves the table unusable (the connection's later blocks may refer
 * to entries it should have added), so the decoder stays failed.
 */

export type HpackReason = 'truncated' | 'integer_overflow' | 'bad_index' | 'huffman' | 'table_size' | 'too_large' | 'failed_before';
export type HpackResult = { ok: true; headers: [string, string][] } | { ok: false; reason: HpackReason; detail: string };

const STATIC: readonly [string, string][] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Bounds: a block's decoded size and the table size a peer may ask for. */
const MAX_HEADER_BYTES = 256 * 1024;
const MAX_TABLE = 64 * 1024;

class Fail {
  constructor(readonly reason: HpackReason, readonly detail: string) {}
}

export class HpackDecoder {
  private readonly table: [string, string][] = []; // newest first
  private size = 0;
  private maxSize = 4096;
  private failed: Fail | null = null;

  /** The table size this direction's decoder side allowed (SETTINGS_HEADER_TABLE_SIZE); updates may not exceed it. */
  protocolMax = 4096;

  decode(block: Uint8Array): HpackResult {
    if (this.failed) return { ok: false, reason: 'failed_before', detail: `an earlier block failed (${this.failed.reason})` };
    const r = this.run(block);
    if (r instanceof Fail) {
      this.failed = r;
      return { ok: false, reason: r.reason, detail: r.detail };
    }
    return { ok: true, headers: r };
  }

  private run(b: Uint8Array): [string, string][] | Fail {
    const out: [string, string][] = [];
    const pos = { i: 0 };
    let total = 0;
    while (pos.i < b.length) {
      const c = b[pos.i]!;
      let name: string | Fail;
      let value: string | Fail;
      if (c & 0x80) { // indexed field
        const idx = this.int(b, pos, 7);
        if (idx instanceof Fail) return idx;
        const e = this.entry(idx);
        if (e instanceof Fail) return e;
        [name, value] = e;
      } else if ((c & 0xe0) === 0x20) { // dynamic table size update
        const n = this.int(b, pos, 5);
        if (n instanceof Fail) return n;
        if (n > Math.min(this.protocolMax, MAX_TABLE)) return new Fail('table_size', `size update to ${n} exceeds ${Math.min(this.protocolMax, MAX_TABLE)}`);
        this.maxSize = n;
        this.evict(0);
        continue;
      } else { // literal: with indexing (01), without (0000), never indexed (0001)
        const incremental = (c & 0xc0) === 0x40;
        const idx = this.int(b, pos, incremental ? 6 : 4);
        if (idx instanceof Fail) return idx;
        if (idx === 0) name = this.str(b, pos);
        else {
          const e = this.entry(idx);
          name = e instanceof Fail ? e : e[0];
        }
        if (name instanceof Fail) return name;
        value = this.str(b, pos);
        if (value instanceof Fail) return value;
        if (incremental) this.add(name, value);
      }
      total += name.length + value.length + 32;
      if (total > MAX_HEADER_BYTES) return new Fail('too_large', `header block decodes to more than ${MAX_HEADER_BYTES} bytes`);
      out.push([name, value]);
    }
    return out;
  }

  private entry(idx: number): [string, string] | Fail {
    if (idx >= 1 && idx <= STATIC.length) return STATIC[idx - 1]!;
    const d = this.table[idx - STATIC.length - 1];
    return d ?? new Fail('bad_index', `index ${idx} is past the tables (${STATIC.length} static + ${this.table.length} dynamic)`);
  }

  private add(name: string, value: string): void {
    const sz = name.length + value.length + 32;
    this.evict(sz);
    if (sz > this.maxSize) return; // an entry larger than the table empties it (§4.4)
    this.table.unshift([name, value]);
    this.size += sz;
  }

  private evict(room: number): void {
    while (this.table.length > 0 && this.size + room > this.maxSize) {
      const [n, v] = this.table.pop()!;
      this.size -= n.length + v.length + 32;
    }
  }

  /** §5.1 integer with an n-bit prefix. */
  private int(b: Uint8Array, pos: { i: number }, n: number): number | Fail {
    const mask = (1 << n) - 1;
    let v = b[pos.i++]! & mask;
    if (v < mask) return v;
    for (let m = 0; ; m += 7) {
      if (pos.i >= b.length) return new Fail('truncated', 'integer runs past the block');
      if (m > 28) return new Fail('integer_overflow', 'integer longer than 5 continuation bytes');
      const x = b[pos.i++]!;
      v += (x & 0x7f) * 2 ** m;
      if ((x & 0x80) === 0) return v;
    }
  }

  /** §5.2 string literal (latin1: header octets as they are). */
  private str(b: Uint8Array, pos: { i: number }): string | Fail {
    if (pos.i >= b.length) return new Fail('truncated', 'string length missing');
    const huff = (b[pos.i]! & 0x80) !== 0;
    const len = this.int(b, pos, 7);
    if (len instanceof Fail) return len;
    if (len > MAX_HEADER_BYTES) return new Fail('too_large', `string of ${len} bytes`);
    if (pos.i + len > b.length) return new Fail('truncated', `string of ${len} bytes runs past the block`);
    const raw = b.subarray(pos.i, pos.i + len);
    pos.i += len;
    if (!huff) return Buffer.from(raw).toString('latin1');
    const h = huffmanDecode(raw);
    return h.ok ? Buffer.from(h.bytes).toString('latin1') : new Fail('huffman', 'invalid Huffman string');
  }
}
