import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { netDerivedSchemas } from '../../src/events/schemas.js';
import { NetDepth } from '../../src/sensor/netdepth.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { WitnessSensor } from '../../src/sensor/sensor.js';
import { createServer as createTlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { selfSignedCert } from '../helpers/netdepth.js';
import { TlsMetadata } from '../../src/sensor/tls-run.js';
import { kernelSuite, ofKind, SensorHarness, type TracedRun } from '../helpers/kernel.js';
import { H2_CLIENT, HTTPS_CLIENT, loopbackServers, SECRET_ANSWER, SECRET_PROMPT, SECRET_QUERY, SECRET_TOKEN, type LoopbackServers } from '../helpers/tls-metadata.js';

const { skip } = kernelSuite();
const NODE = process.execPath;
const SECRETS = [SECRET_PROMPT, SECRET_ANSWER, SECRET_TOKEN, SECRET_QUERY];
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const DIR = mkdtempSync(join(tmpdir(), 'witness-tls-meta-'));

/**
 * `witness …` then the agent `NODE SCRIPT` as nobody. A quick-start node lives in the checkout's
 * .node/, under root's 0700 home on a fresh host, where nobody cannot reach it: then the whole run
 * is in a private mount namespace with the checkout bind-mounted on a directory in /tmp, and the
 * agent runs the same node file from there (the same inode: its uprobes are the ones armed at start).
 */
function asNobodyCanReach(witness: string[], agentArgs: string[]): string[] {
  if (!NODE.startsWith(`${PACKAGE_ROOT}/`)) return [...witness, NODE, ...agentArgs];
  const mnt = mkdtempSync(join(tmpdir(), 'witness-tls-node-'));
  MOUNTS.push(mnt);
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', PACKAGE_ROOT, mnt,
    ...witness, join(mnt, relative(PACKAGE_ROOT, NODE)), ...agentArgs];
}
const MOUNTS: string[] = []; // bind targets, empty outside their namespaces: rmdir after the suite

/** The client as a file: its text (with the secrets) must not ride in argv, which exec records. */
function script(name: string, text: string): string {
  const p = join(DIR, name);
  writeFileSync(p, text);
  chmodSync(DIR, 0o755); // the CLI test runs it as nobody
  chmodSync(p, 0o644);
  return p;
}

function envelopesOf(r: TracedRun, h: SensorHarness): Envelope[] {
  const net = new NetDepth();
  const out = r.events.flatMap((ev) => net.process(ev, h.sensor.clock));
  return [...out, ...net.tls.flushAll().map(([, e]) => e)];
}

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function valid(e: Envelope): void {
  const r = (netDerivedSchemas as Record<string, { safeParse(v: unknown): { success: boolean; error?: unknown } }>)[e.event]!.safeParse(e.attributes);
  expect(r.success, `${e.event}: ${JSON.stringify(r.error)}`).toBe(true);
}

describe.skipIf(skip)('--tls-metadata on the real kernel (OpenSSL uprobes in node)', () => {
  let h: SensorHarness;
  let servers: LoopbackServers;
  const probes: Envelope[] = [];

  beforeAll(async () => {
    h = new SensorHarness();
    new TlsMetadata(h.sensor.native, (e) => probes.push(e));
    servers = await loopbackServers();
  });
  afterAll(async () => {
    await servers?.close();
    await h?.close();
    for (const m of MOUNTS) rmdirSync(m); // never recursive: it held a bind of the checkout (in its own namespace)
  });

  it('arms node itself: SSL_write/SSL_read/_ex attached, with a probe row', () => {
    const node = probes.find((p) => p.attributes['witness.tls.probe.library'] === 'openssl' && String(p.attributes['witness.tls.probe.path']).endsWith('/node'));
    expect(node?.attributes['witness.tls.probe.attached']).toEqual(['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex']);
    for (const p of probes) valid(p);
  });

  it('HTTP/1.1: method, authority, path, model and token counts; no prompt, answer, token or query text anywhere', async () => {
    const r = await h.run(NODE, [script('h1.js', HTTPS_CLIENT(servers.https))]);
    expect(r.code).toBe(0);
    expect(ofKind(r.events, 'tls_data').length).toBeGreaterThan(0);
    const envs = envelopesOf(r, h);
    const req = envs.filter((e) => e.event === 'tls.http_request');
    expect(req).toHaveLength(1);
    expect(req[0]!.attributes).toMatchObject({
      'network.protocol.version': '1.1', 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'server.port': servers.https,
      'url.path': '/v1/chat/completions', 'http.response.status_code': 200, 'gen_ai.request.model': 'm-1',
      'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 34, 'process.pid': r.pid,
    });
    expect(req[0]!.attributes['witness.url.query_sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(req[0]!.attributes['witness.http.request.header_names']).toEqual(expect.arrayContaining(['content-type', 'authorization', 'host']));
    valid(req[0]!);
    const text = JSON.stringify(envs);
    for (const s of SECRETS) expect(text).not.toContain(s);
    console.log(JSON.stringify(req[0]));
  });

  it('HTTP/2 (node:http2, body split across SSL_write calls): method, authority, path, model, tokens', async () => {
    const r = await h.run(NODE, [script('h2.js', H2_CLIENT(servers.h2))]);
    expect(r.code).toBe(0);
    const envs = envelopesOf(r, h);
    const req = envs.filter((e) => e.event === 'tls.http_request');
    expect(req).toHaveLength(1);
    expect(req[0]!.attributes).toMatchObject({
      'network.protocol.version': '2', 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'server.port': servers.h2,
      'url.path': '/v1/messages', 'http.response.status_code': 200, 'gen_ai.request.model': 'm-1',
      'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 34, 'witness.http.stream_id': 1,
    });
    expect(req[0]!.attributes['witness.http.incomplete']).toBeUndefined();
    valid(req[0]!);
    const text = JSON.stringify(envs);
    for (const s of SECRETS) expect(text).not.toContain(s);
    console.log(JSON.stringify(req[0]));
  });

  it('witness run --tls-metadata: model and tokens in the NDJSON; no secret in the NDJSON, the session, the store or the ledger (grep)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'witness-tls-state-'));
    const out = join(DIR, 'out.ndjson');
    try {
      const [cmd, ...args] = asNobodyCanReach([process.execPath, BIN, 'run', '--tls-metadata', '--user', 'nobody', '--session-dir', join(state, 'session'), '--out', out, '--'],
        [script('cli.js', HTTPS_CLIENT(servers.https))]);
      const child = spawn(cmd!, args, { env: { ...process.env, WITNESS_STATE_DIR: state }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const code = await new Promise<number | null>((res) => child.once('exit', res));
      expect(code, stderr).toBe(0);
      const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Envelope);
      const req = lines.filter((e) => e.event === 'tls.http_request');
      expect(req).toHaveLength(1);
      expect(req[0]!.attributes).toMatchObject({ 'gen_ai.request.model': 'm-1', 'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 34, 'url.path': '/v1/chat/completions' });
      expect(lines.some((e) => e.event === 'tls.probe')).toBe(true);
      expect(servers.requests.at(-1)).toContain(SECRET_PROMPT); // it was sent: its absence below means something
      const files = [out, ...filesUnder(state)];
      expect(files.length).toBeGreaterThan(3); // the session's ledger, its json, the store
      for (const f of files) {
        const bytes = readFileSync(f).toString('latin1');
        for (const secret of SECRETS) expect(bytes.includes(secret), `${secret} in ${f}`).toBe(false);
      }
      console.log(JSON.stringify(req[0]));
      console.log(`grep: ${files.length} files, none holds a secret: ${files.map((f) => f.replace(state, '$STATE')).join(' ')}`);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('an untraced process doing the same produces nothing', async () => {
    const seen = h.all.length;
    const child = spawn(NODE, [script('untraced.js', HTTPS_CLIENT(servers.https))], { stdio: 'ignore' });
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    expect(code).toBe(0);
    await new Promise((res) => setTimeout(res, 200));
    expect(h.all.slice(seen).filter((e) => e.pid === child.pid)).toEqual([]);
    expect(servers.requests.length).toBeGreaterThanOrEqual(3); // it did reach the server
  });
});

/** A traced client making CALLS SSL_writes of 16 KiB (two records each) into a loopback TLS sink. */
const FLOOD_CLIENT = (port: number, calls: number): string => `
const tls = require('tls');
const s = tls.connect({ host: '127.0.0.1', port: ${port}, rejectUnauthorized: false }, async () => {
  const buf = Buffer.alloc(16384, 0x41);
  for (let i = 0; i < ${calls}; i++) await new Promise((r) => s.write(buf, r));
  s.end();
});
s.on('error', (e) => { console.error(e.message); process.exitCode = 4; });`;

describe.skipIf(skip)('--tls-metadata drop accounting on the real kernel', () => {
  it('a ring too small for the plaintext: per kind emitted + dropped = the records the calls made, and emitted = delivered at close', async () => {
    const CALLS = 150;
    const { key, cert } = selfSignedCert('witness-flood');
    const sinkServer = createTlsServer({ key, cert }, (c) => { c.resume(); c.on('error', () => {}); });
    await new Promise<void>((r) => sinkServer.listen(0, '127.0.0.1', r));
    const port = (sinkServer.address() as AddressInfo).port;
    let seen = 0;
    const sensor = WitnessSensor.open({ ringBytes: 64 << 10, autoStart: false, onEvent: (ev) => { if (ev.kind === 'tls_data') seen++; } });
    try {
      new TlsMetadata(sensor.native, () => {});
      const child = sensor.spawnTraced(NODE, [script('flood.js', FLOOD_CLIENT(port, CALLS))], { stdio: 'ignore' });
      const code = await new Promise<number | null>((res) => child.once('exit', res));
      expect(code).toBe(0);
      sensor.start();
      const stats = await sensor.close();
      expect(stats.kernelDropped.tls_data).toBeGreaterThan(0);
      expect(stats.kernelEmitted.tls_data! + stats.kernelDropped.tls_data!).toBe(2 * CALLS);
      expect(stats.delivered.tls_data).toBe(stats.kernelEmitted.tls_data);
      expect(seen).toBe(stats.delivered.tls_data);
      console.log(`tls_data: emitted ${stats.kernelEmitted.tls_data}, dropped ${stats.kernelDropped.tls_data}, delivered ${stats.delivered.tls_data} of ${2 * CALLS}`);
    } finally {
      sinkServer.close();
      rmSync(DIR, { recursive: true, force: true });
    }
  });
});
