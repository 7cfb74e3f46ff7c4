import { HpackDecoder, type HpackReason } from './hpack.js';

/**
 * HTTP/2 frames (RFC 9113) for one direction of one TLS connection, as the
 * SSL calls deliver them: a frame may be split across calls or several may
 * share one. DATA payloads stream to the handler as they come (never held);
 * other frames are held whole up to MAX_FRAME. HEADERS + CONTINUATION are
 * joined and HPACK-decoded with this direction's decoder. SETTINGS from the
 * other direction set our decoder's table bound (the caller passes them
 * across). Total: a typed failure ends parsing of the direction; a capture
 * gap inside a DATA payload is skipped and counted.
 */

export const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const MAX_FRAME = 1 << 20;
const MAX_BLOCK = 256 * 1024;

export type H2Reason = 'bad_preface' | 'frame_too_large' | 'bad_frame' | 'capture_gap' | `hpack_${HpackReason}`;

export interface H2Handler {
  headers(stream: number, headers: [string, string][], endStream: boolean): void;
  data(stream: number, b: Uint8Array): void;
  skip(stream: number, n: number): void;
  endStream(stream: number): void;
  reset(stream: number, code: number): void;
  /** SETTINGS_HEADER_TABLE_SIZE this side announced: the other direction's decoder bound */
  tableSize(n: number): void;
  fail(reason: H2Reason, detail: string): void;
}

const T_DATA = 0, T_HEADERS = 1, T_RST = 3, T_SETTINGS = 4, T_CONT = 9;
const F_END_STREAM = 0x1, F_ACK = 0x1, F_END_HEADERS = 0x4, F_PADDED = 0x8, F_PRIORITY = 0x20;

export class Http2Parser {
  readonly hpack = new HpackDecoder();
  private pre: number;              // preface bytes still expected
  private hdr: number[] = [];       // frame header being read
  private len = 0; private type = 0; private flags = 0; private stream = 0;
  private payload: number[] | null = null; // a non-DATA frame being held
  private dataLeft = 0;             // DATA: payload bytes still to come
  private dataPad = -1;             // DATA: pad length (-1: not read yet when PADDED)
  private dataBody = 0;             // DATA: body bytes still to pass on (before the padding)
  private block: number[] | null = null; // header block awaiting CONTINUATION
  private blockStream = 0; private blockEnd = false;
  private dead = false;

  constructor(expectPreface: boolean, private readonly h: H2Handler) {
    this.pre = expectPreface ? PREFACE.length : 0;
  }

  get failed(): boolean { return this.dead; }

  feed(b: Uint8Array): void {
    let i = 0;
    while (i < b.length && !this.dead) {
      if (this.pre > 0) {
        const want = PREFACE.charCodeAt(PREFACE.length - this.pre);
        if (b[i++] !== want) return this.fail('bad_preface', 'not the HTTP/2 client preface');
        this.pre--;
        continue;
      }
      if (this.dataLeft > 0) { i = this.dataBytes(b, i); continue; }
      if (this.payload !== null) {
        const n = Math.min(this.len - this.payload.length, b.length - i);
        for (let k = 0; k < n; k++) this.payload.push(b[i + k]!);
        i += n;
        if (this.payload.length === this.len) this.frame(Uint8Array.from(this.payload));
        continue;
      }
      this.hdr.push(b[i++]!);
      if (this.hdr.length === 9) this.startFrame();
    }
  }

  /** n bytes the capture missed */
  gap(n: number): void {
    if (this.dead || n <= 0) return;
    if (this.dataLeft > 0 && this.dataPad >= 0 && n <= this.dataBody) {
      this.dataLeft -= n;
      this.dataBody -= n;
      this.h.skip(this.stream, n);
      if (this.dataLeft === 0) this.endData();
      return;
    }
    this.fail('capture_gap', `${n} bytes were not captured outside a DATA payload`);
  }

  private fail(reason: H2Reason, detail: string): void {
    this.dead = true;
    this.h.fail(reason, detail);
  }

  private startFrame(): void {
    const x = this.hdr;
    this.hdr = [];
    this.len = (x[0]! << 16) | (x[1]! << 8) | x[2]!;
    this.type = x[3]!;
    this.flags = x[4]!;
    this.stream = ((x[5]! & 0x7f) * 2 ** 24) + ((x[6]! << 16) | (x[7]! << 8) | x[8]!);
    if (this.block !== null && this.type !== T_CONT) return this.fail('bad_frame', 'a header block was interrupted by another frame');
    if (this.type === T_DATA) {
      if (this.len === 0) return this.endDataEmpty();
      this.dataLeft = this.len;
      this.dataPad = this.flags & F_PADDED ? -1 : 0;
      this.dataBody = this.flags & F_PADDED ? 0 : this.len;
      return;
    }
    if (this.len > MAX_FRAME) return this.fail('frame_too_large', `frame of ${this.len} bytes`);
    if (this.len === 0) return this.frame(new Uint8Array(0));
    this.payload = [];
  }

  private endDataEmpty(): void {
    if (this.flags & F_END_STREAM) this.h.endStream(this.stream);
  }

  private dataBytes(b: Uint8Array, i: number): number {
    if (this.dataPad < 0) {
      this.dataPad = b[i]!;
      this.dataLeft--;
      if (this.dataPad > this.dataLeft) {
        this.fail('bad_frame', 'DATA padding longer than the frame');
        return b.length;
      }
      this.dataBody = this.dataLeft - this.dataPad;
      if (this.dataLeft === 0) this.endData();
      return i + 1;
    }
    const n = Math.min(this.dataLeft, b.length - i);
    const body = Math.min(n, this.dataBody);
    if (body > 0) this.h.data(this.stream, b.subarray(i, i + body));
    this.dataBody -= body;
    this.dataLeft -= n;
    if (this.dataLeft === 0) this.endData();
    return i + n;
  }

  private endData(): void {
    if (this.flags & F_END_STREAM) this.h.endStream(this.stream);
  }

  private frame(p: Uint8Array): void {
    this.payload = null;
    switch (this.type) {
      case T_HEADERS: {
        let o = 0;
        let end = p.length;
        if (this.flags & F_PADDED) {
          if (p.length < 1 || p[0]! > p.length - 1) return this.fail('bad_frame', 'HEADERS padding longer than the frame');
          end -= p[0]!;
          o = 1;
        }
        if (this.flags & F_PRIORITY) o += 5;
        if (o > end) return this.fail('bad_frame', 'HEADERS shorter than its fields');
        this.block = Array.from(p.subarray(o, end));
        this.blockStream = this.stream;
        this.blockEnd = (this.flags & F_END_STREAM) !== 0;
        if (this.flags & F_END_HEADERS) this.endBlock();
        return;
      }
      case T_CONT:
        if (this.block === null || this.stream !== this.blockStream) return this.fail('bad_frame', 'CONTINUATION without its HEADERS');
        for (const c of p) this.block.push(c);
        if (this.block.length > MAX_BLOCK) return this.fail('frame_too_large', `header block past ${MAX_BLOCK} bytes`);
        if (this.flags & F_END_HEADERS) this.endBlock();
        return;
      case T_RST:
        if (p.length !== 4) return this.fail('bad_frame', 'RST_STREAM is not 4 bytes');
        this.h.reset(this.stream, ((p[0]! << 24) >>> 0) + ((p[1]! << 16) | (p[2]! << 8) | p[3]!));
        return;
      case T_SETTINGS:
        if (this.flags & F_ACK) return;
        if (p.length % 6 !== 0) return this.fail('bad_frame', 'SETTINGS length not a multiple of 6');
        for (let k = 0; k < p.length; k += 6) {
          const id = (p[k]! << 8) | p[k + 1]!;
          const v = ((p[k + 2]! << 24) >>> 0) + ((p[k + 3]! << 16) | (p[k + 4]! << 8) | p[k + 5]!);
          if (id === 1) this.h.tableSize(v);
        }
        return;
      default: // PRIORITY, PUSH_PROMISE (clients disable it), PING, GOAWAY, WINDOW_UPDATE, unknown: nothing we keep
    }
  }

  private endBlock(): void {
    const block = Uint8Array.from(this.block!);
    this.block = null;
    const r = this.hpack.decode(block);
    if (!r.ok) return this.fail(`hpack_${r.reason}`, r.detail);
    this.h.headers(this.blockStream, r.headers, this.blockEnd);
    if (this.blockEnd) this.h.endStream(this.blockStream);
  }
}
