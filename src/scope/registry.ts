import { readdirSync, readFileSync } from 'node:fs';
import { WitnessError } from '../errors.js';
import { CgroupResolver } from '../identity/cgroup.js';
import { cgroupUnder } from '../manifest/match.js';

/**
 * ToolCallScopes: a harness says "from now until I close it, whatever pid P
 * (or cgroup C) and its descendants do belongs to run R / session S / tool
 * call T". Telemetry never carries the tool-call id; the registry joins it on.
 *
 * Pid scopes follow the fork tree: a child inherits every scope its parent
 * had at fork time. Each scope has a time window [opened, closed) compared
 * with the *event's* kernel time, so a record delivered after the close but
 * stamped before it still lands in the scope.
 */

export interface ScopeKeys {
  runId: string;
  sessionId: string;
  toolCallId: string;
  toolName: string | null;
}

export interface Scope extends ScopeKeys {
  readonly serial: number;
  readonly pid: number | null;
  /** cgroup path relative to the cgroup2 mount */
  readonly cgroupPath: string | null;
  readonly cgroupId: bigint | null;
  readonly openedNs: bigint;
  closedNs: bigint | null;
  readonly expiresNs: bigint | null;
}

export interface OpenRequest {
  runId: string;
  sessionId: string;
  toolCallId: string;
  toolName?: string | null;
  pid?: number;
  cgroup?: string;
  ttlSeconds?: number;
}

export interface ScopeRegistryOptions {
  /** epoch nanoseconds */
  now?: () => bigint;
  /** resolves cgroup-bound scopes' paths to ids; default: one on the cgroup2 mount, made on first use */
  cgroups?: CgroupResolver;
  /** how long a closed scope still answers for late records */
  graceMs?: number;
  /** kernel and wall clocks may disagree this much at an open */
  skewNs?: bigint;
  childrenOf?: (pid: number) => number[];
  isAlive?: (pid: number) => boolean;
  onChange?: (kind: 'open' | 'close', scope: Scope) => void;
}

export function epochNowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Direct children of pid from /proc/PID/task/TID/children. */
export function procChildren(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim() !== '') out.push(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return out;
}

export function scopeAttributes(s: ScopeKeys): Record<string, string> {
  const attrs: Record<string, string> = {
    'witness.scope.run_id': s.runId,
    'witness.scope.session_id': s.sessionId,
    'witness.scope.tool_call_id': s.toolCallId,
  };
  if (s.toolName !== null) attrs['witness.scope.tool_name'] = s.toolName;
  return attrs;
}

export class ScopeRegistry {
  private readonly scopes = new Map<number, Scope>();
  private readonly byPid = new Map<number, Scope[]>();
  private readonly exited = new Map<number, bigint>();
  private serial = 0;
  private lastSweepNs = 0n;
  private readonly now: () => bigint;
  private readonly graceNs: bigint;
  private readonly skewNs: bigint;
  private readonly opts: ScopeRegistryOptions;
  private cgroups: CgroupResolver | undefined;
  private readonly listeners: ((kind: 'open' | 'close', scope: Scope) => void)[] = [];

  constructor(opts: ScopeRegistryOptions = {}) {
    this.opts = opts;
    this.now = opts.now ?? epochNowNs;
    this.graceNs = BigInt(opts.graceMs ?? 10_000) * 1_000_000n;
    this.skewNs = opts.skewNs ?? 2_000_000n;
    if (opts.onChange) this.listeners.push(opts.onChange);
  }

  /** Also tell `fn` about opens and closes (the store, the scope.open/close emitter). */
  addListener(fn: (kind: 'open' | 'close', scope: Scope) => void): void {
    this.listeners.push(fn);
  }

  private changed(kind: 'open' | 'close', scope: Scope): void {
    for (const fn of this.listeners) fn(kind, scope);
  }

  open(req: OpenRequest): Scope {
    this.sweep();
    if ((req.pid === undefined) === (req.cgroup === undefined)) {
      throw new WitnessError('E_CONFIG', 'bind the scope to exactly one of pid or cgroup', { field: req.pid === undefined ? 'pid' : 'cgroup' });
    }
    for (const s of this.scopes.values()) {
      if (s.closedNs === null && s.runId === req.runId && s.toolCallId === req.toolCallId) {
        throw new WitnessError('E_CONFIG', `tool call '${req.toolCallId}' of run '${req.runId}' is already open; close it first`, { field: 'tool_call_id' });
      }
    }
    let cgroupId: bigint | null = null;
    if (req.pid !== undefined && !(this.opts.isAlive ?? pidAlive)(req.pid)) {
      throw new WitnessError('E_CONFIG', `pid ${req.pid} is not running; open the scope while the process lives`, { field: 'pid' });
    }
    if (req.cgroup !== undefined) {
      this.cgroups ??= this.opts.cgroups ?? new CgroupResolver();
      cgroupId = this.cgroups.idOf(req.cgroup);
      if (cgroupId === null) throw new WitnessError('E_CONFIG', `cgroup '${req.cgroup}' does not exist under the cgroup2 mount`, { field: 'cgroup' });
    }
    const now = this.now();
    const scope: Scope = {
      serial: ++this.serial,
      runId: req.runId, sessionId: req.sessionId, toolCallId: req.toolCallId, toolName: req.toolName ?? null,
      pid: req.pid ?? null, cgroupPath: req.cgroup ?? null, cgroupId,
      openedNs: now, closedNs: null,
      expiresNs: req.ttlSeconds !== undefined ? now + BigInt(Math.round(req.ttlSeconds * 1e9)) : null,
    };
    this.scopes.set(scope.serial, scope);
    if (req.pid !== undefined) this.bindTree(req.pid, scope);
    this.changed('open', scope);
    return scope;
  }

  /** Closes the open scope of `toolCallId` (in `runId` when given; required when two runs share the id). */
  close(toolCallId: string, runId?: string): Scope {
    const open = [...this.scopes.values()].filter((s) => s.closedNs === null && s.toolCallId === toolCallId && (runId === undefined || s.runId === runId));
    if (open.length === 0) throw new WitnessError('E_CONFIG', `no open scope for tool call '${toolCallId}'${runId !== undefined ? ` in run '${runId}'` : ''}`, { field: 'tool_call_id' });
    if (open.length > 1) throw new WitnessError('E_CONFIG', `tool call '${toolCallId}' is open in ${open.length} runs; give run_id`, { field: 'run_id' });
    const scope = open[0]!;
    scope.closedNs = this.now();
    this.changed('close', scope);
    return scope;
  }

  list(includeClosed = false): Scope[] {
    this.sweep();
    return [...this.scopes.values()].filter((s) => includeClosed || s.closedNs === null);
  }

  /**
   * `child` was forked at epoch time `tNs`: it inherits the parent's scopes.
   * Scopes already bound to the child pid survive only if opened after the
   * fork (the harness opened them while the fork record was in flight); older
   * ones belonged to a dead process that had the same pid.
   */
  onFork(parent: number, child: number, tNs: bigint): void {
    const inherited = this.byPid.get(parent) ?? [];
    const own = (this.byPid.get(child) ?? []).filter((s) => s.openedNs + this.skewNs >= tNs && !inherited.includes(s));
    this.exited.delete(child);
    const merged = [...inherited, ...own];
    if (merged.length > 0) this.byPid.set(child, merged);
    else this.byPid.delete(child);
  }

  onExit(pid: number): void {
    if (this.byPid.has(pid)) this.exited.set(pid, this.now());
  }

  /** The innermost scope covering an event of `pid` in cgroup `cgroupId` at epoch time `tNs`. */
  /** Some scope is registered: lookup can return one (without, it returns null at once). */
  get active(): boolean { return this.scopes.size > 0; }

  lookup(pid: number, cgroupId: bigint, cgroupPath: string | null, tNs: bigint): Scope | null {
    if (this.scopes.size === 0) return null;
    let best: Scope | null = null;
    const own = this.byPid.get(pid);
    if (own) for (const s of own) if (this.covers(s, tNs) && (best === null || s.serial > best.serial)) best = s;
    for (const s of this.scopes.values()) {
      if (s.cgroupId === null || !this.covers(s, tNs) || (best !== null && s.serial < best.serial)) continue;
      if (s.cgroupId === cgroupId || (cgroupPath !== null && cgroupUnder(cgroupPath, s.cgroupPath!))) best = s;
    }
    if (this.now() - this.lastSweepNs > 1_000_000_000n) this.sweep();
    return best;
  }

  private covers(s: Scope, tNs: bigint): boolean {
    if (tNs + this.skewNs < s.openedNs) return false;
    const end = s.closedNs ?? s.expiresNs;
    return end === null || tNs < end;
  }

  private bindTree(root: number, scope: Scope): void {
    const children = this.opts.childrenOf ?? procChildren;
    const stack = [root];
    const seen = new Set<number>();
    while (stack.length > 0 && seen.size < 100_000) {
      const pid = stack.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      const list = this.byPid.get(pid) ?? [];
      list.push(scope);
      this.byPid.set(pid, list);
      stack.push(...children(pid));
    }
  }

  /** Expires TTL scopes, forgets scopes closed longer than the grace and pids that exited. */
  sweep(): void {
    const now = this.now();
    this.lastSweepNs = now;
    for (const s of this.scopes.values()) {
      if (s.closedNs === null && s.expiresNs !== null && s.expiresNs <= now) {
        s.closedNs = s.expiresNs;
        this.changed('close', s);
      }
    }
    const dead = new Set<number>();
    for (const s of this.scopes.values()) if (s.closedNs !== null && now - s.closedNs > this.graceNs) dead.add(s.serial);
    for (const serial of dead) this.scopes.delete(serial);
    for (const [pid, at] of this.exited) {
      if (now - at > this.graceNs) {
        this.byPid.delete(pid);
        this.exited.delete(pid);
      }
    }
    if (dead.size > 0) {
      for (const [pid, list] of this.byPid) {
        const kept = list.filter((s) => !dead.has(s.serial));
        if (kept.length === 0) this.byPid.delete(pid);
        else if (kept.length !== list.length) this.byPid.set(pid, kept);
      }
    }
  }
}
