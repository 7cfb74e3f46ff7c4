import { describe, expect, it } from 'vitest';
import type { CgroupResolver } from '../src/identity/cgroup.js';
import type { ExecutableHasher } from '../src/identity/exe-hash.js';
import { ProcessTable } from '../src/identity/process-table.js';
import type { UserNames } from '../src/identity/users.js';
import type { ForkEvent } from '../src/sensor/types.js';

// No /proc behind the table: every entry is built from its record, so the test sees the bound alone.
let created = 0;
function table(maxEntries: number, agentOf: (pid: number) => string): ProcessTable {
  created = 0;
  return new ProcessTable({
    cgroups: { pathOf: () => null, ownerOf: () => null, idOf: () => null } as unknown as CgroupResolver,
    users: { nameOf: () => null } as unknown as UserNames,
    hasher: { identify: () => ({ path: '', sha256: null, status: 'unavailable' }) } as unknown as ExecutableHasher,
    onIdentity: (info, parent) => { created++; info.agent = parent?.agent && parent.agent !== 'unattributed' ? parent.agent : agentOf(info.pid); },
    maxEntries,
    procRoot: '/nonexistent-proc',
  });
}

function fork(parent: number, child: number): ForkEvent {
  return { kind: 'fork', pid: parent, tid: parent, uid: 0, gid: 0, cgroupId: 0n, comm: 'sh', tsBootNs: BigInt(child), flags: 0, childPid: child };
}

describe('process table bound', () => {
  it('never holds more than maxEntries, and counts every live process it forgets', () => {
    const t = table(100, () => 'unattributed');
    for (let pid = 2; pid < 1002; pid++) t.onFork(fork(1, pid), 0n);
    expect(t.size).toBe(100);
    // every entry made (the children, and pid 1 each time it was evicted and met again) is held or counted
    expect(created).toBeGreaterThanOrEqual(1001);
    expect(t.evicted).toBe(created - t.size);
    expect(t.evictedAttributed).toBe(0);
  });

  it('evicts unattributed and exited entries before an agent, and counts the agent it loses when it must', () => {
    const t = table(50, (pid) => (pid === 10 ? 'claude' : 'unattributed'));
    t.onFork(fork(1, 10), 0n); // the agent's root, the oldest live entries after pid 1
    for (let pid = 11; pid < 60; pid++) t.onFork(fork(1, pid), 0n);
    expect(t.size).toBe(50);
    t.ensure(fork(1, 1)); // the parent present, so the next fork adds one entry only
    const before = t.evicted;
    t.onExit(59);
    t.onFork(fork(1, 60), 0n); // the exited entry goes, not a live one
    expect(t.get(59)).toBeUndefined();
    expect(t.evicted).toBe(before);
    for (let pid = 61; pid < 200; pid++) t.onFork(fork(1, pid), 0n);
    expect(t.get(10)?.agent).toBe('claude');
    expect(t.evictedAttributed).toBe(0);
    // a table full of the agent's own processes: the oldest goes and the loss is counted
    const a = table(20, () => 'claude');
    for (let pid = 2; pid < 40; pid++) a.onFork(fork(1, pid), 0n);
    expect(a.size).toBe(20);
    expect(a.evicted).toBe(created - a.size);
    expect(a.evicted).toBeGreaterThan(0);
    expect(a.evictedAttributed).toBe(a.evicted);
  });
});
