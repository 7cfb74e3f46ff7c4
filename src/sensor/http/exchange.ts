import { createHash } from 'node:crypto';
import type { Attributes } from '../../events/envelope.js';
import type { BodySink, BodySummary } from './body.js';

/**
 * One HTTP request and its response as seen in TLS plaintext, reduced to
 * what docs/privacy.md allows: method, authority, path (the query only as a
 * hash), status, header names, body sizes and hashes, the request's
 * top-level JSON "model" and the response's usage token counts. Header
 * values and bodies are added only with --tls-content, and credentials are
 * redacted even then.
 */

export interface Exchange {
  stream: number | null;        // HTTP/2 stream id
  version: '1.1' | '2';
  method: string | null;
  authority: string | null;
  path: string | null;
  query: string | null;
  requestHeaders: [string, string][];
  status: number | null;
  reqBody: BodySink | null;
  respBody: BodySink | null;
  responseDone: boolean;
  reset: number | null;         // RST_STREAM error code
  error: string | null;         // why the exchange is incomplete
}

export function newExchange(version: Exchange['version'], stream: number | null): Exchange {
  return {
    stream, version, method: null, authority: null, path: null, query: null, requestHeaders: [], status: null,
    reqBody: null, respBody: null, responseDone: false, reset: null, error: null,
  };
}

/** Splits a request target (origin or absolute form) into authority, path, query. */
export function splitTarget(target: string): { authority: string | null; path: string; query: string | null } {
  let t = target;
  let authority: string | null = null;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)(.*)$/.exec(t);
  if (abs) {
    authority = abs[1]!.replace(/^[^@]*@/, ''); // userinfo is a credential: never kept
    t = abs[2]! || '/';
  }
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf('?');
  return { authority, path: q >= 0 ? t.slice(0, q) : t, query: q >= 0 ? t.slice(q + 1) : null };
}

/** host and port of an authority ("[::1]:8443", "api.openai.com") */
export function splitAuthority(a: string): { host: string; port: number | null } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(a.replace(/^[^@]*@/, ''));
  if (!m) return { host: a, port: null };
  return { host: m[1]!.replace(/^\[|\]$/g, '').toLowerCase(), port: m[2] !== undefined ? Number(m[2]) : null };
}

const CREDENTIAL = /authorization|cookie|key|token|secret|session|password|auth/i;

const sha256 = (s: string): string => createHash('sha256').update(s, 'latin1').digest('hex');

function bodyAttrs(a: Attributes, side: 'request' | 'response', s: BodySummary | null, keepContent: boolean): void {
  if (s === null || s.bytes === 0) return;
  a[`witness.http.${side}.body_bytes`] = s.bytes;
  if (s.sha256 !== null) a[`witness.http.${side}.body_sha256`] = s.sha256;
  if (s.scanError !== null) a[`witness.http.${side}.scan_error`] = s.scanError;
  if (keepContent && s.content !== null) a[`witness.http.${side}.body`] = s.content;
}

/** The attributes of a finished (or abandoned) exchange. */
export function exchangeAttrs(x: Exchange, keepContent: boolean): Attributes {
  const a: Attributes = {
    'network.protocol.name': 'http',
    'network.protocol.version': x.version,
    'url.scheme': 'https',
  };
  if (x.method !== null) a['http.request.method'] = x.method;
  if (x.authority !== null && x.authority !== '') {
    const { host, port } = splitAuthority(x.authority);
    a['server.address'] = host;
    if (port !== null) a['server.port'] = port;
  }
  if (x.path !== null) a['url.path'] = x.path;
  if (x.query !== null) {
    if (keepContent) a['url.query'] = x.query;
    else a['witness.url.query_sha256'] = sha256(x.query);
  }
  if (x.stream !== null) a['witness.http.stream_id'] = x.stream;
  if (x.status !== null) a['http.response.status_code'] = x.status;
  const names = [...new Set(x.requestHeaders.map(([n]) => n).filter((n) => !n.startsWith(':')))].slice(0, 64);
  if (names.length > 0) a['witness.http.request.header_names'] = names;
  if (keepContent) {
    for (const [n, v] of x.requestHeaders) {
      if (n.startsWith(':') || n === 'host') continue;
      const key = `http.request.header.${n}`;
      const val = CREDENTIAL.test(n) ? '[redacted]' : v;
      const prev = a[key];
      a[key] = Array.isArray(prev) ? [...prev, val] : [val];
    }
  }
  const req = x.reqBody?.end() ?? null;
  const resp = x.respBody?.end() ?? null;
  if (req?.facts.model != null) a['gen_ai.request.model'] = req.facts.model;
  if (resp?.facts.inputTokens != null) a['gen_ai.usage.input_tokens'] = resp.facts.inputTokens;
  if (resp?.facts.outputTokens != null) a['gen_ai.usage.output_tokens'] = resp.facts.outputTokens;
  bodyAttrs(a, 'request', req, keepContent);
  bodyAttrs(a, 'response', resp, keepContent);
  if (x.reset !== null) a['witness.http.reset_code'] = x.reset;
  if (x.error !== null) a['witness.http.incomplete'] = x.error;
  return a;
}
