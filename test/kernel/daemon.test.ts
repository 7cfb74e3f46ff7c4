import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { loadPublicKey, verifyPath, writeKeyPair } from '../../src/ledger/index.js';
import { scopeRequest } from '../../src/scope/client.js';
import { openStore } from '../../src/store/db.js';
import { EventStore } from '../../src/store/events.js';
import { kernelSuite } from '../helpers/kernel.js';
import { NotifyReceiver } from '../helpers/notify-receiver.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';

/**
 * The compiled daemon on the real kernel, host-wide. It sees every process
 * on the machine (other test runners included), so assertions pick out our
 * own generator's events by a per-test marker in argv and by parent pid.
 */
const { skip } = kernelSuite();
const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'witness.js');

interface Running {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDaemon(configPath: string, stateDir: string, stdout: number | 'ignore', env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [BIN, 'daemon', '--config', configPath], {
    env: { ...process.env, WITNESS_STATE_DIR: stateDir, WITNESS_LOG_LEVEL: 'info', NOTIFY_SOCKET: '', ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, stderr: () => err, exited };
}

function readNdjson(dir: string): Envelope[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.ndjson')).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Envelope));
}

async function until(cond: () => boolean, what: string, ms: number, d?: Running): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${d?.stderr() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `count` /bin/echo execs tagged with `marker` under one sh; resolves with the sh pid. */
async function generate(marker: string, from: number, count: number, shell = '/bin/sh', beforeRun?: (pid: number) => Promise<void>): Promise<number> {
  const script = `read go; i=${from}; while [ $i -lt ${from + count} ]; do /bin/echo ${marker} $i >/dev/null; i=$((i+1)); done`;
  const sh = spawn(shell, ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
  await beforeRun?.(sh.pid!);
  sh.stdin!.end('go\n');
  await new Promise((r) => sh.once('exit', r));
  return sh.pid!;
}

/** Marker numbers of our echo execs whose parent is one of `parents`. */
function markerExecs(events: Envelope[], marker: string, parents: Set<number>): number[] {
  return events
    .filter((e) => e.event === 'process.exec' && parents.has(e.attributes['process.parent_pid'] as number))
    .map((e) => e.attributes['process.command_args'] as string[])
    .filter((argv) => argv[0] === '/bin/echo' && argv[1] === marker)
    .map((argv) => Number(argv[2]))
    .sort((a, b) => a - b);
}

function stoppedLog(stderr: string): { emitted: number; sinks: Record<string, { written: number; dropped: number; queued: number; failures?: number }> } {
  const line = stderr.split('\n').find((l) => l.includes('"daemon stopped"'));
  if (!line) throw new Error(`no 'daemon stopped' log line in:\n${stderr}`);
  return JSON.parse(line) as never;
}

function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe.skipIf(skip)('witness daemon on the real kernel', () => {
  beforeAll(() => {
    // The daemon runs from dist/: compile when any source is newer than the
    // build (type errors elsewhere in the tree do not stop tsc from emitting).
    if (newestMtime(join(ROOT, 'src')) > newestMtime(join(ROOT, 'dist'))) {
      try {
        execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
      } catch {
        // reported by `tsc --noEmit`; what matters here is that dist/ was written
      }
    }
    expect(existsSync(join(ROOT, 'dist', 'cli', 'daemon.js'))).toBe(true);
  }, 300_000);

  const receivers: OtlpReceiver[] = [];
  afterAll(async () => { for (const r of receivers) await r.stop(); });

  it('flushes to file, store and a collector that went away and came back, on SIGTERM mid-stream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-daemon-'));
    const out = join(dir, 'out');
    const receiver = await new OtlpReceiver().start();
    receivers.push(receiver);
    const port = receiver.port;
    const configPath = join(dir, 'witness.json');
    const state = join(dir, 'state');
    mkdirSync(join(state, 'keys'), { recursive: true, mode: 0o700 });
    const keys = writeKeyPair(join(state, 'keys', 'host'));
    writeFileSync(configPath, JSON.stringify({
      heartbeat: '1s',
      scopeSocket: join(dir, 'scope.sock'),
      ledger: { enabled: true },
      export: {
        file: { dir: out, maxBytes: 256 << 10 },
        // a queue deep enough for the outage on a busy shared host, so the sink must deliver every line
        otlp: { endpoint: receiver.endpoint, initialBackoff: '100ms', maxBackoff: '500ms', timeout: '2s', maxQueued: 2_000_000 },
      },
    }));
    const d = startDaemon(configPath, state, 'ignore');
    try {
      await until(() => readNdjson(out).some((e) => e.event === 'sensor.start'), 'sensor.start in the NDJSON file', 90_000, d);
      const marker = `witness-daemon-${randomUUID()}`;
      const parents = new Set<number>();
      parents.add(await generate(marker, 0, 40));
      await receiver.stop(); // collector goes away...
      parents.add(await generate(marker, 40, 40));
      await new Promise((r) => setTimeout(r, 700)); // ...long enough for failed attempts
      const back = await new OtlpReceiver().start(port); // ...and comes back
      receivers.push(back);
      parents.add(await generate(marker, 80, 40));
      d.child.kill('SIGTERM'); // at once: the last execs are still in the ring / the queues
      const { code, signal } = await d.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });

      const all = range(0, 120);
      const fileEvents = readNdjson(out);
      expect(markerExecs(fileEvents, marker, parents)).toEqual(all);
      const last = fileEvents.at(-1)!;
      expect(last.event).toBe('sensor.stop');
      const final = fileEvents.filter((e) => e.event === 'sensor.heartbeat' && e.attributes['witness.sensor.final'] === true);
      expect(final.length).toBe(1);
      expect(final[0]!.attributes['witness.schema_version']).toBe('1.0');
      // every bounded structure is in the heartbeat: the process table the real children filled, what its
      // cap evicted (nothing here), the sink queues' bytes (the final beat precedes the sinks' drain, so
      // only their presence is fixed), the daemon's memory and its longest event-loop hold
      const fa = final[0]!.attributes;
      expect(fa['witness.identity.processes']).toBeGreaterThan(0);
      expect(fa['witness.identity.evicted']).toBe(0);
      expect(fa['witness.identity.evicted_attributed']).toBe(0);
      expect(typeof fa['witness.export.file.queued_bytes']).toBe('number');
      expect(typeof fa['witness.export.store.queued_bytes']).toBe('number');
      expect(fa['witness.daemon.rss_bytes']).toBeGreaterThan(fa['witness.daemon.heap_used_bytes'] as number);
      expect(typeof fa['witness.daemon.loop_delay_max_ms']).toBe('number');

      const store = openStore(join(dir, 'state', 'witness.db'));
      try {
        const stored = new EventStore(store).query({ event: 'process.exec' }).map((l) => JSON.parse(l) as Envelope);
        expect(markerExecs(stored, marker, parents)).toEqual(all);
      } finally {
        store.close();
      }

      // OTLP: nothing lost beyond what the sink counted (the queue outlasts the outage; a
      // batch still in flight when the stop timeout ends is counted, never silently gone)
      const stopped = stoppedLog(d.stderr());
      const otlp = stopped.sinks.otlp!;
      expect(otlp.queued).toBe(0);
      expect(otlp.failures).toBeGreaterThan(0); // the outage really was seen, and retried through
      expect(otlp.written + otlp.dropped).toBe(stopped.emitted);
      const delivered = [...receiver.records(), ...back.records()];
      expect(delivered.length).toBe(otlp.written);
      const asEnvelopes = delivered.map((r: any) => ({
        event: r.eventName,
        attributes: Object.fromEntries(r.attributes.map((kv: any) => [kv.key,
          kv.value.intValue !== undefined ? Number(kv.value.intValue) : kv.value.arrayValue ? kv.value.arrayValue.values.map((v: any) => v.stringValue) : kv.value.stringValue])),
      })) as Envelope[];
      // every marker exec arrived, or is among the lines the sink counted as dropped
      const got = markerExecs(asEnvelopes, marker, parents);
      expect(got.every((n) => all.includes(n))).toBe(true);
      expect(all.length - new Set(got).size).toBeLessThanOrEqual(otlp.dropped);
      expect(otlp.dropped).toBeLessThan(stopped.emitted / 10); // dropped at the stop deadline, not during the outage
      expect(back.records().length).toBeGreaterThan(0);

      // the signed daemon ledger holds every exported line and verifies
      expect(stopped.sinks.ledger).toMatchObject({ written: stopped.emitted, dropped: 0 });
      const report = await verifyPath(state, { pinned: loadPublicKey(keys.publicPath) });
      expect(report.failure).toBeUndefined();
      expect(report.verified).toBe(true);
    } finally {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }
  }, 180_000);

  it('a stdout reader that never reads does not stop events reaching the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-daemon-'));
    const out = join(dir, 'out');
    const fifo = join(dir, 'stdout.fifo');
    execFileSync('mkfifo', [fifo]);
    // we hold the read end open and never read it: the pipe fills and stays full
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    const configPath = join(dir, 'witness.json');
    writeFileSync(configPath, JSON.stringify({
      heartbeat: '1s',
      scopeSocket: join(dir, 'scope.sock'),
      export: { stdout: { maxQueuedBytes: 64 << 10 }, file: { dir: out } },
    }));
    const d = startDaemon(configPath, join(dir, 'state'), writer);
    closeSync(writer);
    try {
      await until(() => readNdjson(out).some((e) => e.event === 'sensor.start'), 'sensor.start in the NDJSON file', 90_000, d);
      const marker = `witness-stdout-${randomUUID()}`;
      // ~300 execs + exits ≈ 250 KB of NDJSON: far more than a 64 KiB pipe plus a 64 KiB queue
      const parents = new Set([await generate(marker, 0, 300)]);
      // the heartbeat after the burst shows the stdout drops while the daemon keeps going
      await until(() => readNdjson(out).some((e) => e.event === 'sensor.heartbeat' && (e.attributes['witness.export.stdout.dropped'] as number) > 0),
        'a heartbeat counting stdout drops', 20_000, d);
      d.child.kill('SIGTERM');
      const { code } = await d.exited;
      expect(code).toBe(0);
      const store = openStore(join(dir, 'state', 'witness.db'));
      try {
        const stored = new EventStore(store).query({ event: 'process.exec' }).map((l) => JSON.parse(l) as Envelope);
        expect(markerExecs(stored, marker, parents)).toEqual(range(0, 300));
      } finally {
        store.close();
      }
      const stopped = stoppedLog(d.stderr());
      expect(stopped.sinks.stdout!.dropped).toBeGreaterThan(0);
      expect(stopped.sinks.store!.dropped).toBe(0);
      expect(stopped.sinks.store!.written).toBe(stopped.emitted);
    } finally {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      closeSync(reader);
    }
  }, 180_000);

  it('speaks sd_notify (READY, WATCHDOG, STOPPING) and survives SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-daemon-'));
    const notify = await new NotifyReceiver(join(dir, 'notify.sock')).start();
    const configPath = join(dir, 'witness.json');
    writeFileSync(configPath, JSON.stringify({ heartbeat: '1s', scopeSocket: join(dir, 'scope.sock'), export: { file: { dir: join(dir, 'out') } } }));
    const d = startDaemon(configPath, join(dir, 'state'), 'ignore', { NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: '600000' });
    try {
      await until(() => notify.messages.some((m) => m.startsWith('READY=1')), 'READY=1', 90_000, d);
      // READY comes once the probes are attached and sensor.start was emitted (the file write follows)
      await until(() => readNdjson(join(dir, 'out')).some((e) => e.event === 'sensor.start'), 'sensor.start', 2000, d);
      expect(notify.messages.find((m) => m.startsWith('READY=1'))).toContain(`MAINPID=${d.child.pid}`);
      await until(() => notify.messages.filter((m) => m === 'WATCHDOG=1').length >= 2, 'two WATCHDOG=1 (every 300 ms)', 10_000, d);
      d.child.kill('SIGHUP');
      // RELOADING=1 (with the monotonic time systemd asks for), then READY=1 again
      await until(() => notify.messages.some((m) => m.startsWith('RELOADING=1|MONOTONIC_USEC=')), 'RELOADING=1', 10_000, d);
      await until(() => notify.messages.filter((m) => m === 'READY=1').length === 1, 'READY=1 after the reload', 10_000, d);
      expect(d.child.exitCode).toBeNull();
      d.child.kill('SIGTERM');
      const { code } = await d.exited;
      expect(code).toBe(0);
      expect(notify.messages).toContain('STOPPING=1');
    } finally {
      notify.stop();
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }
  }, 180_000);

  it('attributes by the manifest, joins scopes from the socket, and re-reads the manifest on SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-daemon-'));
    const out = join(dir, 'out');
    const agentShell = join(dir, 'agent-sh');
    copyFileSync('/bin/sh', agentShell);
    chmodSync(agentShell, 0o755);
    const manifest = join(dir, 'agents.json');
    const secret = join(dir, 'secret.txt');
    writeFileSync(secret, 'hunter2');
    const declare = (name: string, sensitive: string[] = []): void => writeFileSync(manifest, JSON.stringify({
      version: 1, agents: [{ name, match: [{ executable: agentShell }] }], sensitive_paths: sensitive,
    }));
    declare('e2e-agent');
    const socket = join(dir, 'scope.sock');
    const configPath = join(dir, 'witness.json');
    writeFileSync(configPath, JSON.stringify({ heartbeat: '1s', manifest, scopeSocket: socket, export: { file: { dir: out } } }));
    const d = startDaemon(configPath, join(dir, 'state'), 'ignore');
    try {
      await until(() => readNdjson(out).some((e) => e.event === 'sensor.start'), 'sensor.start', 90_000, d);
      const marker = `witness-attr-${randomUUID()}`;
      const first = await generate(marker, 0, 10, agentShell, async (pid) => {
        const r = await scopeRequest(socket, { op: 'open', run_id: 'run-1', session_id: 's-1', tool_call_id: 'tc-1', pid });
        expect(r.ok).toBe(true);
      });
      expect((await scopeRequest(socket, { op: 'close', tool_call_id: 'tc-1' })).ok).toBe(true);
      // the reload re-matches live processes, so let the first run's records (up to its exit) through first
      await until(() => readNdjson(out).some((e) => e.event === 'process.exit' && e.attributes['process.pid'] === first), 'the first run to be exported', 10_000, d);
      declare('e2e-agent-v2', [secret]); // the reload also reaches the kernel's sensitive-file table
      d.child.kill('SIGHUP');
      await until(() => d.stderr().includes('manifest reloaded'), 'the manifest reload', 10_000, d);
      const second = await generate(marker, 10, 10, agentShell);
      const reader = spawn(agentShell, ['-c', `cat ${secret} >/dev/null`], { stdio: 'ignore' });
      await new Promise((r) => reader.once('exit', r));
      // a broken manifest on reload is reported (file + JSON path) and the running one stays
      writeFileSync(manifest, JSON.stringify({ version: 1, agents: [{ name: 'x', match: [{ exe: agentShell }] }] }));
      d.child.kill('SIGHUP');
      await until(() => d.stderr().includes('manifest reload failed'), 'the failed reload to be reported', 10_000, d);
      const failed = d.stderr().split('\n').find((l) => l.includes('manifest reload failed'))!;
      expect(failed).toContain(manifest);
      expect(failed).toContain("unknown key 'exe'");
      expect(d.child.exitCode).toBeNull();
      d.child.kill('SIGTERM');
      expect((await d.exited).code).toBe(0);

      const store = openStore(join(dir, 'state', 'witness.db'));
      try {
        const events = new EventStore(store);
        const v1 = events.query({ agent: 'e2e-agent', event: 'process.exec' }).map((l) => JSON.parse(l) as Envelope);
        expect(markerExecs(v1, marker, new Set([first]))).toEqual(range(0, 10));
        const scoped = v1.filter((e) => (e.attributes['process.command_args'] as string[])[1] === marker);
        expect(scoped.every((e) => e.attributes['witness.scope.tool_call_id'] === 'tc-1')).toBe(true);
        const v2 = events.query({ agent: 'e2e-agent-v2', event: 'process.exec' }).map((l) => JSON.parse(l) as Envelope);
        expect(markerExecs(v2, marker, new Set([second]))).toEqual(range(10, 10));
        const reads = events.query({ agent: 'e2e-agent-v2', event: 'file.read_sensitive' }).map((l) => JSON.parse(l) as Envelope);
        expect(reads.map((e) => e.attributes['file.path'])).toContain(secret);
        const findings = events.query({ agent: 'e2e-agent-v2', event: 'finding.sensitive_read' }).map((l) => JSON.parse(l) as Envelope);
        expect(findings.map((e) => e.attributes['file.path'])).toContain(secret);
        const scopeEvents = events.query({}).map((l) => JSON.parse(l) as Envelope).filter((e) => e.event.startsWith('scope.'));
        expect(scopeEvents.map((e) => [e.event, e.attributes['witness.scope.tool_call_id']])).toEqual([['scope.open', 'tc-1'], ['scope.close', 'tc-1']]);
      } finally {
        store.close();
      }
    } finally {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }
  }, 180_000);

  it('refuses a malformed config before touching the kernel, naming file and field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'witness-daemon-'));
    const configPath = join(dir, 'bad.json');
    writeFileSync(configPath, JSON.stringify({ export: { otlp: { endpoint: 'http://127.0.0.1:1', retries: 3 } } }));
    const d = startDaemon(configPath, join(dir, 'state'), 'ignore');
    const { code } = await d.exited;
    expect(code).toBe(2);
    expect(d.stderr()).toContain(`${configPath}: export.otlp.retries: unknown key 'retries'`);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  }, 120_000);
});
