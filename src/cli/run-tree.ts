import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

// The live tree, from /proc only: the thin `witness run` (run-entry.ts) needs it without the event schemas.

/** A process of the traced tree still alive after the root exited. */
export interface Survivor {
  pid: number;
  ppid: number;
  /** from the kernel (task comm), but the agent chooses it (prctl PR_SET_NAME) */
  comm: string;
  /** the /proc/PID/exe link: the kernel's file; null when it cannot be read */
  exe: string | null;
}

function statOf(pid: string): { ppid: number; comm: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')'); // comm may hold spaces and ')'
    const fields = s.slice(close + 2).split(' ');
    if (fields[0] === 'Z') return null; // already dead, waiting to be reaped
    return { ppid: Number(fields[1]), comm: s.slice(s.indexOf('(') + 1, close) };
  } catch {
    return null;
  }
}

/**
 * Every live descendant of `guardianPid`. The guardian is the tree's child
 * subreaper, so orphans (double forks, nohup, setsid) reparent to it and the
 * parent chain always ends there.
 */
export function treeSurvivors(guardianPid: number): Survivor[] {
  const procs = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = statOf(name);
    if (st) procs.set(Number(name), st);
  }
  const inTree = (pid: number): boolean => {
    for (let p = procs.get(pid)?.ppid, hops = 0; p !== undefined && hops < 4096; p = procs.get(p)?.ppid, hops++) {
      if (p === guardianPid) return true;
    }
    return false;
  };
  const out: Survivor[] = [];
  for (const [pid, st] of procs) {
    if (!inTree(pid)) continue;
    let exe: string | null = null;
    try { exe = readlinkSync(`/proc/${pid}/exe`); } catch { /* exited meanwhile, or a kernel thread */ }
    out.push({ pid, ppid: st.ppid, comm: st.comm, exe });
  }
  return out.sort((a, b) => a.pid - b.pid);
}
