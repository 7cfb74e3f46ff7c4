import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { makeRunCgroup, removeRunCgroup, removeStaleRunCgroups, shimPath } from '../../src/sensor/guardian.js';
import { kernelSuite } from '../helpers/kernel.js';

/**
 * The run cgroups a witness leaves behind when it is killed, or when --leave-running kept
 * survivors in it, are removed by the next run once their witness is gone and they are empty.
 * Real cgroup2 directories under this process's own cgroup (root only).
 */
const { skip } = kernelSuite();

function deadPid(): number {
  const r = spawnSync('/bin/true');
  return r.pid!;
}

describe.skipIf(skip)('stale run cgroups', () => {
  const made: string[] = [];
  afterEach(() => { for (const d of made.splice(0)) if (existsSync(d)) { try { rmdirSync(d); } catch { /* busy */ } } });

  it('removes the empty cgroups of dead witnesses, keeps a live witness\'s, a busy one and a young one', async () => {
    const mine = makeRunCgroup();
    expect(mine).not.toBeNull();
    made.push(mine!);
    const parent = dirname(mine!);
    const mk = (name: string): string => { const d = join(parent, name); mkdirSync(d); made.push(d); return d; };
    const dead = deadPid();
    const stale = mk(`witness-run-${dead}-stale`);
    const live = mk(`witness-run-${process.pid}-live`);
    const busy = mk(`witness-run-${dead}-busy`);
    const other = mk(`not-a-run-${dead}`);
    // a --leave-running survivor still in its run cgroup
    const survivor = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    await new Promise((r) => survivor.once('spawn', r));
    writeFileSync(join(busy, 'cgroup.procs'), String(survivor.pid));
    try {
      // young: a witness in another pid namespace between its mkdir and its agent joining
      // (counts are at least: earlier runs' leftovers under the same parent go too)
      removeStaleRunCgroups(parent);
      expect(existsSync(stale)).toBe(true);

      expect(removeStaleRunCgroups(parent, 0)).toBeGreaterThanOrEqual(1);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(existsSync(busy)).toBe(true);
      expect(existsSync(other)).toBe(true);
      expect(existsSync(mine!)).toBe(true);
      expect(readFileSync(join(busy, 'cgroup.procs'), 'utf8').trim()).toBe(String(survivor.pid));
    } finally {
      survivor.kill('SIGKILL');
      await new Promise((r) => survivor.once('exit', r));
    }
    // once the survivor has exited, the next sweep takes its cgroup too
    expect(removeStaleRunCgroups(parent, 0)).toBeGreaterThanOrEqual(1);
    expect(existsSync(busy)).toBe(false);
    expect(removeRunCgroup(mine)).toBe(true);
  });

  it('the guardian forks the agent inside the run cgroup: it is there while held, before "run"', async () => {
    const cg = makeRunCgroup();
    expect(cg).not.toBeNull();
    made.push(cg!);
    // fd 3 is the guardian's control socket (native/exec_shim.c)
    const g = spawn(shimPath(), ['--uid', '65534', '--gid', '65534', '--groups', '65534', '--cgroup', cg!, '--', '/bin/true'],
      { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
    const ctl = g.stdio[3] as Socket;
    const lines: string[] = [];
    let buf = '';
    const next = (): Promise<string> => new Promise((resolve) => {
      const take = (): boolean => { const l = lines.shift(); if (l === undefined) return false; resolve(l); return true; };
      if (take()) return;
      ctl.on('data', function on() { if (take()) ctl.off('data', on); });
    });
    ctl.on('data', (c: Buffer) => { buf += c.toString(); for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) lines.push(buf.slice(0, i)); });
    ctl.write('go\n');
    const pidLine = await next();
    expect(pidLine).toMatch(/^pid \d+$/);
    const pid = Number(pidLine.slice(4));
    // held: it has not read its release byte yet, and it is already in the run's cgroup (moved at "run" before)
    const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))![1]!;
    expect(/^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))![1]).toBe(join(own, basename(cg!)));
    expect(readFileSync(join(cg!, 'cgroup.procs'), 'utf8').trim().split('\n')).toContain(String(pid));
    ctl.write('run\n');
    expect(await next()).toBe('exit 0 0');
    ctl.write('kill\n');
    await new Promise((r) => (g.exitCode === null ? g.once('exit', r) : r(null)));
    expect(removeRunCgroup(cg)).toBe(true);
  });
});
