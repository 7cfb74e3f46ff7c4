import { describe, expect, it } from 'vitest';
import { netDerivedSchemas } from '../src/events/schemas.js';
import { BodySink } from '../src/sensor/http/body.js';
import { Http1Parser, type H1Handler } from '../src/sensor/http/http1.js';
import { JsonScanner } from '../src/sensor/http/json-scan.js';
import { TlsSessions } from '../src/sensor/tls-sessions.js';
import type { Envelope } from '../src/events/envelope.js';
import { enc, gzipSync, prng, sslCall, splitCalls } from './helpers/tls-events.js';

const CLOCK = { bootToEpochNs: 0n };
const schema = (netDerivedSchemas as Record<string, { safeParse(v: unknown): { success: boolean; error?: unknown } }>)['tls.http_request']!;

function run(t: TlsSessions, events: ReturnType<typeof sslCall>): Envelope[] {
  const out = events.flatMap((e) => t.process(e, CLOCK));
  for (const e of out) expect(schema.safeParse(e.attributes).success, JSON.stringify(schema.safeParse(e.attributes).error)).toBe(true);
  return out;
}

const REQ_BODY = '{"model":"claude-x","messages":[{"role":"user","content":"PROMPT-TEXT"}],"stream":false}';
const REQUEST = `POST /v1/messages?beta=true HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: sk-SECRET\r\ncontent-type: application/json\r\ncontent-length: ${REQ_BODY.length}\r\n\r\n${REQ_BODY}`;
const RESP_BODY = '{"content":[{"text":"ANSWER-TEXT"}],"usage":{"input_tokens":21,"output_tokens":5}}';
const chunked = (s: string, n: number): string => {
  let out = '';
  for (let i = 0; i < s.length; i += n) out += `${s.slice(i, i + n).length.toString(16)}\r\n${s.slice(i, i + n)}\r\n`;
  return `${out}0\r\n\r\n`;
};
const RESPONSE = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${chunked(RESP_BODY, 17)}`;

describe('HTTP/1.1 through TlsSessions', () => {
  it('one request and a chunked response, split at every byte: the same metadata, no content', () => {
    const req = enc(REQUEST);
    const resp = enc(RESPONSE);
    let first: Envelope | undefined;
    for (let cut = 1; cut < req.length + resp.length; cut += 3) {
      const t = new TlsSessions();
      const envs = run(t, [...splitCalls('tx', req, [cut]), ...splitCalls('rx', resp, [cut - req.length, cut % 50])]);
      expect(envs, `cut ${cut}`).toHaveLength(1);
      const { time: _t, ...rest } = envs[0]!;
      first ??= envs[0]!;
      expect(rest.attributes).toEqual(first.attributes);
    }
    expect(first!.attributes).toMatchObject({
      'http.request.method': 'POST', 'server.address': 'api.anthropic.com', 'url.path': '/v1/messages', 'http.response.status_code': 200,
      'gen_ai.request.model': 'claude-x', 'gen_ai.usage.input_tokens': 21, 'gen_ai.usage.output_tokens': 5,
      'witness.http.request.body_bytes': REQ_BODY.length, 'witness.http.response.body_bytes': RESP_BODY.length,
      'witness.http.request.header_names': ['host', 'x-api-key', 'content-type', 'content-length'],
    });
    expect(JSON.stringify(first)).not.toMatch(/PROMPT-TEXT|ANSWER-TEXT|sk-SECRET|beta=true/);
  });

  it('keep-alive: two requests pair with their responses in order; HEAD and 100 Continue have no body', () => {
    const t = new TlsSessions();
    const envs = run(t, [
      ...sslCall('tx', enc('HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n')),
      ...sslCall('rx', enc('HTTP/1.1 200 OK\r\ncontent-length: 999\r\n\r\n')),
      ...sslCall('tx', enc('POST /b HTTP/1.1\r\nHost: h\r\nexpect: 100-continue\r\ncontent-length: 15\r\n\r\n')),
      ...sslCall('rx', enc('HTTP/1.1 100 Continue\r\n\r\n')),
      ...sslCall('tx', enc('{"model":"m-b"}')),
      ...sslCall('rx', enc('HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}')),
    ]);
    expect(envs.map((e) => [e.attributes['url.path'], e.attributes['http.response.status_code'], e.attributes['gen_ai.request.model'] ?? null]))
      .toEqual([['/a', 200, null], ['/b', 201, 'm-b']]);
  });

  it('a gzip response and an SSE stream: usage from the decoded body, the last value of each count', () => {
    const gz = gzipSync(Buffer.from(RESP_BODY));
    const sse = 'event: message_start\ndata: {"type":"message_start","message":{"model":"x","usage":{"input_tokens":40,"output_tokens":1}}}\n\n' +
      'data: {"type":"content_block_delta","delta":{"text":"ANSWER-TEXT"}}\n\ndata: {"type":"message_delta","usage":{"output_tokens":77}}\n\n';
    const t = new TlsSessions();
    const envs = run(t, [
      ...sslCall('tx', enc(REQUEST)),
      ...sslCall('rx', new Uint8Array([...enc(`HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-type: application/json\r\ncontent-length: ${gz.length}\r\n\r\n`), ...gz])),
      ...sslCall('tx', enc(REQUEST)),
      ...splitCalls('rx', enc(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n${chunked(sse, 50)}`), [70, 150, 151]),
    ]);
    expect(envs.map((e) => [e.attributes['gen_ai.usage.input_tokens'], e.attributes['gen_ai.usage.output_tokens']])).toEqual([[21, 5], [40, 77]]);
    expect(JSON.stringify(envs)).not.toContain('ANSWER-TEXT');
  });

  it('a request body longer than the probe copies: the model is still read, the gap is skipped and counted, the response follows', () => {
    const big = `{"model":"m-big","messages":[{"content":"${'P'.repeat(200_000)}"}]}`;
    const req = enc(`POST /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\ncontent-length: ${big.length}\r\n\r\n${big}`);
    const t = new TlsSessions();
    const envs = run(t, [...sslCall('tx', req, { keep: 65536 }), ...sslCall('rx', enc(`HTTP/1.1 200 OK\r\ncontent-length: ${RESP_BODY.length}\r\n\r\n${RESP_BODY}`))]);
    expect(envs).toHaveLength(1);
    expect(envs[0]!.attributes).toMatchObject({ 'gen_ai.request.model': 'm-big', 'witness.http.request.body_bytes': big.length, 'gen_ai.usage.output_tokens': 5 });
    expect(envs[0]!.attributes['witness.http.request.body_sha256']).toBeUndefined(); // not all of it was seen
    expect(envs[0]!.attributes['witness.http.request.scan_error']).toBe('capture gap inside the body');
  });

  it('--tls-content: header values and bodies are kept, credentials redacted even then', () => {
    const t = new TlsSessions({ keepContent: true });
    const envs = run(t, [...sslCall('tx', enc(REQUEST)), ...sslCall('rx', enc(RESPONSE))]);
    expect(envs[0]!.attributes).toMatchObject({
      'http.request.header.x-api-key': ['[redacted]'], 'http.request.header.content-type': ['application/json'],
      'witness.http.request.body': REQ_BODY, 'witness.http.response.body': RESP_BODY, 'url.query': 'beta=true',
    });
    expect(JSON.stringify(envs)).not.toContain('sk-SECRET');
  });

  it('an exchange the process did not finish is reported at its exit, marked incomplete; non-HTTP TLS is counted, not parsed', () => {
    const t = new TlsSessions();
    run(t, sslCall('tx', enc(REQUEST)));
    const flushed = t.flushPid(4242);
    expect(flushed).toHaveLength(1);
    expect(flushed[0]![1].attributes['witness.http.incomplete']).toMatch(/exited/);
    run(t, sslCall('tx', enc('\x00\x01binary protocol'), { ssl: 9n }));
    expect(t.stats.notHttp).toBe(1);
  });
});

describe('JSON scanner', () => {
  it('keeps only the top-level model and the counts inside usage objects', () => {
    const s = new JsonScanner();
    s.feed(enc('{"meta":{"model":"inner"},"model":"top\\u002dlevel","usage":{"prompt_tokens":3,"completion_tokens":4,"x":{"input_tokens":99}},"input_tokens":1000}'));
    expect(s.facts).toEqual({ model: 'top-level', inputTokens: 99, outputTokens: 4 });
    expect(s.complete).toBe(true);
    const deep = new JsonScanner();
    deep.feed(enc(`{"model":"m","a":${'['.repeat(100)}1${']'.repeat(100)},"b":${'{"c":'.repeat(100)}{"usage":{"x":1}}${'}'.repeat(100)},"usage":{"output_tokens":2}}`));
    expect(deep.facts).toMatchObject({ model: 'm', outputTokens: 2 });
    expect(deep.error).toBeNull();
  });
});

describe('fuzz: the HTTP/1.1 parser, the JSON scanner and the body sink are total', () => {
  const handler = (log: string[]): H1Handler => ({
    head: () => ({}), body: () => {}, skip: () => {}, end: () => log.push('end'), fail: (r) => log.push(`fail:${r}`),
  });
  it('random and mutated input never throws and always ends (messages or a typed reason)', () => {
    const rand = prng(1313);
    const bases = [enc(REQUEST), enc(RESPONSE)];
    for (let i = 0; i < 4000; i++) {
      let b: Uint8Array;
      if (i % 4 === 0) b = new Uint8Array(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
      else {
        b = bases[i % 2]!.slice();
        for (let k = 0; k < 1 + (i % 6); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      }
      const log: string[] = [];
      const p = new Http1Parser(i % 2 === 0 ? 'request' : 'response', handler(log));
      expect(() => { p.feed(b); p.gap(Math.floor(rand() * 20)); p.close(); }).not.toThrow();
      for (const l of log) expect(l).toMatch(/^(end|fail:(not_http|head_too_large|bad_framing|capture_gap|upgraded))$/);
      const s = new JsonScanner();
      expect(() => s.feed(b.subarray(b.indexOf(0x7b) + 0))).not.toThrow();
      const sink = new BodySink(i % 3 === 0 ? 'text/event-stream' : 'application/json', i % 5 === 0 ? 'gzip' : null, false);
      expect(() => { sink.write(b); sink.end(); }).not.toThrow();
      const t = new TlsSessions();
      expect(() => {
        splitCalls(i % 2 === 0 ? 'tx' : 'rx', b, [Math.floor(rand() * b.length)]).forEach((e) => t.process(e, CLOCK));
        t.flushAll();
      }).not.toThrow();
    }
  });
});
