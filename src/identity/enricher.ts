import { readFileSync } from 'node:fs';
import { rfc3339Nanos, type Attributes, type Envelope } from '../events/envelope.js';
import type { EventName } from '../events/names.js';
import { EgressPolicy, type Resolver } from '../manifest/egress.js';
import { loadManifest } from '../manifest/load.js';
import { AgentMatcher } from '../manifest/match.js';
import { UNATTRIBUTED, type Manifest } from '../manifest/schema.js';
import { SensitiveReadPolicy } from '../manifest/sensitive.js';
import type { Enricher } from '../pipeline/types.js';
import { ScopeRegistry, scopeAttributes, type Scope } from '../scope/registry.js';
import type { BootClock } from '../sensor/ndjson.js';
import type { SensorEvent } from '../sensor/types.js';
import { BoundaryFindings } from './boundary-findings.js';
import { CgroupResolver } from './cgroup.js';
import { ExecutableHasher } from './exe-hash.js';
import { ProcessTable, type ProcessInfo } from './process-table.js';
import type { AttributionStore } from './store.js';
import { UserNames } from './users.js';

/**
 * Ties identity, the agent manifest and ToolCallScopes together: every
 * envelope gets its process's identity, `witness.agent` and (inside a scope)
 * `witness.scope.*`; behaviour outside the declaration yields findings,
 * returned right after the event that caused them.
 *
 * Attribution is sticky down the tree: a process forked or exec'd under an
 * agent stays that agent's, whatever it runs; only a process with no
 * attributed ancestor is matched against the rules itself.
 */
export interface AttributionOptions {
  clock: BootClock;
  /** no manifest: everything is `unattributed` and no findings are raised (nothing was declared) */
  manifest?: Manifest | null;
  /** default: a fresh registry (see `registry`) */
  registry?: ScopeRegistry;
  store?: AttributionStore | null;
  cgroups?: CgroupResolver;
  hasher?: ExecutableHasher;
  users?: UserNames;
  resolver?: Resolver;
  egress?: EgressPolicy;
  /** login homes for `~/` in allowed_sensitive_reads (default from /etc/passwd) */
  homes?: string[];
  /** one undeclared_egress finding per (agent, address, port) per this window */
  egressDedupMs?: number;
  /** findings decided after the event (an attribution that waited for a background hash) */
  onLateFinding?: (env: Envelope) => void;
}

export class AttributionEnricher implements Enricher {
  readonly table: ProcessTable;
  readonly hasher: ExecutableHasher;
  readonly cgroups: CgroupResolver;
  /** the scopes this enricher joins on; mount a ScopeSocketServer on it */
  readonly registry: ScopeRegistry;
  private manifestPath: string | null = null;
  private matcher: AgentMatcher | null = null;
  private egress: EgressPolicy | null = null;
  private sensitive: SensitiveReadPolicy | null = null;
  private readonly store: AttributionStore | null;
  private readonly egressSeen = new Map<string, number>();
  private boundary: BoundaryFindings | null = null;
  private readonly egressDedupMs: number;
  private events = 0;

  constructor(private readonly opts: AttributionOptions) {
    this.useManifest(opts.manifest ?? null, opts.egress);
    this.registry = opts.registry ?? new ScopeRegistry();
    this.store = opts.store ?? null;
    if (this.store) {
      const store = this.store;
      this.registry.addListener((_kind, scope) => store.scope(scope));
    }
    this.egressDedupMs = opts.egressDedupMs ?? 60_000;
    this.hasher = opts.hasher ?? new ExecutableHasher();
    this.cgroups = opts.cgroups ?? new CgroupResolver();
    this.table = new ProcessTable({
      cgroups: this.cgroups,
      users: opts.users ?? new UserNames(),
      hasher: this.hasher,
      onIdentity: (info, parent, pending) => this.attribute(info, parent, pending),
    });
  }

  /** The process table's size and evictions (a live process forgotten for the cap), for the heartbeat. */
  heartbeatAttributes(): Record<string, number> {
    return {
      'witness.identity.processes': this.table.size,
      'witness.identity.evicted': this.table.evicted,
      'witness.identity.evicted_attributed': this.table.evictedAttributed,
    };
  }

  /** Resolves the declared hostnames once and keeps them fresh; await before the first event. */
  static async create(opts: AttributionOptions): Promise<AttributionEnricher> {
    const e = new AttributionEnricher(opts);
    if (e.egress) {
      await e.egress.refresh();
      e.egress.start();
    }
    return e;
  }

  /**
   * The daemon's constructor: loads agents.json (E_CONFIG naming file and
   * JSON path when it is wrong), records the declarations in the store, and
   * remembers the path for reload(). No path: unattributed, no findings.
   */
  static async fromManifest(path: string | undefined, opts: Omit<AttributionOptions, 'manifest'>): Promise<AttributionEnricher> {
    const manifest = path !== undefined ? loadManifest(path) : null;
    const e = await AttributionEnricher.create({ ...opts, manifest });
    if (path !== undefined) {
      e.manifestPath = path;
      e.opts.store?.recordAgents(manifest!, readFileSync(path, 'utf8'));
    }
    return e;
  }

  /**
   * SIGHUP: re-reads the manifest. A bad manifest throws and the old one
   * stays. Processes of agents that no longer exist, and unattributed ones,
   * are matched again (parents before children); others keep their agent.
   */
  async reload(): Promise<void> {
    if (this.manifestPath === null) return;
    const manifest = loadManifest(this.manifestPath);
    const egress = new EgressPolicy(manifest, this.opts.resolver);
    await egress.refresh();
    this.egress?.stop();
    this.useManifest(manifest, egress);
    egress.start();
    this.opts.store?.recordAgents(manifest, readFileSync(this.manifestPath, 'utf8'));
    const names = new Set(manifest.agents.map((a) => a.name));
    const entries = [...this.table.values()].sort((a, b) => a.parentChain.length - b.parentChain.length);
    for (const p of entries) {
      if (!names.has(p.agent)) p.agent = '';
      this.attribute(p, this.table.get(p.ppid));
    }
  }

  private useManifest(manifest: Manifest | null, egress?: EgressPolicy): void {
    this.matcher = manifest ? new AgentMatcher(manifest) : null;
    this.egress = manifest ? egress ?? new EgressPolicy(manifest, this.opts.resolver) : null;
    this.sensitive = manifest ? new SensitiveReadPolicy(manifest, this.opts.homes) : null;
    this.boundary = manifest ? new BoundaryFindings(manifest, this.opts.homes) : null;
  }

  /** Epoch ns only where a table or scope needs it: a BigInt sum is a heap allocation (the storm's file.write needs none). */
  private epochNs(ev: SensorEvent): bigint { return ev.tsBootNs + this.opts.clock.bootToEpochNs; }

  enrich(ev: SensorEvent, env: Envelope | null): Envelope[] {
    if ((++this.events & 255) === 0) this.table.sweep();
    if (ev.kind === 'fork') {
      const tNs = this.epochNs(ev);
      const child = this.table.onFork(ev, tNs);
      this.registry.onFork(ev.pid, ev.childPid, tNs);
      this.store?.process(child);
      return env ? [env] : [];
    }
    const info = ev.kind === 'exec' ? this.table.onExec(ev, this.epochNs(ev)) : this.table.ensure(ev);
    if (ev.kind === 'exec') this.store?.process(info);
    const scope = this.registry.active ? this.registry.lookup(ev.pid, ev.cgroupId, info.cgroupPath, this.epochNs(ev)) : null;
    if (scope && info.scopeSerial !== scope.serial) {
      info.scopeSerial = scope.serial;
      if (ev.kind !== 'exec') this.store?.process(info); // a process met mid-life has no row yet
      this.store?.processInScope(info, scope);
    }
    if (ev.kind === 'exit') {
      this.table.onExit(ev.pid);
      this.registry.onExit(ev.pid);
      this.store?.exit(info, this.epochNs(ev), ev.exitCode, ev.signal);
    }
    if (!env) return [];
    annotate(env.attributes, info, scope, ev.kind === 'exec');
    const out = [env];
    if (this.matcher) this.findings(ev, env, info, scope, out);
    return out;
  }

  async close(): Promise<void> {
    this.egress?.stop();
    await this.hasher.drain();
    this.store?.flush();
  }

  private attribute(info: ProcessInfo, parent: ProcessInfo | undefined, pending?: Promise<string | null>): void {
    info.agentPending = false;
    // The witness itself is the parent of every command it spawns traced; if
    // a rule matched it (a node agent matches node), stickiness would hand
    // that agent everything the witness runs. Its forked child is still the
    // witness until it execs.
    if (!this.matcher || info.witnessSelf) {
      info.agent = UNATTRIBUTED;
      return;
    }
    if (info.agent !== '' && info.agent !== UNATTRIBUTED) return; // inherited at fork
    if (parent && parent.agent !== '' && parent.agent !== UNATTRIBUTED) {
      info.agent = parent.agent;
      return;
    }
    info.agent = this.matcher.match(subject(info)) ?? UNATTRIBUTED;
    if (info.agent === UNATTRIBUTED && pending && this.matcher.couldMatchWithHash(subject(info))) {
      info.agentPending = true;
      void pending.then((sha) => this.lateHash(info, sha));
    }
  }

  /** A background hash finished: attribute the process (and whatever it forked meanwhile) now. */
  private lateHash(info: ProcessInfo, sha: string | null): void {
    if (this.table.get(info.pid) !== info) return;
    info.sha256 = sha;
    info.hashStatus = sha === null ? 'unavailable' : 'ok';
    info.agentPending = false;
    const agent = this.matcher!.match(subject(info));
    if (agent === null) {
      const late = this.unattributedFinding(info, rfc3339Nanos(BigInt(Date.now()) * 1_000_000n), 'process.exec', null);
      if (late) this.opts.onLateFinding?.(late);
      return;
    }
    const me = String(info.pid);
    info.agent = agent;
    this.store?.process(info);
    for (const p of this.table.values()) {
      if (p.agent === UNATTRIBUTED && p.parentChain.includes(me)) {
        p.agent = agent;
        p.agentPending = false;
      }
    }
  }

  private findings(ev: SensorEvent, env: Envelope, info: ProcessInfo, scope: Scope | null, out: Envelope[]): void {
    if (info.agent === UNATTRIBUTED) {
      const f = this.unattributedFinding(info, env.time, env.event, scope);
      if (f) out.push(f);
    }
    if (ev.kind === 'connect' && info.agent !== UNATTRIBUTED && ev.peerAddress !== null) {
      if (!this.egress!.allows(info.agent, ev.peerAddress, ev.peerPort) && this.firstEgress(info.agent, ev.peerAddress, ev.peerPort)) {
        out.push(finding('finding.undeclared_egress', env, info, scope, {
          'network.peer.address': ev.peerAddress,
          'network.peer.port': ev.peerPort,
          'network.transport': env.attributes['network.transport'] ?? null,
          'witness.result': ev.ret,
          'witness.finding.reason': `agent '${info.agent}' declares no egress to ${ev.peerAddress} (not in its cidrs, resolved hostnames or loopback setting)`,
        }));
      }
    }
    if (ev.kind === 'dns' && info.agent !== UNATTRIBUTED) {
      for (const q of ev.dns.ok ? ev.dns.questions : []) void this.egress!.noteQuery(info.agent, q.name);
    }
    const b = this.boundary?.check(ev, info.agent);
    if (b) out.push(finding(b.name, env, info, scope, b.attrs));
    if (ev.kind === 'file_read_sensitive' && !this.sensitive!.allows(info.agent, ev.path)) {
      out.push(finding('finding.sensitive_read', env, info, scope, {
        'file.path': ev.path,
        'witness.result': ev.ret,
        'witness.finding.reason': info.agent === UNATTRIBUTED
          ? 'a process no agent claims read a sensitive path'
          : `agent '${info.agent}' is not declared to read this sensitive path (allowed_sensitive_reads)`,
      }));
    }
  }

  /** Once per program: an exec resets it, a fork inherits the parent's report. */
  private unattributedFinding(info: ProcessInfo, time: string, source: EventName, scope: Scope | null): Envelope | null {
    if (info.reportedUnattributed || info.agentPending) return null;
    info.reportedUnattributed = true;
    const env: Envelope = { time, event: source, attributes: {} };
    return finding('finding.unattributed_process', env, info, scope, {
      'process.command_args': info.argv ?? [],
      'witness.finding.reason': 'no agent in the manifest matches this process or any of its ancestors',
    });
  }

  private firstEgress(agent: string, address: string, port: number): boolean {
    const key = `${agent}|${address}|${port}`;
    const now = Date.now();
    const last = this.egressSeen.get(key);
    if (last !== undefined && now - last < this.egressDedupMs) return false;
    if (this.egressSeen.size > 10_000) this.egressSeen.clear();
    this.egressSeen.set(key, now);
    return true;
  }
}

function subject(info: ProcessInfo): { exe: string; sha256: string | null; uid: number; cgroupPath: string | null; unit: string | null } {
  return { exe: info.exe, sha256: info.sha256, uid: info.uid, cgroupPath: info.cgroupPath, unit: info.cg.systemdUnit };
}

function identityAttrs(a: Attributes, info: ProcessInfo): void {
  if (info.exe !== '') a['process.executable.path'] = info.exe;
  if (info.user !== null) a['process.user.name'] = info.user;
  a['witness.process.parent_chain'] = info.parentChain;
  if (info.cgroupPath !== null) a['witness.cgroup.path'] = info.cgroupPath;
  if (info.cg.containerId !== null) {
    a['container.id'] = info.cg.containerId;
    a['container.runtime'] = info.cg.containerRuntime;
  }
  if (info.cg.podUid !== null) a['k8s.pod.uid'] = info.cg.podUid;
  if (info.cg.systemdUnit !== null) a['witness.systemd.unit'] = info.cg.systemdUnit;
  if (info.cg.userUnit !== null) {
    a['witness.systemd.user_unit'] = info.cg.userUnit;
    a['witness.systemd.user_unit.uid'] = info.cg.userUnitUid;
  }
  a['witness.identity.source'] = info.source;
}

function annotate(a: Attributes, info: ProcessInfo, scope: Scope | null, isExec: boolean): void {
  identityAttrs(a, info);
  if (isExec) {
    a['witness.executable.sha256'] = info.sha256;
    a['witness.executable.hash_status'] = info.hashStatus ?? 'unavailable';
  }
  a['witness.process.key'] = info.key;
  a['witness.agent'] = info.agent;
  if (info.agentPending) a['witness.agent.pending'] = true;
  if (scope) Object.assign(a, scopeAttributes(scope));
}

function finding(name: EventName, cause: Envelope, info: ProcessInfo, scope: Scope | null, extra: Attributes): Envelope {
  const a: Attributes = {
    'process.pid': info.pid,
    'process.parent_pid': info.ppid,
    'process.command': info.comm,
    'process.user.id': info.uid,
  };
  identityAttrs(a, info);
  a['witness.agent'] = info.agent;
  a['witness.finding.source_event'] = cause.event;
  if (scope) Object.assign(a, scopeAttributes(scope));
  Object.assign(a, extra);
  // A finding repeats fields of its cause: those the cause read from the caller's memory (which the
  // agent could rewrite after the kernel used it) stay flagged on the finding too.
  const um = cause.attributes['witness.user_memory'];
  if (Array.isArray(um)) {
    const mine = (um as string[]).filter((k) => k in a);
    if (mine.length > 0) a['witness.user_memory'] = mine;
  }
  return { time: cause.time, event: name, attributes: a };
}
