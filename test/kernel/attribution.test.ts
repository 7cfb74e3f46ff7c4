import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/events/envelope.js';
import { findingEnvelopeSchema, sensorEnvelopeSchema } from '../../src/events/schemas.js';
import { findCgroup2Mount } from '../../src/identity/cgroup.js';
import { AttributionEnricher } from '../../src/identity/enricher.js';
import { parseManifest } from '../../src/manifest/load.js';
import { ScopeRegistry } from '../../src/scope/registry.js';
import { toEnvelope } from '../../src/sensor/ndjson.js';
import { WitnessSensor } from '../../src/sensor/sensor.js';
import { kernelSuite } from '../helpers/kernel.js';

const { skip } = kernelSuite();
const NODE = process.execPath;

/** Runs traced commands through the real sensor and the AttributionEnricher, in kernel order. */
class AttributedHarness {
  readonly out: Envelope[] = [];
  readonly sensor: WitnessSensor;
  readonly enricher: AttributionEnricher;
  private readonly clock = { bootToEpochNs: 0n };
  private readonly exited = new Map<number, () => void>();

  constructor(readonly registry: ScopeRegistry, manifestJson: unknown) {
    this.enricher = new AttributionEnricher({ clock: this.clock, registry, manifest: parseManifest(JSON.stringify(manifestJson), 'agents.json') });
    this.sensor = WitnessSensor.open({
      maxLatencyMs: 5,
      onEvent: (ev) => {
        this.out.push(...this.enricher.enrich(ev, toEnvelope(ev, this.sensor.clock)));
        if (ev.kind === 'exit') this.exited.get(ev.pid)?.();
      },
    });
    this.clock.bootToEpochNs = this.sensor.clock.bootToEpochNs;
  }

  spawn(cmd: string, args: string[]): { child: ChildProcess; done: Promise<void> } {
    const child = this.sensor.spawnTraced(cmd, args, { stdio: ['pipe', 'ignore', 'inherit'] });
    const sawExit = new Promise<void>((r) => this.exited.set(child.pid!, r));
    const done = new Promise<void>((r) => child.once('exit', () => r()))
      .then(() => Promise.race([sawExit, new Promise((r) => setTimeout(r, 2000))]))
      .then(() => new Promise((r) => setTimeout(r, 50)));
    return { child, done: done as Promise<void> };
  }

  /** Envelopes of the pids in `pids`' subtrees (by parent chain). */
  of(root: number): Envelope[] {
    const r = String(root);
    return this.out.filter((e) => e.attributes['process.pid'] === root || (e.attributes['witness.process.parent_chain'] as string[] | undefined)?.includes(r));
  }

  async close(): Promise<void> {
    await this.sensor.close();
    await this.enricher.close();
  }
}

describe.skipIf(skip)('attribution on the real kernel', () => {
  let h: AttributedHarness;
  let server: Server;
  let port: number;
  let dir: string;
  let agentBin: string;
  const registry = new ScopeRegistry();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'witness-attr-'));
    agentBin = join(dir, 'agent-shell');
    copyFileSync('/bin/bash', agentBin);
    writeFileSync(join(dir, 'grandchild.js'), `const [port, file] = process.argv.slice(2);
const s = require('net').connect(Number(port), '127.0.0.1', () => { require('fs').writeFileSync(file, 'x'); s.destroy(); });`);
    server = await new Promise((resolve) => {
      const s = createServer((c) => c.end());
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    port = (server.address() as { port: number }).port;
    h = new AttributedHarness(registry, {
      version: 1,
      agents: [
        { name: 'shell-agent', match: [{ executable: realpathSync(agentBin) }], egress: { cidrs: ['192.0.2.0/24'] } },
        // the witness runs on node too: it must never lend this agent to what it spawns
        { name: 'node-agent', match: [{ executable: realpathSync(NODE) }], egress: { loopback: true } },
      ],
    });
  });
  afterAll(async () => {
    server?.close();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a scope opened over a shell reaches its grandchild\'s connect and file write, and ends at close', async () => {
    const file1 = join(dir, 'in-scope');
    const file2 = join(dir, 'after-close');
    const script = `read go; /bin/bash -c "${NODE} ${dir}/grandchild.js ${port} ${file1}; true"; read again; ${NODE} ${dir}/grandchild.js ${port} ${file2}`;
    const { child, done } = h.spawn('/bin/bash', ['-c', script]);
    const pid = child.pid!;
    registry.open({ runId: 'run-k', sessionId: 'sess-k', toolCallId: 'call-k', toolName: 'shell', pid });
    child.stdin!.write('go\n');
    // wait for the in-scope write to land before closing
    for (let i = 0; i < 200 && !h.of(pid).some((e) => e.event === 'file.write' && e.attributes['file.path'] === file1); i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 50));
    registry.close('call-k');
    child.stdin!.end('again\n');
    await done;

    const events = h.of(pid);
    const connects = events.filter((e) => e.event === 'network.connect' && e.attributes['network.peer.port'] === port);
    const writes = events.filter((e) => e.event === 'file.write' && String(e.attributes['file.path']).startsWith(dir));
    expect(connects).toHaveLength(2);
    expect(writes.map((w) => w.attributes['file.path'])).toEqual([file1, file2]);
    const [inConnect, afterConnect] = connects;
    const [inWrite, afterWrite] = writes;
    // grandchild: its chain is [child bash, root bash, ...]
    expect((inConnect!.attributes['witness.process.parent_chain'] as string[])[1]).toBe(String(pid));
    for (const e of [inConnect!, inWrite!]) {
      expect(e.attributes).toMatchObject({
        'witness.scope.run_id': 'run-k', 'witness.scope.session_id': 'sess-k', 'witness.scope.tool_call_id': 'call-k', 'witness.scope.tool_name': 'shell',
      });
    }
    for (const e of [afterConnect!, afterWrite!]) expect(e.attributes['witness.scope.tool_call_id']).toBeUndefined();
  });

  it('a process matching a manifest rule is the agent\'s, with its descendants; a connect outside its egress is a finding', async () => {
    const { child, done } = h.spawn(agentBin, ['-c', `${NODE} -e "require('net').connect(${port}, '127.0.0.1', function () { this.destroy(); })"; true`]);
    const pid = child.pid!;
    child.stdin!.end();
    await done;
    const events = h.of(pid);
    const exec = events.find((e) => e.event === 'process.exec' && e.attributes['process.pid'] === pid)!;
    expect(exec.attributes).toMatchObject({ 'witness.agent': 'shell-agent', 'process.executable.path': realpathSync(agentBin), 'witness.executable.hash_status': 'ok' });
    expect(exec.attributes['witness.executable.sha256']).toMatch(/^[0-9a-f]{64}$/);
    const nodeExec = events.find((e) => e.event === 'process.exec' && e.attributes['process.pid'] !== pid)!;
    expect(nodeExec.attributes['witness.agent']).toBe('shell-agent');
    const finding = events.find((e) => e.event === 'finding.undeclared_egress');
    expect(finding?.attributes).toMatchObject({ 'witness.agent': 'shell-agent', 'network.peer.address': '127.0.0.1', 'network.peer.port': port });
    expect(events.some((e) => e.event === 'finding.unattributed_process')).toBe(false);
  });

  it('another process is unattributed and reported once', async () => {
    const { child, done } = h.spawn('/bin/bash', ['-c', '/bin/true; true']);
    child.stdin!.end();
    await done;
    const events = h.of(child.pid!);
    expect(events.filter((e) => e.event.startsWith('process.')).every((e) => e.attributes['witness.agent'] === 'unattributed')).toBe(true);
    // one per program: the shell and /bin/true (the fork before true's exec is covered by the shell's)
    expect(events.filter((e) => e.event === 'finding.unattributed_process').map((e) => e.attributes['process.executable.path']))
      .toEqual(['/usr/bin/bash', '/usr/bin/true']);
  });

  const mount = findCgroup2Mount();
  it.skipIf(mount === null)('a cgroup-bound scope covers whatever runs in the cgroup; identity carries the cgroup path', async () => {
    const cg = `/witness-attr-${process.pid}`;
    mkdirSync(join(mount!, cg));
    try {
      registry.open({ runId: 'run-c', sessionId: 'sess-c', toolCallId: 'call-c', cgroup: cg });
      const file = join(dir, 'in-cgroup');
      const { child, done } = h.spawn('/bin/bash', ['-c', `echo $$ > ${mount}${cg}/cgroup.procs; ${NODE} ${dir}/grandchild.js ${port} ${file}`]);
      child.stdin!.end();
      await done;
      registry.close('call-c');
      const write = h.of(child.pid!).find((e) => e.event === 'file.write' && e.attributes['file.path'] === file);
      expect(write?.attributes).toMatchObject({ 'witness.cgroup.path': cg, 'witness.scope.tool_call_id': 'call-c' });
    } finally {
      await new Promise((r) => setTimeout(r, 100));
      rmdirSync(join(mount!, cg));
    }
  });

  it('every enriched line still satisfies the NDJSON contract', () => {
    expect(h.out.length).toBeGreaterThan(10);
    for (const env of h.out) {
      const schema = env.event.startsWith('finding.') ? findingEnvelopeSchema : sensorEnvelopeSchema;
      const r = schema.safeParse(env);
      expect(r.success, `${env.event}: ${r.success ? '' : JSON.stringify(r.error.issues)}`).toBe(true);
    }
  });
});
