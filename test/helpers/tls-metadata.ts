import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { selfSignedCert } from './netdepth.js';

/** What the --tls-metadata tests send and answer: the secrets must never reach a record. */
export const SECRET_PROMPT = 'SECRET-PROMPT-TEXT';
export const SECRET_ANSWER = 'SECRET-ANSWER-TEXT';
export const SECRET_TOKEN = 'SECRET-BEARER-TOKEN';
export const SECRET_QUERY = 'SECRET-QUERY-KEY';
export const REQUEST_BODY = JSON.stringify({ model: 'm-1', messages: [{ role: 'user', content: SECRET_PROMPT }] });
export const RESPONSE_BODY = JSON.stringify({
  id: 'r-1', model: 'm-1', choices: [{ message: { role: 'assistant', content: SECRET_ANSWER } }],
  usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 },
});

export interface LoopbackServers { https: number; h2: number; requests: string[]; close(): Promise<void> }

/** A loopback HTTPS (HTTP/1.1) and an HTTP/2 server, one self-signed cert, both answering RESPONSE_BODY. */
export async function loopbackServers(): Promise<LoopbackServers> {
  const { key, cert } = selfSignedCert('witness-tls-metadata');
  const requests: string[] = [];
  const answer = (body: string): string => {
    requests.push(body);
    return RESPONSE_BODY;
  };
  const https: HttpsServer = createHttpsServer({ key, cert }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer(body));
    });
  });
  const h2: Http2SecureServer = createSecureServer({ key, cert }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer(body));
    });
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  return {
    https: (https.address() as AddressInfo).port,
    h2: (h2.address() as AddressInfo).port,
    requests,
    close: async () => {
      https.close();
      h2.close();
    },
  };
}

/** node https client: one POST of REQUEST_BODY; exits 0 when the answer was RESPONSE_BODY. */
export const HTTPS_CLIENT = (port: number): string => `
const https = require('https');
const req = https.request({ host: '127.0.0.1', port: ${port}, method: 'POST', path: '/v1/chat/completions?key=${SECRET_QUERY}',
  rejectUnauthorized: false, headers: { 'content-type': 'application/json', authorization: 'Bearer ${SECRET_TOKEN}' } }, (res) => {
  let got = '';
  res.on('data', (d) => { got += d; });
  res.on('end', () => { process.exitCode = got === ${JSON.stringify(RESPONSE_BODY)} ? 0 : 3; });
});
req.on('error', (e) => { console.error(e.message); process.exitCode = 4; });
req.end(${JSON.stringify(REQUEST_BODY)});`;

/** node:http2 client: one POST of REQUEST_BODY, split into two writes. */
export const H2_CLIENT = (port: number): string => `
const http2 = require('http2');
const c = http2.connect('https://127.0.0.1:${port}', { rejectUnauthorized: false });
c.on('error', (e) => { console.error(e.message); process.exitCode = 4; });
const body = ${JSON.stringify(REQUEST_BODY)};
const s = c.request({ ':method': 'POST', ':path': '/v1/messages?key=${SECRET_QUERY}', 'content-type': 'application/json', 'x-api-key': '${SECRET_TOKEN}' });
let got = '';
s.on('data', (d) => { got += d; });
s.on('end', () => { process.exitCode = got === ${JSON.stringify(RESPONSE_BODY)} ? 0 : 3; c.close(); });
s.write(body.slice(0, 20));
setTimeout(() => s.end(body.slice(20)), 20);`;
