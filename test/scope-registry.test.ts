import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ScopeRegistry, procChildren, pidAlive, scopeAttributes } from '../src/scope/registry.js';
import { scopeEnvelope } from '../src/scope/events.js';
import { scopeEnvelopeSchema } from '../src/events/schemas.js';

const MS = 1_000_000n;

function registry(over: Partial<ConstructorParameters<typeof ScopeRegistry>[0]> = {}) {
  let now = 1_000_000n * MS;
  const changes: string[] = [];
  const r = new ScopeRegistry({
    now: () => now, isAlive: (p) => p < 1000, childrenOf: () => [], graceMs: 1000,
    onChange: (k, s) => changes.push(`${k}:${s.toolCallId}`), ...over,
  });
  return { r, changes, at: (t: bigint) => { now = t; }, now: () => now };
}

const keys = { runId: 'run-1', sessionId: 'sess-1', toolCallId: 'call-1', toolName: 'bash' };

describe('ScopeRegistry', () => {
  it('binds a pid; descendants inherit through forks; the window is the event time', () => {
    const { r, at, now, changes } = registry();
    const t0 = now();
    const s = r.open({ ...keys, pid: 10 });
    r.onFork(10, 11, now());
    r.onFork(11, 12, now());
    r.onFork(99, 13, now());
    expect(r.lookup(12, 5n, null, t0 + 1n)?.toolCallId).toBe('call-1');
    expect(r.lookup(13, 5n, null, t0 + 1n)).toBeNull();
    expect(r.lookup(12, 5n, null, t0 - 10n * MS)).toBeNull(); // before the open
    at(t0 + 50n * MS);
    r.close('call-1');
    expect(s.closedNs).toBe(t0 + 50n * MS);
    // a record stamped before the close but delivered after it still belongs
    expect(r.lookup(12, 5n, null, t0 + 49n * MS)?.toolCallId).toBe('call-1');
    expect(r.lookup(12, 5n, null, t0 + 51n * MS)).toBeNull();
    // a fork after the close inherits nothing live
    expect(changes).toEqual(['open:call-1', 'close:call-1']);
  });

  it('a nested scope on a scoped process wins while open, then the outer one answers again', () => {
    const { r, at, now } = registry();
    const t0 = now();
    r.open({ ...keys, pid: 10 });
    r.onFork(10, 20, now());
    at(t0 + 10n * MS);
    r.open({ ...keys, toolCallId: 'inner', pid: 20 });
    r.onFork(20, 21, now());
    expect(r.lookup(21, 1n, null, t0 + 11n * MS)?.toolCallId).toBe('inner');
    at(t0 + 20n * MS);
    r.close('inner');
    expect(r.lookup(21, 1n, null, t0 + 21n * MS)?.toolCallId).toBe('call-1');
  });

  it('cgroup scopes cover the cgroup and everything below it', () => {
    const cgroups = { idOf: (p: string) => (p === '/agents/a' ? 77n : null) } as never;
    const { r, now } = registry({ cgroups });
    r.open({ ...keys, cgroup: '/agents/a' });
    const t = now() + 1n;
    expect(r.lookup(500, 77n, null, t)?.toolCallId).toBe('call-1');
    expect(r.lookup(500, 78n, '/agents/a/sub', t)?.toolCallId).toBe('call-1');
    expect(r.lookup(500, 79n, '/agents/ab', t)).toBeNull();
    expect(() => r.open({ ...keys, toolCallId: 'x', cgroup: '/nope' })).toThrow(/cgroup '\/nope' does not exist/);
  });

  it('refuses dead pids, duplicate open scopes, unknown closes and ambiguous ones', () => {
    const { r } = registry();
    expect(() => r.open({ ...keys, pid: 5000 })).toThrow(/pid 5000 is not running/);
    r.open({ ...keys, pid: 1 });
    expect(() => r.open({ ...keys, pid: 2 })).toThrow(/already open/);
    expect(() => r.close('nope')).toThrow(/no open scope for tool call 'nope'/);
    r.open({ ...keys, runId: 'run-2', pid: 2 });
    expect(() => r.close('call-1')).toThrow(/open in 2 runs; give run_id/);
    expect(r.close('call-1', 'run-2').runId).toBe('run-2');
    expect(() => r.open({ ...keys, toolCallId: 'both' })).toThrow(/exactly one of pid or cgroup/);
  });

  it('a TTL closes the scope by itself; closed scopes and exited pids are forgotten after the grace', () => {
    const { r, at, now, changes } = registry();
    const t0 = now();
    r.open({ ...keys, pid: 10, ttlSeconds: 1 });
    at(t0 + 2000n * MS);
    expect(r.list()).toEqual([]);
    expect(changes).toEqual(['open:call-1', 'close:call-1']);
    expect(r.lookup(10, 1n, null, t0 + 500n * MS)?.toolCallId).toBe('call-1');
    at(t0 + 4000n * MS);
    r.sweep();
    expect(r.list(true)).toEqual([]);
    expect(r.lookup(10, 1n, null, t0 + 500n * MS)).toBeNull();
  });

  it('a reused pid does not inherit a dead process\'s scopes', () => {
    const { r, now, at } = registry();
    r.open({ ...keys, pid: 10 });
    r.onFork(10, 11, now());
    r.onExit(11);
    at(now() + 100n * MS);
    r.onFork(400, 11, now()); // pid 11 reused by an unrelated parent
    expect(r.lookup(11, 1n, null, now() + 1n)).toBeNull();
  });

  it('a scope opened on a pid whose fork record is still in flight survives that record', () => {
    const { r, now, at } = registry();
    const forkedAt = now();
    at(forkedAt + 3n * MS);
    r.open({ ...keys, pid: 50 }); // the harness spawned pid 50 and opened at once
    r.onFork(7, 50, forkedAt); // ...then the sensor delivers the fork, from an unscoped parent
    r.onFork(50, 51, now() + 1n);
    expect(r.lookup(51, 1n, null, now() + 2n)?.toolCallId).toBe('call-1');
  });

  it('binds the existing descendants of the pid at open (from /proc)', async () => {
    const sh = spawn('/bin/sh', ['-c', 'sleep 5 & wait'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    try {
      const kids = procChildren(sh.pid!);
      expect(kids.length).toBe(1);
      const r = new ScopeRegistry();
      r.open({ ...keys, pid: sh.pid! });
      expect(r.lookup(kids[0]!, 1n, null, BigInt(Date.now()) * MS + MS)?.toolCallId).toBe('call-1');
      expect(pidAlive(sh.pid!)).toBe(true);
      expect(pidAlive(0x3ffffff0)).toBe(false);
    } finally {
      sh.kill('SIGKILL');
      for (const k of procChildren(sh.pid!)) process.kill(k, 'SIGKILL');
    }
  });

  it('scope attributes and scope.open/close envelopes follow the contract', () => {
    const { r, at, now } = registry();
    const s = r.open({ ...keys, pid: 10 });
    expect(scopeAttributes(s)).toEqual({
      'witness.scope.run_id': 'run-1', 'witness.scope.session_id': 'sess-1', 'witness.scope.tool_call_id': 'call-1', 'witness.scope.tool_name': 'bash',
    });
    expect(scopeEnvelopeSchema.safeParse(scopeEnvelope('open', s)).success).toBe(true);
    at(now() + 5n * MS);
    r.close('call-1');
    const closed = scopeEnvelope('close', s);
    expect(scopeEnvelopeSchema.parse(closed).event).toBe('scope.close');
    expect(closed.attributes['witness.scope.closed']).toBeDefined();
  });
});
