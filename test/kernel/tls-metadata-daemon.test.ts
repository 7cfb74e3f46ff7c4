import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { PACKAGE_ROOT } from '../../src/sensor/native.js';
import { kernelSuite } from '../helpers/kernel.js';
import { H2_CLIENT, HTTPS_CLIENT, loopbackServers, SECRET_ANSWER, SECRET_PROMPT, SECRET_QUERY, SECRET_TOKEN, type LoopbackServers } from '../helpers/tls-metadata.js';

/** The daemon with sensor.tlsMetadata: host-wide OpenSSL uprobes, metadata in its exports, no secret in its state. */
const { skip } = kernelSuite();
const BIN = join(PACKAGE_ROOT, 'bin', 'witness.js');
const SECRETS = [SECRET_PROMPT, SECRET_ANSWER, SECRET_TOKEN, SECRET_QUERY];

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    const st = statSync(p);
    return st.isDirectory() ? filesUnder(p) : st.isFile() ? [p] : [];
  });
}

const lines = (dir: string): Envelope[] => filesUnder(dir).filter((f) => f.endsWith('.ndjson'))
  .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Envelope));

describe.skipIf(skip)('daemon with sensor.tlsMetadata on the real kernel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-tls-daemon-'));
  const state = join(dir, 'state');
  const out = join(dir, 'out');
  let servers: LoopbackServers;
  let daemon: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    servers = await loopbackServers();
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ heartbeat: '1s', sensor: { tlsMetadata: true }, export: { file: { dir: out } } }));
    daemon = spawn(process.execPath, [BIN, 'daemon', '--config', config], {
      env: { ...process.env, WITNESS_STATE_DIR: state, NOTIFY_SOCKET: '' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const deadline = Date.now() + 20_000;
    while (!lines(out).some((e) => e.event === 'sensor.start')) {
      if (Date.now() > deadline) throw new Error(`daemon did not start\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    daemon?.kill('SIGTERM');
    await new Promise((r) => daemon?.once('exit', r));
    await servers?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('HTTP/1.1 and HTTP/2 requests of any process: metadata exported; no secret in the exports or the state dir', async () => {
    chmodSync(dir, 0o755);
    for (const [name, text] of [['h1.js', HTTPS_CLIENT(servers.https)], ['h2.js', H2_CLIENT(servers.h2)]] as const) {
      writeFileSync(join(dir, name), text);
      const c = spawn(process.execPath, [join(dir, name)], { stdio: 'ignore' });
      expect(await new Promise((r) => c.once('exit', r))).toBe(0);
    }
    const ports = [servers.https, servers.h2];
    const deadline = Date.now() + 15_000;
    let got: Envelope[] = [];
    while ((got = lines(out).filter((e) => e.event === 'tls.http_request' && ports.includes(e.attributes['server.port'] as number))).length < 2) {
      if (Date.now() > deadline) throw new Error(`no tls.http_request for ports ${ports.join(',')}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const e of got) {
      expect(e.attributes).toMatchObject({ 'gen_ai.request.model': 'm-1', 'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 34, 'http.response.status_code': 200 });
    }
    expect(got.map((e) => e.attributes['network.protocol.version']).sort()).toEqual(['1.1', '2']);
    expect(lines(out).some((e) => e.event === 'tls.probe' && e.attributes['witness.tls.probe.library'] === 'openssl')).toBe(true);
    const files = filesUnder(dir).filter((f) => !f.endsWith('.js')); // the client scripts themselves hold the secrets
    expect(files.length).toBeGreaterThan(2);
    for (const f of files) {
      const bytes = readFileSync(f).toString('latin1');
      for (const s of SECRETS) expect(bytes.includes(s), `${s} in ${f}`).toBe(false);
    }
  });
});
