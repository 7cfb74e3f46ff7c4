/**
 * An incremental HTTP/1.1 message parser for one direction of one TLS
 * connection (RFC 9112): start line and header fields, then the body framed
 * by Content-Length, chunked transfer coding, or the end of the connection.
 * Keep-alive and pipelining: messages follow one another. Total: any byte
 * string yields messages or a typed failure, after which the direction is
 * not parsed further (it cannot be resynchronised safely). A capture gap
 * inside a body of known length is skipped and counted; anywhere else it is
 * a failure.
 */

export interface H1Head {
  method: string | null;   // requests
  target: string | null;
  status: number | null;   // responses
  version: string;
  /** header fields in order, names lower-cased (values: octets as latin1) */
  headers: [string, string][];
}

export type H1Reason = 'not_http' | 'head_too_large' | 'bad_framing' | 'capture_gap' | 'upgraded';

export interface H1Handler {
  /** a message head; return noBody for a response that has none whatever its headers say (HEAD, 1xx, 204, 304) */
  head(h: H1Head): { noBody?: boolean } | void;
  body(b: Uint8Array): void;
  skip(n: number): void;
  end(untilClose: boolean): void;
  fail(reason: H1Reason, detail: string): void;
}

const MAX_HEAD = 64 * 1024;
const MAX_LINE = 1024;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(1\.[01])$/;
const STATUS_LINE = /^HTTP\/(1\.[01]) (\d{3})(?: .*)?$/;

type State = 'head' | 'length' | 'chunk_size' | 'chunk_data' | 'chunk_crlf' | 'trailers' | 'until_close' | 'failed';

export class Http1Parser {
  private state: State = 'head';
  private buf: number[] = [];
  private remaining = 0;
  private inMessage = false;

  constructor(private readonly role: 'request' | 'response', private readonly h: H1Handler) {}

  get failed(): boolean { return this.state === 'failed'; }
  /** a message is open (its head seen, its end not) */
  get open(): boolean { return this.inMessage; }

  feed(b: Uint8Array): void {
    let i = 0;
    while (i < b.length && this.state !== 'failed') {
      switch (this.state) {
        case 'length': {
          const n = Math.min(this.remaining, b.length - i);
          this.h.body(b.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish(false);
          break;
        }
        case 'chunk_data': {
          const n = Math.min(this.remaining, b.length - i);
          this.h.body(b.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'chunk_crlf';
          break;
        }
        case 'until_close':
          this.h.body(b.subarray(i));
          i = b.length;
          break;
        default:
          this.lineByte(b[i++]!);
      }
    }
  }

  /** n bytes the capture missed */
  gap(n: number): void {
    if (this.state === 'failed' || n <= 0) return;
    if ((this.state === 'length' || this.state === 'chunk_data') && n <= this.remaining) {
      this.h.skip(n);
      this.remaining -= n;
      if (this.remaining === 0) {
        if (this.state === 'length') this.finish(false);
        else this.state = 'chunk_crlf';
      }
      return;
    }
    if (this.state === 'until_close') return this.h.skip(n);
    this.fail('capture_gap', `${n} bytes were not captured (state ${this.state})`);
  }

  /** the connection ended: a body read until close is complete */
  close(): void {
    if (this.state === 'until_close') this.finish(true);
  }

  private fail(reason: H1Reason, detail: string): void {
    this.state = 'failed';
    this.inMessage = false;
    this.h.fail(reason, detail);
  }

  private finish(untilClose: boolean): void {
    this.state = 'head';
    this.inMessage = false;
    this.h.end(untilClose);
  }

  private lineByte(c: number): void {
    const limit = this.state === 'head' || this.state === 'trailers' ? MAX_HEAD : MAX_LINE;
    if (this.buf.length >= limit) return this.fail(this.state === 'head' ? 'head_too_large' : 'bad_framing', `line or head past ${limit} bytes`);
    this.buf.push(c);
    if (c !== 0x0a) return;
    const line = this.buf;
    switch (this.state) {
      case 'head': {
        const n = line.length;
        // a blank line ends the head; blank lines before a message are tolerated (RFC 9112 §2.2)
        if (n === 1 || (n === 2 && line[0] === 0x0d)) {
          if (this.inMessage) return this.endHead();
          this.buf = [];
          return;
        }
        if (!this.inMessage) {
          const first = latin1(line).replace(/\r?\n$/, '');
          if (!(this.role === 'request' ? REQUEST_LINE : STATUS_LINE).test(first)) {
            return this.fail('not_http', `not an HTTP/1.x ${this.role} line`);
          }
          this.inMessage = true;
          this.headLines.push(first);
          this.buf = [];
          return;
        }
        this.headLines.push(latin1(line).replace(/\r?\n$/, ''));
        this.headBytes += line.length;
        if (this.headBytes > MAX_HEAD) return this.fail('head_too_large', `head past ${MAX_HEAD} bytes`);
        this.buf = [];
        return;
      }
      case 'chunk_size': {
        this.buf = [];
        const m = /^([0-9A-Fa-f]{1,12})(?:;[^\r\n]*)?\r?\n$/.exec(latin1(line));
        if (!m) return this.fail('bad_framing', 'malformed chunk size line');
        this.remaining = parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailers' : 'chunk_data';
        return;
      }
      case 'chunk_crlf':
        this.buf = [];
        if (!(line.length === 1 || (line.length === 2 && line[0] === 0x0d))) return this.fail('bad_framing', 'chunk data not followed by CRLF');
        this.state = 'chunk_size';
        return;
      case 'trailers':
        this.buf = [];
        if (line.length === 1 || (line.length === 2 && line[0] === 0x0d)) this.finish(false);
        return;
      default:
    }
  }

  private headLines: string[] = [];
  private headBytes = 0;

  private endHead(): void {
    this.buf = [];
    const lines = this.headLines;
    this.headLines = [];
    this.headBytes = 0;
    const start = lines[0]!;
    const headers: [string, string][] = [];
    for (const l of lines.slice(1)) {
      const colon = l.indexOf(':');
      if (colon <= 0) return this.fail('not_http', 'header line without a name');
      headers.push([l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()]);
    }
    let head: H1Head;
    if (this.role === 'request') {
      const m = REQUEST_LINE.exec(start)!;
      head = { method: m[1]!, target: m[2]!, status: null, version: m[3]!, headers };
    } else {
      const m = STATUS_LINE.exec(start)!;
      head = { method: null, target: null, status: Number(m[2]), version: m[1]!, headers };
    }
    const r = this.h.head(head) ?? {};
    if (head.status === 101) return this.fail('upgraded', 'the connection switched protocols (101)');
    const te = headers.filter(([n]) => n === 'transfer-encoding').map(([, v]) => v.toLowerCase()).join(',');
    const cls = headers.filter(([n]) => n === 'content-length').map(([, v]) => v);
    if (r.noBody) return this.finish(false);
    if (te !== '') {
      if (!/(^|,)\s*chunked\s*$/.test(te)) {
        if (this.role === 'request') return this.fail('bad_framing', `request transfer-encoding ${te} without chunked last`);
        this.state = 'until_close';
        return;
      }
      this.state = 'chunk_size';
      return;
    }
    if (cls.length > 0) {
      const distinct = new Set(cls.flatMap((v) => v.split(',').map((x) => x.trim())));
      const v = [...distinct][0]!;
      if (distinct.size !== 1 || !/^\d{1,15}$/.test(v)) return this.fail('bad_framing', 'invalid or conflicting content-length');
      this.remaining = Number(v);
      if (this.remaining === 0) return this.finish(false);
      this.state = 'length';
      return;
    }
    if (this.role === 'request') return this.finish(false);
    this.state = 'until_close';
  }
}

function latin1(a: number[]): string {
  let s = '';
  for (const c of a) s += String.fromCharCode(c);
  return s;
}
