import { createHash, type Hash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { JsonScanner, type JsonFacts } from './json-scan.js';

/**
 * One HTTP message body on its way past the sensor: hashed (SHA-256 of the
 * bytes after transfer decoding, before content decoding), counted, and
 * scanned for the few JSON facts docs/privacy.md allows. JSON bodies are
 * scanned as they stream; an SSE stream line by line ("data:" payloads);
 * a compressed body is held (bounded) and decoded at its end. Content is
 * kept only when the session was started with --tls-content.
 */

const MAX_COMPRESSED = 4 << 20;
const MAX_DECODED = 16 << 20;
const MAX_SSE_LINE = 64 << 10;
export const MAX_CONTENT = 64 << 10; // bytes of a body kept with --tls-content

export interface BodySummary {
  bytes: number;
  /** hex SHA-256 of every byte; null when bytes went uncaptured (a gap) */
  sha256: string | null;
  facts: JsonFacts;
  /** why the facts may be incomplete: not JSON, a gap, a bound, a decode error */
  scanError: string | null;
  /** the body (first MAX_CONTENT bytes, as text) when content is kept */
  content: string | null;
}

type Kind = 'json' | 'sse' | 'other';

export class BodySink {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private gap = false;
  private readonly scanner = new JsonScanner();
  private readonly merged: JsonFacts = { model: null, inputTokens: null, outputTokens: null };
  private readonly kind: Kind;
  private readonly encoding: string | null;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private line: number[] = [];
  private err: string | null = null;
  private content: Uint8Array[] | null;
  private contentBytes = 0;

  constructor(contentType: string | null, contentEncoding: string | null, keepContent: boolean) {
    const ct = (contentType ?? '').toLowerCase();
    this.kind = ct.includes('event-stream') ? 'sse' : ct.includes('json') || ct === '' ? 'json' : 'other';
    const enc = (contentEncoding ?? '').trim().toLowerCase();
    this.encoding = enc === '' || enc === 'identity' ? null : enc;
    this.content = keepContent ? [] : null;
  }

  write(b: Uint8Array): void {
    if (b.length === 0) return;
    this.bytes += b.length;
    this.hash.update(b);
    if (this.content && this.contentBytes < MAX_CONTENT) {
      const part = b.subarray(0, MAX_CONTENT - this.contentBytes);
      this.content.push(part.slice());
      this.contentBytes += part.length;
    }
    if (this.err !== null || this.kind === 'other') return;
    if (this.encoding !== null) {
      if (this.heldBytes + b.length > MAX_COMPRESSED) {
        this.err = `compressed body past ${MAX_COMPRESSED} bytes: not decoded`;
        this.held = [];
        return;
      }
      this.held.push(b.slice());
      this.heldBytes += b.length;
      return;
    }
    this.scan(b);
  }

  /** bytes the capture missed: counted, never scanned across */
  skip(n: number): void {
    this.bytes += n;
    this.gap = true;
    if (this.err === null) this.err = 'capture gap inside the body';
  }

  private scan(b: Uint8Array): void {
    if (this.kind === 'json') {
      this.scanner.feed(b);
      if (this.scanner.error !== null && this.err === null) this.err = `not JSON: ${this.scanner.error}`;
      return;
    }
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c === 0x0a) this.sseLine();
      else if (this.line.length < MAX_SSE_LINE) this.line.push(c);
    }
  }

  private sseLine(): void {
    let l = this.line;
    this.line = [];
    if (l.length > 0 && l[l.length - 1] === 0x0d) l = l.slice(0, -1);
    // "data:" then an optional space (the SSE spec)
    if (l.length < 5 || String.fromCharCode(...l.slice(0, 5)) !== 'data:') return;
    const s = new JsonScanner();
    s.feed(Uint8Array.from(l.slice(l[5] === 0x20 ? 6 : 5)));
    if (s.facts.inputTokens !== null) this.merged.inputTokens = s.facts.inputTokens;
    if (s.facts.outputTokens !== null) this.merged.outputTokens = s.facts.outputTokens;
    if (s.facts.model !== null && this.merged.model === null) this.merged.model = s.facts.model;
  }

  end(): BodySummary {
    if (this.encoding !== null && this.err === null && this.held.length > 0) {
      const all = Buffer.concat(this.held);
      this.held = [];
      try {
        const out = this.encoding === 'gzip' || this.encoding === 'x-gzip' ? gunzipSync(all, { maxOutputLength: MAX_DECODED })
          : this.encoding === 'br' ? brotliDecompressSync(all, { maxOutputLength: MAX_DECODED })
            : this.encoding === 'deflate' ? inflateSync(all, { maxOutputLength: MAX_DECODED }) : null;
        if (out === null) this.err = `content-encoding ${this.encoding} not decoded`;
        else this.scan(out);
      } catch (e) {
        this.err = `content-encoding ${this.encoding}: ${(e as Error).message.slice(0, 80)}`;
      }
    }
    if (this.kind === 'sse' && this.line.length > 0) this.sseLine();
    const facts = this.kind === 'sse' ? this.merged : this.scanner.facts;
    return {
      bytes: this.bytes,
      sha256: this.gap ? null : this.hash.digest('hex'),
      facts: { ...facts },
      scanError: this.kind === 'other' ? null : this.err,
      content: this.content ? Buffer.concat(this.content).toString('utf8') : null,
    };
  }
}
