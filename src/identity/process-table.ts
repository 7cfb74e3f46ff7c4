import { readFileSync, readlinkSync } from 'node:fs';
import type { EventHeader, ExecEvent, ForkEvent } from '../sensor/types.js';
import { parseCgroupPath, v2PathFromProcCgroup, type CgroupIdentity, type CgroupResolver } from './cgroup.js';
import type { ExecutableHasher, HashStatus } from './exe-hash.js';
import { UNATTRIBUTED } from '../manifest/schema.js';
import { log } from '../log.js';
import type { UserNames } from './users.js';

/**
 * What we know about each live process, built from fork and exec records and,
 * for a process first met mid-life (started before the sensor, or a missed
 * record), from /proc. A process gone before /proc could be read keeps what
 * its kernel record carried and says so (`source: 'kernel'`).
 */

export type IdentitySource = 'tree' | 'proc' | 'kernel';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  uid: number;
  user: string | null;
  exe: string;
  sha256: string | null;
  hashStatus: HashStatus | null;
  argv: string[] | null;
  cwd: string | null;
  cgroupId: bigint;
  cgroupPath: string | null;
  cg: CgroupIdentity;
  /** ancestor pids, nearest first, as decimal strings (at most MAX_CHAIN) */
  parentChain: string[];
  source: IdentitySource;
  /** epoch ns of the fork or exec that created this incarnation (null when met mid-life) */
  startNs: bigint | null;
  /**
   * `witness.process.key` (docs/ndjson.md): `<pid>-<boot ns>` of the record
   * that began this incarnation (fork, exec) or, for a process met mid-life,
   * its kernel start time from /proc (the first record's time when /proc is
   * gone). A new program (exec) is a new key: its context differs.
   */
  key: string;
  /** attribution state, owned by the enricher */
  agent: string;
  agentPending: boolean;
  reportedUnattributed: boolean;
  scopeSerial: number;
  /** the witness process itself, or a child it forked that has not exec'd yet */
  witnessSelf: boolean;
  exitedAt: number | null;
}

export const MAX_CHAIN = 16;

/** The stable process key: pid and the incarnation's start on the boot clock. */
export function processKey(pid: number, startBootNs: bigint): string {
  return `${pid}-${startBootNs}`;
}
const NO_CGROUP: CgroupIdentity = { containerId: null, containerRuntime: null, podUid: null, systemdUnit: null, userUnit: null, userUnitUid: null };

export interface ProcessTableOptions {
  cgroups: CgroupResolver;
  users: UserNames;
  hasher: ExecutableHasher;
  /** a new process or a new program: decide its agent (parent is known when there is one) */
  onIdentity: (info: ProcessInfo, parent: ProcessInfo | undefined, pendingHash?: Promise<string | null>) => void;
  /** exited processes stay this long for records still in flight */
  graceMs?: number;
  /** live entries at most (default 65 536); past it the oldest unattributed entry goes first, counted */
  maxEntries?: number;
  now?: () => number;
  procRoot?: string;
}

/** Carries an agent (not yet decided, '', and 'unattributed' lose nothing when forgotten). */
function attributed(p: ProcessInfo): boolean {
  return p.agent !== '' && p.agent !== UNATTRIBUTED;
}

/** Entries looked at, oldest first, for an unattributed one to evict before an attributed one goes. */
const EVICT_SCAN = 64;

export class ProcessTable {
  private readonly procs = new Map<number, ProcessInfo>();
  /**
   * Entries dropped by the cap (not by exit): a process we never saw exit on a
   * host with more live processes than the cap. Its next record rebuilds it
   * from /proc, so what is lost is the tree it was built from: an evicted
   * process that carried an agent (`evictedAttributed`) can lose that agent
   * for its later children. Both are heartbeat counters.
   */
  evicted = 0;
  evictedAttributed = 0;
  private readonly exited: number[] = [];
  private readonly graceMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly proc: string;
  /** who owns each cgroup directory: units and containers only from root-owned ones */
  private readonly ownerOf = (path: string): number | null => this.opts.cgroups.ownerOf(path);

  constructor(private readonly opts: ProcessTableOptions) {
    this.graceMs = opts.graceMs ?? 5000;
    this.maxEntries = opts.maxEntries ?? 65536;
    this.now = opts.now ?? Date.now;
    this.proc = opts.procRoot ?? '/proc';
  }

  get size(): number { return this.procs.size; }
  get(pid: number): ProcessInfo | undefined { return this.procs.get(pid); }
  values(): IterableIterator<ProcessInfo> { return this.procs.values(); }

  /** The process an event belongs to, created from /proc (or the record) on first sight; facts that change mid-life are refreshed. */
  ensure(ev: EventHeader): ProcessInfo {
    let info = this.procs.get(ev.pid);
    if (info === undefined) return this.load(ev.pid, ev, 0)!;
    if (info.uid !== ev.uid) {
      info.uid = ev.uid;
      info.user = this.opts.users.nameOf(ev.uid);
    }
    if (info.comm !== ev.comm) info.comm = ev.comm;
    if (info.cgroupId !== ev.cgroupId) this.setCgroup(info, ev.cgroupId);
    return info;
  }

  /**
   * Loads a process from /proc now, while it is known to be alive and not yet
   * past its first instruction (a traced root the guardian holds): its
   * records may be enriched only after it has exec'd or exited, when /proc no
   * longer shows what it ran before.
   */
  prime(pid: number): void {
    if (!this.procs.has(pid)) this.load(pid, undefined, 0);
  }

  onFork(ev: ForkEvent, tNs: bigint): ProcessInfo {
    const parent = this.ensure(ev);
    const child: ProcessInfo = {
      ...parent,
      pid: ev.childPid,
      ppid: ev.pid,
      parentChain: [String(ev.pid), ...parent.parentChain].slice(0, MAX_CHAIN),
      source: 'tree',
      startNs: tNs,
      key: processKey(ev.childPid, ev.tsBootNs),
      scopeSerial: 0, // the child's own row must be linked to its scopes too
      exitedAt: null,
    };
    this.put(child);
    this.opts.onIdentity(child, parent);
    return child;
  }

  onExec(ev: ExecEvent, tNs: bigint): ProcessInfo {
    const known = this.procs.get(ev.pid);
    const info = known && known.exitedAt === null ? this.ensure(ev) : this.load(ev.pid, ev, 0)!;
    const parent = this.procs.get(ev.ppid) ?? (ev.ppid > 0 ? this.load(ev.ppid, undefined, 1) : undefined);
    if (info.ppid !== ev.ppid) {
      info.ppid = ev.ppid;
      info.parentChain = parent ? [String(ev.ppid), ...parent.parentChain].slice(0, MAX_CHAIN) : [String(ev.ppid)];
    }
    const id = this.opts.hasher.identify(ev.pid, ev.exe, ev.filename, ev.cwd);
    info.exe = id.path !== '' ? id.path : ev.exe !== '' ? ev.exe : ev.filename;
    info.sha256 = id.sha256;
    info.hashStatus = id.status;
    info.argv = ev.argv;
    info.cwd = ev.cwd;
    info.startNs ??= tNs;
    info.key = processKey(ev.pid, ev.tsBootNs);
    info.reportedUnattributed = false;
    info.witnessSelf = false;
    this.opts.onIdentity(info, parent, id.pending);
    return info;
  }

  onExit(pid: number): void {
    const info = this.procs.get(pid);
    if (!info || info.exitedAt !== null) return;
    info.exitedAt = this.now();
    this.exited.push(pid);
  }

  /** Drops processes that exited more than the grace ago; keeps the table bounded. */
  sweep(): void {
    const cutoff = this.now() - this.graceMs;
    while (this.exited.length > 0) {
      const pid = this.exited[0]!;
      const info = this.procs.get(pid);
      if (info && info.exitedAt !== null && info.exitedAt > cutoff) break;
      this.exited.shift();
      if (info && info.exitedAt !== null) this.procs.delete(pid);
    }
  }

  private put(info: ProcessInfo): void {
    this.procs.delete(info.pid); // re-insert: Map order is age order for eviction
    this.procs.set(info.pid, info);
    if (this.procs.size > this.maxEntries) this.evictOne(info.pid);
  }

  /**
   * Makes room for one entry: the oldest that exited, else the oldest with no
   * agent among the first EVICT_SCAN, else the oldest of all (an attribution
   * lost, counted apart). Never `keep`, the entry just put.
   */
  private evictOne(keep: number): void {
    let oldest: ProcessInfo | undefined;
    let unattributed: ProcessInfo | undefined;
    let victim: ProcessInfo | undefined;
    let n = 0;
    for (const p of this.procs.values()) {
      if (p.pid === keep) continue;
      if (p.exitedAt !== null) { victim = p; break; }
      oldest ??= p;
      if (!attributed(p)) unattributed ??= p;
      if (++n >= EVICT_SCAN) break;
    }
    victim ??= unattributed ?? oldest;
    if (victim === undefined) return;
    this.procs.delete(victim.pid);
    if (victim.exitedAt !== null) return; // it would have gone at the next sweep anyway
    this.evicted++;
    if (!attributed(victim)) return;
    if (this.evictedAttributed++ === 0) {
      log.warn({ pid: victim.pid, agent: victim.agent, maxEntries: this.maxEntries },
        'process table full: evicted a live attributed process (its later children may lose the agent; counted in witness.identity.evicted_attributed)');
    }
  }

  private setCgroup(info: ProcessInfo, id: bigint): void {
    info.cgroupId = id;
    info.cgroupPath = this.opts.cgroups.pathOf(id, info.pid);
    info.cg = info.cgroupPath !== null ? parseCgroupPath(info.cgroupPath, this.ownerOf) : NO_CGROUP;
  }

  /**
   * Builds an entry from /proc/PID; ancestors are loaded first (so a
   * child's attribution can inherit). `ev` is the record that named the
   * process, the fallback when /proc no longer has it.
   */
  private load(pid: number, ev: EventHeader | undefined, depth: number): ProcessInfo | undefined {
    const fromProc = this.readProc(pid);
    if (!fromProc && !ev) return undefined;
    const ppid = fromProc?.ppid ?? (ev && 'ppid' in ev && typeof ev.ppid === 'number' ? ev.ppid : 0);
    let parent = ppid > 0 ? this.procs.get(ppid) : undefined;
    if (!parent && ppid > 1 && depth < MAX_CHAIN) parent = this.load(ppid, undefined, depth + 1);
    const uid = ev?.uid ?? fromProc!.uid;
    const info: ProcessInfo = {
      pid, ppid,
      comm: ev?.comm ?? fromProc!.comm,
      uid, user: this.opts.users.nameOf(uid),
      exe: fromProc?.exe ?? (ev && 'exe' in ev && typeof ev.exe === 'string' ? ev.exe : ''),
      sha256: null, hashStatus: null, argv: null, cwd: null,
      cgroupId: ev?.cgroupId ?? fromProc!.cgroupId ?? 0n, cgroupPath: null, cg: NO_CGROUP,
      parentChain: ppid > 0 ? [String(ppid), ...(parent?.parentChain ?? [])].slice(0, MAX_CHAIN) : [],
      source: fromProc ? 'proc' : 'kernel',
      startNs: null,
      key: processKey(pid, fromProc?.startBootNs ?? ev?.tsBootNs ?? 0n),
      // The witness itself forks every command it spawns traced; that child is
      // us until it execs: never attributed, never reported.
      agent: '', agentPending: false, reportedUnattributed: pid === process.pid, scopeSerial: 0,
      witnessSelf: pid === process.pid, exitedAt: null,
    };
    if (fromProc?.cgroupPath != null && (ev === undefined || fromProc.cgroupId === ev.cgroupId)) {
      info.cgroupPath = fromProc.cgroupPath;
      info.cg = parseCgroupPath(fromProc.cgroupPath, this.ownerOf);
    } else if (info.cgroupId !== 0n) {
      this.setCgroup(info, info.cgroupId);
    }
    let pending: Promise<string | null> | undefined;
    if (fromProc && info.exe !== '') {
      const id = this.opts.hasher.identify(pid, info.exe);
      info.sha256 = id.sha256;
      info.hashStatus = id.status;
      pending = id.pending;
    }
    this.put(info);
    this.opts.onIdentity(info, parent, pending);
    return info;
  }

  private readProc(pid: number): { ppid: number; comm: string; uid: number; exe: string; cgroupPath: string | null; cgroupId: bigint | null; startBootNs: bigint } | null {
    try {
      const stat = readFileSync(`${this.proc}/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') return null; // a zombie has lost exe and cgroup already
      const ppid = Number(fields[1]);
      // field 22 (starttime): clock ticks since boot, USER_HZ = 100 on Linux
      const startBootNs = BigInt(fields[19] ?? '0') * 10_000_000n;
      const uidLine = /^Uid:\s+(\d+)/m.exec(readFileSync(`${this.proc}/${pid}/status`, 'utf8'));
      let exe = '';
      try { exe = readlinkSync(`${this.proc}/${pid}/exe`); } catch { /* kernel thread */ }
      let cgroupPath: string | null = null;
      try { cgroupPath = v2PathFromProcCgroup(readFileSync(`${this.proc}/${pid}/cgroup`, 'utf8')); } catch { /* gone */ }
      const cgroupId = cgroupPath !== null ? this.opts.cgroups.idOf(cgroupPath) : null;
      return { ppid, comm, uid: uidLine ? Number(uidLine[1]) : 0, exe, cgroupPath, cgroupId, startBootNs };
    } catch {
      return null;
    }
  }
}
