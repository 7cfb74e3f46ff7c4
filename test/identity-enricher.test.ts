import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Envelope } from '../src/events/envelope.js';
import { findingEnvelopeSchema, sensorEnvelopeSchema } from '../src/events/schemas.js';
import { AttributionEnricher } from '../src/identity/enricher.js';
import { AttributionStore } from '../src/identity/store.js';
import { EgressPolicy } from '../src/manifest/egress.js';
import { parseManifest } from '../src/manifest/load.js';
import { ScopeRegistry } from '../src/scope/registry.js';
import { toEnvelope } from '../src/sensor/ndjson.js';
import type { ConnectEvent, EventHeader, ExecEvent, ExitEvent, FileEvent, ForkEvent, SensorEvent } from '../src/sensor/types.js';
import { openStore } from '../src/store/db.js';
import { run as tree } from '../src/cli/tree.js';

// pids far above pid_max: /proc has none of them, so identity must come from the records
const A = 0x3ff00001, B = A + 1, C = A + 2, D = A + 3, E = A + 4, F = A + 5;
const clock = { bootToEpochNs: 0n };
let t = BigInt(Date.now()) * 1_000_000n;

function hdr(pid: number, comm: string, uid = 1000): EventHeader {
  t += 1000n;
  return { pid, tid: pid, uid, gid: uid, cgroupId: 1n, comm, tsBootNs: t, flags: 0 };
}
const exec = (pid: number, ppid: number, exe: string, argv: string[]): ExecEvent => ({
  ...hdr(pid, exe.split('/').pop()!.slice(0, 15)), kind: 'exec', ppid, argc: argv.length, euid: 1000, egid: 1000, filename: exe, argv,
  cwd: '/tmp', exe, argvTruncated: false, filenameTruncated: false, pathTruncated: false,
});
const fork = (parent: number, child: number, comm: string): ForkEvent => ({ ...hdr(parent, comm), kind: 'fork', childPid: child });
const connect = (pid: number, comm: string, address: string, port: number): ConnectEvent => ({
  ...hdr(pid, comm), kind: 'connect', ret: 0, fd: 3, peerFamily: 2, peerAddress: address, peerPort: port, sockType: 1, protocol: 6,
});
const sensitive = (pid: number, comm: string, path: string): FileEvent => ({
  ...hdr(pid, comm), kind: 'file_read_sensitive', ret: 3, openFlags: 0, mode: 0, path, pathTruncated: false, relativePath: false,
});
const exit = (pid: number, ppid: number, comm: string): ExitEvent => ({
  ...hdr(pid, comm), kind: 'exit', ppid, status: 0, exitCode: 0, signal: null, coreDumped: false,
});

const manifest = parseManifest(JSON.stringify({
  version: 1,
  agents: [{
    name: 'coder',
    match: [{ executable: '/opt/coder/bin/coder' }],
    egress: { cidrs: ['192.0.2.0/24'] },
    allowed_sensitive_reads: ['/srv/coder/token'],
  }],
}), 'agents.json');

const dir = mkdtempSync(join(tmpdir(), 'witness-enricher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup() {
  const registry = new ScopeRegistry({ isAlive: () => true, childrenOf: () => [], now: () => t });
  const store = openStore(join(dir, `w-${Math.random()}.db`));
  const e = new AttributionEnricher({
    clock, manifest, registry, store: new AttributionStore(store.db),
    egress: new EgressPolicy(manifest, async () => [], new Set()),
    homes: ['/root'],
  });
  const out: Envelope[] = [];
  const feed = (ev: SensorEvent): Envelope[] => {
    const envs = e.enrich(ev, toEnvelope(ev, clock));
    out.push(...envs);
    return envs;
  };
  return { e, registry, store, out, feed };
}

describe('AttributionEnricher', () => {
  it('attributes by rule, inherits down the tree, and raises findings outside the declaration', async () => {
    const { e, out, feed, registry, store } = setup();
    const [agentExec] = feed(exec(A, 1, '/opt/coder/bin/coder', ['coder', '--serve']));
    expect(agentExec!.attributes).toMatchObject({
      'witness.agent': 'coder', 'process.executable.path': '/opt/coder/bin/coder', 'witness.executable.hash_status': 'unavailable',
      'witness.executable.sha256': null, 'witness.cgroup.path': '/', 'witness.process.parent_chain': ['1'],
    });
    registry.open({ runId: 'run-7', sessionId: 'sess-7', toolCallId: 'call-7', toolName: 'bash', pid: A });
    expect(feed(fork(A, B, 'coder'))).toEqual([]);
    const [bExec, ...bFindings] = feed(exec(B, A, '/usr/bin/python3', ['python3', 'tool.py']));
    expect(bFindings).toEqual([]);
    expect(bExec!.attributes).toMatchObject({
      'witness.agent': 'coder', 'witness.scope.tool_call_id': 'call-7', 'witness.scope.run_id': 'run-7',
      'witness.scope.session_id': 'sess-7', 'witness.scope.tool_name': 'bash', 'witness.process.parent_chain': [String(A), '1'],
      'witness.identity.source': 'tree',
    });
    feed(fork(B, C, 'python3'));
    const [conn, egress] = feed(connect(C, 'python3', '203.0.113.5', 443));
    expect(conn!.attributes['witness.agent']).toBe('coder');
    expect(egress).toMatchObject({ event: 'finding.undeclared_egress', attributes: {
      'witness.agent': 'coder', 'network.peer.address': '203.0.113.5', 'network.peer.port': 443, 'process.pid': C,
      'witness.scope.tool_call_id': 'call-7', 'witness.finding.source_event': 'network.connect',
    } });
    expect(feed(connect(C, 'python3', '203.0.113.5', 443))).toHaveLength(1); // deduplicated
    expect(feed(connect(C, 'python3', '192.0.2.9', 443))).toHaveLength(1); // declared
    const [, readFinding] = feed(sensitive(C, 'python3', '/root/.ssh/id_ed25519'));
    expect(readFinding).toMatchObject({ event: 'finding.sensitive_read', attributes: { 'file.path': '/root/.ssh/id_ed25519', 'witness.agent': 'coder' } });
    expect(feed(sensitive(C, 'python3', '/srv/coder/token'))).toHaveLength(1);

    const [dExec, unattributed] = feed(exec(D, 1, '/usr/bin/curl', ['curl', 'example.com']));
    expect(dExec!.attributes['witness.agent']).toBe('unattributed');
    expect(dExec!.attributes['witness.scope.tool_call_id']).toBeUndefined();
    expect(unattributed).toMatchObject({ event: 'finding.unattributed_process', attributes: { 'process.pid': D, 'process.command_args': ['curl', 'example.com'] } });
    expect(feed(connect(D, 'curl', '203.0.113.5', 443))).toHaveLength(1); // no egress finding for undeclared processes
    feed(fork(D, E, 'curl'));
    expect(feed(connect(E, 'curl', '203.0.113.6', 80))).toHaveLength(1); // the parent's report covers the fork
    expect(feed(exec(E, D, '/usr/bin/wget', ['wget']))).toHaveLength(2); // a new program is reported

    // a process never seen at fork or exec, and gone from /proc: the kernel record is all we have, and we say so
    const [lone, loneFinding] = feed(connect(F, 'ghost', '10.0.0.1', 22));
    expect(lone!.attributes).toMatchObject({ 'witness.identity.source': 'kernel', 'witness.agent': 'unattributed', 'process.command': 'ghost' });
    expect(loneFinding!.event).toBe('finding.unattributed_process');

    feed(exit(C, B, 'python3'));
    feed(exit(B, A, 'python3'));
    registry.close('call-7');

    for (const env of out) {
      const schema = env.event.startsWith('finding.') ? findingEnvelopeSchema : sensorEnvelopeSchema;
      const r = schema.safeParse(env);
      expect(r.success, `${env.event}: ${r.success ? '' : JSON.stringify(r.error.issues)}`).toBe(true);
    }

    // the store holds the tool call's tree
    await e.close();
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { lines.push(String(s)); return true; });
    try {
      expect(await tree(['--scope', 'call-7', '--db', store.path])).toBe(0);
      expect(await tree(['--scope', 'call-7', '--db', store.path, '--json'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    store.close();
    const text = lines[0]! + lines[1]!;
    expect(text).toMatch(/tool_call=call-7 tool=bash/);
    expect(lines[1]).toMatch(new RegExp(`└─ ${B} python3 tool\\.py  \\[coder, exit 0\\]`));
    expect(lines[1]).toMatch(new RegExp(`   └─ ${C} python3 tool\\.py  \\[coder, exit 0\\]`));
    const json = JSON.parse(lines[2]!) as { processes: { pid: number; children: { pid: number }[] }[] };
    expect(json.processes.map((p) => p.pid)).toEqual([B]);
    expect(json.processes[0]!.children.map((c) => c.pid)).toEqual([C]);
  });

  it('fromManifest records the agents; reload() re-reads the manifest, keeps the old one when the new one is bad', async () => {
    const file = join(dir, 'agents.json');
    writeFileSync(file, JSON.stringify({ version: 1, agents: [{ name: 'coder', match: [{ executable: '/opt/coder/bin/coder' }] }] }));
    const store = openStore(join(dir, 'reload.db'));
    const e = await AttributionEnricher.fromManifest(file, { clock, store: new AttributionStore(store.db), resolver: async () => [] });
    expect(store.db.prepare('SELECT name FROM agents').all()).toEqual([{ name: 'coder' }]);
    const curl = exec(A, 1, '/usr/bin/curl', ['curl']);
    expect(e.enrich(curl, toEnvelope(curl, clock))[0]!.attributes['witness.agent']).toBe('unattributed');
    writeFileSync(file, JSON.stringify({ version: 1, agents: [{ name: 'fetcher', match: [{ executable: '/usr/bin/curl' }] }] }));
    await e.reload();
    const c = connect(A, 'curl', '192.0.2.1', 80);
    const [after, egress] = e.enrich(c, toEnvelope(c, clock));
    expect(after!.attributes['witness.agent']).toBe('fetcher');
    expect(egress!.event).toBe('finding.undeclared_egress');
    expect(store.db.prepare('SELECT name FROM agents').all()).toEqual([{ name: 'fetcher' }]);
    writeFileSync(file, '{"version": 1, "agents": [{"name": 7}]}');
    await expect(e.reload()).rejects.toThrow(/agents\.json: \$\.agents\[0\]\.name/);
    const c2 = connect(A, 'curl', '192.0.2.1', 81);
    expect(e.enrich(c2, toEnvelope(c2, clock))[0]!.attributes['witness.agent']).toBe('fetcher');
    await e.close();
    store.close();
  });

  it('without a manifest: everything unattributed, no findings', () => {
    const e = new AttributionEnricher({ clock });
    const ev = exec(A, 1, '/usr/bin/curl', ['curl']);
    const out = e.enrich(ev, toEnvelope(ev, clock));
    expect(out).toHaveLength(1);
    expect(out[0]!.attributes['witness.agent']).toBe('unattributed');
  });

  it('evicts exited processes after the grace, and a pid that reappears is met afresh', () => {
    const { e, feed } = setup();
    feed(exec(A, 1, '/opt/coder/bin/coder', ['coder']));
    feed(exit(A, 1, 'coder'));
    expect(e.table.get(A)?.exitedAt).not.toBeNull();
    const now = Date.now;
    Date.now = () => now() + 60_000;
    try {
      (e.table as unknown as { now: () => number }).now = Date.now;
      e.table.sweep();
    } finally {
      Date.now = now;
    }
    expect(e.table.get(A)).toBeUndefined();
    const [again] = feed(connect(A, 'other', '10.0.0.1', 22));
    expect(again!.attributes).toMatchObject({ 'witness.agent': 'unattributed', 'witness.identity.source': 'kernel', 'process.command': 'other' });
  });
});
