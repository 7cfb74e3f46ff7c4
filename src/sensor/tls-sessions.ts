import type { Envelope } from '../events/envelope.js';
import { BodySink } from './http/body.js';
import { exchangeAttrs, newExchange, splitTarget, type Exchange } from './http/exchange.js';
import { Http1Parser, type H1Head } from './http/http1.js';
import { Http2Parser } from './http/http2.js';
import { headerAttrs, netEnvelope } from './ndjson-net.js';
import type { BootClock } from './ndjson.js';
import type { TlsDataEvent } from './types-net.js';

/**
 * TLS plaintext (tls_data records from the --tls-metadata uprobes) to
 * `tls.http_request` envelopes: per (process, SSL*) session, the bytes of
 * each direction go through an HTTP/1.1 or HTTP/2 parser (chosen from the
 * first bytes the client wrote), and each finished exchange becomes one
 * envelope of metadata (http/exchange.ts). The plaintext itself is dropped
 * as soon as it is parsed. Capture gaps (a call longer than the probe
 * copies, a record the ring dropped) are located from call_off / call_len
 * and handed to the parsers, which skip them inside bodies of known length
 * and stop otherwise. Bounded; every bound and failure is counted.
 */

export interface TlsSessionsOptions {
  /** --tls-content: keep header values (credentials redacted) and bodies (bounded) */
  keepContent?: boolean;
  maxSessions?: number;
}

export interface TlsStats {
  records: number;
  bytes: number;
  exchanges: number;
  sessionsEvicted: number;
  exchangesEvicted: number;
  notHttp: number;
  failed: Record<string, number>;
}

interface Dir { callLen: number; seen: number }

interface Session {
  pid: number;
  proto: 'h1' | 'h2' | 'other' | null;
  /** the client's first bytes while too few to tell the protocol */
  pending: Uint8Array | null;
  last: TlsDataEvent;
  tx: Dir;
  rx: Dir;
  txParser: Http1Parser | Http2Parser | null;
  rxParser: Http1Parser | Http2Parser | null;
  h1: Exchange[];           // HTTP/1.1: requests in order, awaiting responses
  h2: Map<number, Exchange>;
  out: Envelope[];
  clock: BootClock;
}

const MAX_H1_QUEUE = 64;
const MAX_H2_STREAMS = 256;
const REQUEST_START = /^[A-Z]{3,12} /;
const PREFACE_START = 'PRI * HTTP/2.0';

export class TlsSessions {
  readonly stats: TlsStats = { records: 0, bytes: 0, exchanges: 0, sessionsEvicted: 0, exchangesEvicted: 0, notHttp: 0, failed: {} };
  private readonly sessions = new Map<string, Session>();
  private readonly keepContent: boolean;
  private readonly maxSessions: number;

  constructor(opts: TlsSessionsOptions = {}) {
    this.keepContent = opts.keepContent ?? false;
    this.maxSessions = opts.maxSessions ?? 1024;
  }

  heartbeatAttributes(): Record<string, number> {
    const a: Record<string, number> = {
      'witness.tls.records': this.stats.records,
      'witness.tls.http_exchanges': this.stats.exchanges,
      'witness.tls.sessions_evicted': this.stats.sessionsEvicted,
      'witness.tls.exchanges_evicted': this.stats.exchangesEvicted,
      'witness.tls.not_http': this.stats.notHttp,
    };
    for (const [r, n] of Object.entries(this.stats.failed)) a[`witness.tls.parse_failed.${r}`] = n;
    return a;
  }

  process(ev: TlsDataEvent, clock: BootClock): Envelope[] {
    this.stats.records++;
    this.stats.bytes += ev.bytes.length;
    const key = `${ev.pid}:${ev.ssl}`;
    let s = this.sessions.get(key);
    if (!s) {
      if (ev.direction === 'rx' || ev.callOff !== 0) return []; // joined mid-stream: nothing to anchor a parser on
      s = this.open(key, ev, clock);
    }
    s.last = ev;
    s.clock = clock;
    const d = ev.direction === 'tx' ? s.tx : s.rx;
    if (ev.callOff === 0) {
      if (d.seen < d.callLen) this.gap(s, ev.direction, d.callLen - d.seen);
      d.callLen = ev.callLen;
      d.seen = 0;
    }
    if (ev.callOff > d.seen) this.gap(s, ev.direction, ev.callOff - d.seen);
    if (s.proto === null && ev.direction === 'tx') {
      const head = s.pending ? Buffer.concat([s.pending, ev.bytes]) : ev.bytes;
      if (!this.choose(s, head)) s.pending = head;
      else {
        s.pending = null;
        this.feed(s, 'tx', head);
      }
    } else if (s.proto !== null) {
      this.feed(s, ev.direction, ev.bytes);
    }
    d.seen = ev.callOff + ev.bytes.length;
    if (ev.truncated && d.seen < d.callLen) {
      this.gap(s, ev.direction, d.callLen - d.seen);
      d.seen = d.callLen;
    }
    return this.drain(s);
  }

  /** The process exited: its open exchanges are reported as they are. */
  flushPid(pid: number): [TlsDataEvent, Envelope][] {
    const out: [TlsDataEvent, Envelope][] = [];
    for (const [key, s] of this.sessions) {
      if (s.pid !== pid) continue;
      this.sessions.delete(key);
      for (const env of this.closeSession(s, 'the process exited before the exchange completed')) out.push([s.last, env]);
    }
    return out;
  }

  /** Everything still open (the sensor is stopping), each with the record it is enriched as. */
  flushAll(): [TlsDataEvent, Envelope][] {
    const out: [TlsDataEvent, Envelope][] = [];
    for (const s of this.sessions.values()) {
      for (const env of this.closeSession(s, 'the sensor stopped before the exchange completed')) out.push([s.last, env]);
    }
    this.sessions.clear();
    return out;
  }

  private open(key: string, ev: TlsDataEvent, clock: BootClock): Session {
    if (this.sessions.size >= this.maxSessions) {
      const [oldKey, old] = this.sessions.entries().next().value!;
      this.sessions.delete(oldKey);
      this.stats.sessionsEvicted++;
      this.closeSession(old, 'evicted');
    }
    const s: Session = {
      pid: ev.pid, proto: null, pending: null, last: ev, tx: { callLen: 0, seen: 0 }, rx: { callLen: 0, seen: 0 },
      txParser: null, rxParser: null, h1: [], h2: new Map(), out: [], clock,
    };
    this.sessions.set(key, s);
    return s;
  }

  /** false: too few bytes yet to tell (the client's first call may be tiny) */
  private choose(s: Session, first: Uint8Array): boolean {
    const head = Buffer.from(first.subarray(0, 24)).toString('latin1');
    if (head.length < 24 && (PREFACE_START.startsWith(head) || /^[A-Z]{0,12}$/.test(head))) return false;
    if (head.startsWith('PRI ')) {
      s.proto = 'h2';
      s.txParser = new Http2Parser(true, this.h2Handler(s, 'tx'));
      s.rxParser = new Http2Parser(false, this.h2Handler(s, 'rx'));
    } else if (REQUEST_START.test(head)) {
      s.proto = 'h1';
      s.txParser = new Http1Parser('request', this.h1Request(s));
      s.rxParser = new Http1Parser('response', this.h1Response(s));
    } else {
      s.proto = 'other';
      this.stats.notHttp++;
    }
    return true;
  }

  private feed(s: Session, dir: 'tx' | 'rx', b: Uint8Array): void {
    const p = dir === 'tx' ? s.txParser : s.rxParser;
    if (p && !p.failed) p.feed(b);
  }

  private gap(s: Session, dir: 'tx' | 'rx', n: number): void {
    const p = dir === 'tx' ? s.txParser : s.rxParser;
    if (p && !p.failed) p.gap(n);
  }

  private failed(s: Session, reason: string, detail: string): void {
    this.stats.failed[reason] = (this.stats.failed[reason] ?? 0) + 1;
    for (const x of [...s.h1, ...s.h2.values()]) if (x.error === null) x.error = `${reason}: ${detail}`;
  }

  private emit(s: Session, x: Exchange): void {
    this.stats.exchanges++;
    const a = { ...headerAttrs(s.last), ...exchangeAttrs(x, this.keepContent) };
    a['witness.tls.ssl'] = `0x${s.last.ssl.toString(16)}`;
    s.out.push(netEnvelope(s.last, s.clock, 'tls.http_request', a));
  }

  private drain(s: Session): Envelope[] {
    if (s.out.length === 0) return [];
    const out = s.out;
    s.out = [];
    return out;
  }

  private closeSession(s: Session, why: string): Envelope[] {
    if (s.rxParser instanceof Http1Parser) s.rxParser.close(); // a body read until close ends here
    for (const x of [...s.h1, ...s.h2.values()]) {
      if (x.error === null && !x.responseDone) x.error = why;
      this.emit(s, x);
    }
    s.h1 = [];
    s.h2.clear();
    return this.drain(s);
  }

  private sink(ct: string | null, ce: string | null): BodySink {
    return new BodySink(ct, ce, this.keepContent);
  }

  private h1Request(s: Session) {
    return {
      head: (h: H1Head) => {
        const x = newExchange('1.1', null);
        x.method = h.method;
        const t = splitTarget(h.target ?? '');
        x.path = t.path;
        x.query = t.query;
        x.authority = t.authority ?? h.headers.find(([n]) => n === 'host')?.[1] ?? null;
        x.requestHeaders = h.headers;
        x.reqBody = this.sink(hval(h.headers, 'content-type'), hval(h.headers, 'content-encoding'));
        if (s.h1.length >= MAX_H1_QUEUE) {
          this.stats.exchangesEvicted++;
          const old = s.h1.shift()!;
          old.error ??= 'evicted: too many requests without a response';
          this.emit(s, old);
        }
        s.h1.push(x);
      },
      body: (b: Uint8Array) => s.h1[s.h1.length - 1]?.reqBody?.write(b),
      skip: (n: number) => s.h1[s.h1.length - 1]?.reqBody?.skip(n),
      end: () => {},
      fail: (reason: string, detail: string) => this.failed(s, `h1_${reason}`, detail),
    };
  }

  private h1Response(s: Session) {
    const current = (): Exchange | undefined => s.h1.find((x) => !x.responseDone);
    return {
      head: (h: H1Head) => {
        const x = current();
        const status = h.status ?? 0;
        if (status >= 100 && status < 200 && status !== 101) return { noBody: true, informational: true };
        if (!x) return { noBody: false };
        x.status = status;
        x.respBody = this.sink(hval(h.headers, 'content-type'), hval(h.headers, 'content-encoding'));
        return { noBody: x.method === 'HEAD' || status === 204 || status === 304 };
      },
      body: (b: Uint8Array) => current()?.respBody?.write(b),
      skip: (n: number) => current()?.respBody?.skip(n),
      end: () => {
        const x = current();
        if (!x || x.status === null) return; // an informational response (100 Continue) ended
        x.responseDone = true;
        s.h1.splice(s.h1.indexOf(x), 1);
        this.emit(s, x);
      },
      fail: (reason: string, detail: string) => this.failed(s, `h1_${reason}`, detail),
    };
  }

  private h2Handler(s: Session, dir: 'tx' | 'rx') {
    const other = (): Http2Parser | null => (dir === 'tx' ? s.rxParser : s.txParser) as Http2Parser | null;
    const done = (id: number): void => {
      const x = s.h2.get(id);
      if (!x) return;
      s.h2.delete(id);
      x.responseDone = x.status !== null;
      this.emit(s, x);
    };
    return {
      headers: (id: number, headers: [string, string][]) => {
        if (dir === 'tx') {
          if (s.h2.has(id)) return; // trailers
          if (s.h2.size >= MAX_H2_STREAMS) {
            this.stats.exchangesEvicted++;
            const [oldId] = s.h2.keys();
            s.h2.get(oldId!)!.error ??= 'evicted: too many open streams';
            done(oldId!);
          }
          const x = newExchange('2', id);
          x.method = hval(headers, ':method');
          x.authority = hval(headers, ':authority') ?? hval(headers, 'host');
          const t = splitTarget(hval(headers, ':path') ?? '');
          x.path = t.path;
          x.query = t.query;
          x.requestHeaders = headers;
          x.reqBody = this.sink(hval(headers, 'content-type'), hval(headers, 'content-encoding'));
          s.h2.set(id, x);
          return;
        }
        const x = s.h2.get(id);
        const status = Number(hval(headers, ':status') ?? 'NaN');
        if (!x || !Number.isInteger(status) || (status >= 100 && status < 200)) return; // trailers or informational
        x.status = status;
        x.respBody = this.sink(hval(headers, 'content-type'), hval(headers, 'content-encoding'));
      },
      data: (id: number, b: Uint8Array) => {
        const x = s.h2.get(id);
        (dir === 'tx' ? x?.reqBody : x?.respBody)?.write(b);
      },
      skip: (id: number, n: number) => {
        const x = s.h2.get(id);
        (dir === 'tx' ? x?.reqBody : x?.respBody)?.skip(n);
      },
      endStream: (id: number) => {
        if (dir === 'rx') done(id);
      },
      reset: (id: number, code: number) => {
        const x = s.h2.get(id);
        if (!x) return;
        x.reset = code;
        done(id);
      },
      tableSize: (n: number) => {
        const o = other();
        if (o) o.hpack.protocolMax = n;
      },
      fail: (reason: string, detail: string) => this.failed(s, `h2_${reason}`, detail),
    };
  }
}

function hval(headers: [string, string][], name: string): string | null {
  for (const [n, v] of headers) if (n === name) return v;
  return null;
}
