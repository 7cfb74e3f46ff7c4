import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAME_JSON, FrameReader, jsonFrame, RESIDENT_PROTOCOL } from '../../src/daemon/resident-protocol.js';
import type { Envelope } from '../../src/events/envelope.js';
import { kernelSuite } from '../helpers/kernel.js';
import { runCollect as run, startResidentDaemon, stopDaemon, WITNESS_BIN as BIN, type Done, type TestDaemon } from '../helpers/resident-daemon.js';

/**
 * `witness run` through a running daemon (docs/resident.md) against the same
 * command run standalone, on the real kernel: same events, same session,
 * same exit code; a clean fallback when the daemon is absent or refuses; and
 * the socket's own defences (a non-root peer, forged pids).
 */
const { skip } = kernelSuite();
const lines = (path: string): Envelope[] => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Envelope);

/**
 * What must match between the two paths: each record's event and the fields that say what
 * happened, with pids renamed by first appearance (they differ between runs) and times,
 * cgroups and process keys left out.
 */
function shape(events: Envelope[]): unknown[] {
  const pids = new Map<number, string>();
  const p = (v: unknown): unknown => (typeof v === 'number' ? (pids.get(v) ?? (pids.set(v, `P${pids.size}`), `P${pids.size - 1}`)) : v);
  const keep = ['file.path', 'process.executable.path', 'process.command_args', 'process.exit.code', 'network.peer.address',
    'network.peer.port', 'witness.result', 'process.user.id', 'witness.setid.syscall'];
  return events.filter((e) => e.event !== 'sensor.heartbeat').map((e) => {
    const a = e.attributes;
    const out: Record<string, unknown> = { event: e.event, pid: p(a['process.pid']) };
    if (a['process.parent_pid'] !== undefined) out.ppid = p(a['process.parent_pid']);
    for (const k of keep) if (a[k] !== undefined) out[k] = a[k];
    return out;
  });
}

function session(dir: string): Record<string, unknown> {
  const s = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8')) as Record<string, unknown>;
  const agent = { ...(s.agent as Record<string, unknown>) };
  delete agent['witness.agent.cgroup']; // a fresh cgroup per run
  delete agent['witness.sensor.resident_pid'];
  // the executable's path only: its digest needs the process alive when its exec record arrives, and the
  // daemon's stream delivers ~20 ms later than a local ring, so a short-lived root is more often 'unavailable'
  return { command: s.command, exit_code: s.exit_code, signal: s.signal, counters: s.counters, drops: s.drops, agent, executable: (s.executable as { path?: string }).path };
}

/** hello as a raw client; resolves with the daemon's first answer frame. */
function firstAnswer(path: string, then: (send: (o: unknown) => void, answer: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const rd = new FrameReader();
    const got: Record<string, unknown>[] = [];
    sock.once('connect', () => sock.write(jsonFrame({ op: 'hello', protocol: RESIDENT_PROTOCOL })));
    sock.on('data', (c: Buffer) => {
      for (const f of rd.push(c)) {
        if (f.kind !== FRAME_JSON) continue;
        got.push(f.json);
        if (!then((o) => sock.write(jsonFrame(o)), f.json)) { sock.destroy(); resolve(got); }
      }
    });
    sock.once('close', () => resolve(got));
    sock.once('error', reject);
  });
}

describe.skipIf(skip)('witness run through the resident daemon', () => {
  const dir = mkdtempSync(join(tmpdir(), 'witness-resident-'));
  const work = join(dir, 'work');
  const sock = join(dir, 'resident.sock');
  const state = join(dir, 'state');
  let daemon: TestDaemon;
  let listener: Server;
  let port = 0;
  /** connections the tree made to the listener: one per agent that ran */
  let accepted = 0;
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...process.env, WITNESS_RESIDENT: 'on', WITNESS_RESIDENT_SOCKET: sock, WITNESS_STATE_DIR: state, ...extra,
  });

  beforeAll(async () => {
    writeFileSync(join(dir, 'w.json'), JSON.stringify({
      stateDir: state, scopeSocket: join(dir, 'scope.sock'), heartbeat: '2s',
      store: { enabled: false }, pulse: { enabled: false }, ledger: { enabled: false },
    }));
    chmodSync(dir, 0o755); // nobody (the agent, the refused peer) must reach what is inside
    mkdirSync(work);
    chmodSync(work, 0o777); // the agent runs as nobody and writes here
    listener = createServer((c) => { accepted++; c.on('data', () => {}); c.on('error', () => {}); c.on('end', () => c.end()); });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    port = (listener.address() as { port: number }).port;
    daemon = await startResidentDaemon(join(dir, 'w.json'), sock);
  });

  afterAll(async () => {
    await stopDaemon(daemon);
    listener?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** a small tree: an exec, a file write, a loopback connect, a chosen exit code */
  const tree = (): string[] => ['/bin/bash', '-c',
    `echo data > ${work}/f.txt; /bin/true; exec 3<>/dev/tcp/127.0.0.1/${port} && echo hi >&3; exit 5`];

  it('records the same events, session and exit code as the standalone path', async () => {
    const via = await run(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', join(dir, 'sa'), '--out', join(dir, 'a.ndjson'), '--', ...tree()], env());
    const own = await run(process.execPath, [BIN, 'run', '--no-resident', '--user', 'nobody', '--session-dir', join(dir, 'sb'), '--out', join(dir, 'b.ndjson'), '--', ...tree()], env());
    expect(via.code, via.stderr).toBe(5);
    expect(own.code, own.stderr).toBe(5);
    // the resident run really went through the daemon, the other did not
    const sa = JSON.parse(readFileSync(join(dir, 'sa', 'session.json'), 'utf8')) as { agent: Record<string, unknown> };
    const sb = JSON.parse(readFileSync(join(dir, 'sb', 'session.json'), 'utf8')) as { agent: Record<string, unknown> };
    expect(sa.agent['witness.sensor.resident_pid']).toBe(daemon.proc.pid);
    expect(sb.agent['witness.sensor.resident_pid']).toBeUndefined();

    const a = lines(join(dir, 'a.ndjson'));
    const b = lines(join(dir, 'b.ndjson'));
    expect(shape(a)).toEqual(shape(b));
    const kinds = new Set(a.map((e) => e.event));
    for (const k of ['process.exec', 'file.write', 'network.connect', 'process.exit']) expect(kinds, k).toContain(k);
    expect(session(join(dir, 'sa'))).toEqual(session(join(dir, 'sb')));

    // emitted = delivered + dropped on the streamed path too, per kind
    const beat = a.filter((e) => e.event === 'sensor.heartbeat').at(-1)!.attributes;
    const emitted = Object.entries(beat).filter(([k]) => k.startsWith('witness.kernel.emitted.')).reduce((n, [, v]) => n + (v as number), 0);
    expect(emitted).toBeGreaterThan(0);
    expect(emitted).toBe((beat['witness.decoded'] as number) + (beat['witness.drops.user'] as number));
    expect(beat['witness.drops.total']).toBe(0);

    // both ledgers verify
    for (const s of ['sa', 'sb']) {
      const v = await run(process.execPath, [BIN, 'verify', '--pubkey', join(state, 'keys', 'host.pub'), join(dir, s)], env());
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }
  });

  it('a flooding tree: every write is a record or a counted repeat in its own session (nothing lost on the stream)', async () => {
    const n = 3000; // far past the daemon's default budget of 1024 per window for one path
    const r = await run(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', join(dir, 'sf'), '--out', join(dir, 'flood.ndjson'), '--',
      '/bin/bash', '-c', `for ((i = 0; i < ${n}; i++)); do : > ${work}/flood; done`], env());
    expect(r.code, r.stderr).toBe(0);
    const sf = JSON.parse(readFileSync(join(dir, 'sf', 'session.json'), 'utf8')) as { agent: Record<string, unknown> };
    expect(sf.agent['witness.sensor.resident_pid']).toBe(daemon.proc.pid);
    const ev = lines(join(dir, 'flood.ndjson'));
    const writes = ev.filter((e) => e.event === 'file.write' && e.attributes['file.path'] === `${work}/flood`).length;
    const repeats = ev.filter((e) => e.event === 'sensor.suppressed' && e.attributes['witness.suppressed.kind'] === 'file_write')
      .reduce((a, e) => a + (e.attributes['witness.suppressed.count'] as number), 0);
    expect(repeats, 'the budget must have counted repeats for this test to mean anything').toBeGreaterThan(0);
    expect(writes + repeats).toBe(n);
    const beat = ev.filter((e) => e.event === 'sensor.heartbeat').at(-1)!.attributes;
    expect(beat['witness.suppressed.file_write']).toBe(repeats);
    expect(beat['witness.drops.total']).toBe(0);
    const emitted = Object.entries(beat).filter(([k]) => k.startsWith('witness.kernel.emitted.')).reduce((a, [, v]) => a + (v as number), 0);
    expect(emitted).toBe((beat['witness.decoded'] as number) + (beat['witness.drops.user'] as number));
  });

  it('falls back to its own sensor when no daemon listens', async () => {
    const r = await run(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', join(dir, 'sc'), '--out', join(dir, 'c.ndjson'), '--', ...tree()],
      env({ WITNESS_RESIDENT_SOCKET: join(dir, 'nobody-here.sock'), WITNESS_LOG_LEVEL: 'debug' }));
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain('no daemon at');
    const s = JSON.parse(readFileSync(join(dir, 'sc', 'session.json'), 'utf8')) as { agent: Record<string, unknown> };
    expect(s.agent['witness.sensor.resident_pid']).toBeUndefined();
    expect(shape(lines(join(dir, 'c.ndjson')))).toEqual(shape(lines(join(dir, 'b.ndjson'))));
  });

  it('falls back to its own sensor when the daemon refuses', async () => {
    const fake = join(dir, 'refusing.sock');
    const server = createServer((c) => c.once('data', () => c.end(jsonFrame({ ok: false, error: { code: 'refused', message: 'refused by the test' } }))));
    await new Promise<void>((r) => server.listen(fake, r));
    try {
      const r = await run(process.execPath, [BIN, 'run', '--user', 'nobody', '--no-ledger', '--out', join(dir, 'd.ndjson'), '--', ...tree()],
        env({ WITNESS_RESIDENT_SOCKET: fake, WITNESS_LOG_LEVEL: 'debug' }));
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain('refused by the test');
      expect(shape(lines(join(dir, 'd.ndjson')))).toEqual(shape(lines(join(dir, 'b.ndjson'))));
    } finally {
      server.close();
    }
  });

  it('falls back to its own sensor when the daemon refuses the session (the guardian started meanwhile ends unforked)', async () => {
    const fake = join(dir, 'no-session.sock');
    const server = createServer((c) => {
      const rd = new FrameReader();
      c.on('data', (d: Buffer) => {
        for (const f of rd.push(d)) {
          if (f.kind !== FRAME_JSON) continue;
          if (f.json.op === 'hello') c.write(jsonFrame({ ok: true, daemon_pid: 1, trace_all: true, budget_events: 1024, budget_window_ms: 1000, probes_attached: [], probes_missing: [] }));
          else if (f.json.op === 'session') c.end(jsonFrame({ ok: false, error: { code: 'bad_request', message: 'session refused by the test' } }));
        }
      });
      c.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(fake, r));
    try {
      const before = accepted;
      const r = await run(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', join(dir, 'se'), '--out', join(dir, 'e.ndjson'), '--', ...tree()],
        env({ WITNESS_RESIDENT_SOCKET: fake, WITNESS_LOG_LEVEL: 'debug' }));
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain('session refused by the test');
      const s = JSON.parse(readFileSync(join(dir, 'se', 'session.json'), 'utf8')) as { agent: Record<string, unknown> };
      expect(s.agent['witness.sensor.resident_pid']).toBeUndefined();
      // one agent only: the first guardian never forked (an untraced first tree would have connected too)
      expect(accepted - before).toBe(1);
      expect(shape(lines(join(dir, 'e.ndjson')))).toEqual(shape(lines(join(dir, 'b.ndjson'))));
    } finally {
      server.close();
    }
  });

  it('answers a non-root peer with a refusal (SO_PEERCRED), even when the socket file lets it connect', async () => {
    // The client as nobody: raw frames, no project files (they need not be readable for nobody).
    const client = `const s=require('net').createConnection(process.argv[1]);let b=Buffer.alloc(0);
      s.on('connect',()=>{const j=Buffer.from('{"op":"hello"}');const h=Buffer.alloc(5);h.writeUInt32LE(j.length+1,0);h[4]=1;s.write(Buffer.concat([h,j]));});
      s.on('data',(c)=>{b=Buffer.concat([b,c]);if(b.length>=4&&b.length>=4+b.readUInt32LE(0)){console.log(b.subarray(5,4+b.readUInt32LE(0)).toString());process.exit(0);}});
      s.on('error',(e)=>{console.log(JSON.stringify({connectError:e.code}));process.exit(0);});`;
    const asNobody = (): Promise<Done> => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', client, sock], env());
    // as installed (0600 root): the kernel refuses the connect itself
    const closed = await asNobody();
    expect(JSON.parse(closed.stdout)).toEqual({ connectError: 'EACCES' });
    chmodSync(sock, 0o666); // a loosened mode (an operator's mistake): the credential check still holds
    try {
      const r = await asNobody();
      const answer = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
      expect(answer.ok).toBe(false);
      expect(answer.error.code).toBe('refused');
      expect(answer.error.message).toMatch(/uid 65534 is not root/);
    } finally {
      chmodSync(sock, 0o600);
    }
  });

  it('refuses forged pids: a guardian that is not the peer\'s child, a root that is not the guardian\'s', async () => {
    // a session of its own first (no ledger: nothing is written), as a real client opens one
    const plan = {
      settings: { command: ['/bin/true'], heartbeatSeconds: 10, lingerMs: 100, windowMs: 3_600_000, leaveRunning: false, ledger: false, tlsMetadata: false, tlsContent: false },
      json: true, stateDir: state, agentAttrs: {},
    };
    const notMine = await firstAnswer(sock, (send, a) => {
      if (a.daemon_pid !== undefined) { send({ op: 'session', plan }); return true; }
      if (a.ok === true && a.session_dir !== undefined) { send({ op: 'trace', guardian: 1 }); return true; }
      return false;
    });
    expect(notMine.at(-1)).toMatchObject({ ok: false, error: { code: 'not_child' } });

    const child = spawn('/bin/sleep', ['30']); // our own child, standing in for a guardian
    try {
      let traced = false;
      const forged = await firstAnswer(sock, (send, a) => {
        if (a.daemon_pid !== undefined) { send({ op: 'session', plan }); return true; }
        if (a.ok === true && a.session_dir !== undefined) { send({ op: 'trace', guardian: child.pid }); return true; }
        if (a.ok === true && !traced) { traced = true; send({ op: 'root', pid: daemon.proc.pid }); return true; } // the daemon is no child of the sleep
        return false;
      });
      expect(forged.at(-1)).toMatchObject({ ok: false, error: { code: 'not_child' } });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a client of another protocol (it then uses its own sensor), and a trace before a session', async () => {
    const old = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
      const c = createConnection(sock);
      const rd = new FrameReader();
      const got: Record<string, unknown>[] = [];
      c.once('connect', () => c.write(jsonFrame({ op: 'hello' }))); // the protocol-1 client's hello
      c.on('data', (d: Buffer) => { for (const f of rd.push(d)) if (f.kind === FRAME_JSON) got.push(f.json); });
      c.once('close', () => resolve(got));
      c.once('error', reject);
    });
    expect(old).toEqual([{ ok: false, error: { code: 'mismatch', message: expect.stringContaining('protocol') } }]);
    const early = await firstAnswer(sock, (send, a) => {
      if (a.daemon_pid !== undefined) { send({ op: 'trace', guardian: process.pid }); return true; }
      return false;
    });
    expect(early.at(-1)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  });

  // last: it stops the suite's daemon
  it('ends the tree when the daemon stops mid-run, and the record says the stream broke', async () => {
    const out = join(dir, 'broken.ndjson');
    const started = Date.now();
    const pending = run(process.execPath, [BIN, 'run', '--user', 'nobody', '--session-dir', join(dir, 'sx'), '--out', out, '--', '/bin/sleep', '30'], env());
    // the agent has exec'd once its exec record reached the output
    for (let i = 0; i < 200 && !(existsSync(out) && readFileSync(out, 'utf8').includes('"process.exec"')); i++) await new Promise((r) => setTimeout(r, 50));
    const exec = lines(out).find((e) => e.event === 'process.exec')!;
    expect(exec, 'the agent never showed up through the daemon').toBeDefined();
    daemon.proc.kill('SIGTERM');
    const r = await pending;
    expect(Date.now() - started).toBeLessThan(25_000); // not the sleep's 30 s: the tree was ended
    expect(r.code).toBe(137); // SIGKILL
    expect(r.stderr).toContain("the daemon's stream broke");
    const pid = exec.attributes['process.pid'] as number;
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    const beat = lines(out).filter((e) => e.event === 'sensor.heartbeat').at(-1)!.attributes;
    expect(beat['witness.loss.resident_stream_broken']).toBe(1);
    // the daemon sealed the session it was recording before it went: killed, and the stream named as broken
    const sx = JSON.parse(readFileSync(join(dir, 'sx', 'session.json'), 'utf8')) as Record<string, unknown>;
    expect(sx).toMatchObject({ exit_code: null, signal: 'SIGKILL' });
    const recorded = readFileSync(join(dir, 'sx', 'events.ndjson'), 'utf8').split('\n').filter(Boolean)
      .map((l) => (JSON.parse(l) as { event?: Envelope }).event).filter((e): e is Envelope => e?.event === 'sensor.heartbeat');
    expect(recorded.at(-1)!.attributes['witness.loss.resident_stream_broken']).toBe(1);
    const v = await run(process.execPath, [BIN, 'verify', '--pubkey', join(state, 'keys', 'host.pub'), join(dir, 'sx')], env());
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
