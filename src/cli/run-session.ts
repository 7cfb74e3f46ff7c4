import { WitnessError } from '../errors.js';
import type { Envelope } from '../events/envelope.js';
import { AttributionEnricher } from '../identity/enricher.js';
import { SessionWriter } from '../ledger/index.js';
import type { PreparedSession } from '../ledger/session-prepare.js';
import { loadManifest } from '../manifest/load.js';
import { manifestSensitivePaths } from '../manifest/sensitive.js';
import { runPath, type OutputSink } from '../pipeline/run-path.js';
import { scopeEnvelope } from '../scope/events.js';
import { heartbeat } from '../sensor/heartbeat.js';
import { ProviderTable } from '../sensor/llm.js';
import { enrichThrough, NetDepth } from '../sensor/netdepth.js';
import type { BootClock } from '../sensor/ndjson.js';
import type { DropperRow } from '../sensor/native.js';
import type { SensorStats } from '../sensor/sensor.js';
import type { TlsMetadata } from '../sensor/tls-run.js';
import type { SensorEvent } from '../sensor/types.js';
import type { WitnessPusher } from '../cosigner/push.js';
import { startWindowCheckpoints } from './run-windows.js';
import type { RunSettings } from './run-flags.js';
import { outlivedEnvelope } from './run-linger.js';
import type { Survivor } from './run-tree.js';
import { cachedHasher } from './run-hash-cache.js';

export { within } from './run-util.js';

/**
 * What `witness run` records, whoever observes the tree: its own sensor
 * (run.ts) or a resident daemon's (src/daemon/resident-run.ts, which runs
 * this very code in the daemon). Decoded sensor events in; attribution,
 * network depth, scopes, compaction, NDJSON output and the session ledger
 * out; the summary for stderr at the end. Same code both ways, so both
 * record the same events, session and exit code.
 */

/** What a session needs beyond the flags: JSON, so a `witness run` can hand it to the daemon. */
export interface SessionPlan {
  settings: RunSettings;
  /** NDJSON lines (true) or human lines for a terminal */
  json: boolean;
  /** the state dir as the witness resolved it (its environment, not the daemon's) */
  stateDir: string;
  /** who the agent runs as (`witness.agent.*`): sensor.start and session.json */
  agentAttrs: Record<string, string | number | boolean | null | string[]>;
}

/** The observer a session is fed by. */
export interface SessionSource {
  readonly clock: BootClock;
  stats(): SensorStats;
  dropsByProcess(): DropperRow[];
  close(): Promise<SensorStats>;
}

export interface RootResult { code: number | null; signal: NodeJS.Signals | null }

type Exe = { path?: string; sha256?: string; hash_status?: string };

/**
 * Executable identity for session.json: the binary the root actually loaded,
 * as the enricher hashed it at the exec event (through /proc/PID/exe). Never
 * a re-read of the path after the run: by then the file may be another one.
 */
function loadedExecutable(env: Envelope | null, fallbackPath: string): Exe {
  const a = env?.attributes ?? {};
  const path = typeof a['process.executable.path'] === 'string' ? a['process.executable.path'] : fallbackPath;
  const sha = a['witness.executable.sha256'];
  return typeof sha === 'string' ? { path, sha256: sha, hash_status: 'ok' } : { path, hash_status: String(a['witness.executable.hash_status'] ?? 'unavailable') };
}

async function settleExecutable(exe: Exe | undefined, pending: Promise<string | null> | undefined): Promise<Exe> {
  if (!exe || exe.hash_status !== 'pending' || !pending) return exe ?? {};
  const sha = await pending;
  return sha !== null ? { ...exe, sha256: sha, hash_status: 'ok' } : { ...exe, hash_status: 'unavailable' };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function summaryText(counts: Map<string, number>, stats: SensorStats, outputDropped: number, seconds: number): string {
  const parts = [...counts.entries()].sort().map(([k, v]) => `${k}=${v}`);
  return `witness: ${parts.join(' ') || 'no events'}; drops=${stats.droppedTotal + outputDropped} ` +
    `(kernel ${stats.droppedTotal - stats.userDropped}, user ${stats.userDropped}, output ${outputDropped}) ` +
    `decode_errors=${stats.decodeErrors} in ${seconds.toFixed(2)}s\n`;
}

/** The agent-released → tree-drained window (RunSession.markDrained); bench/path-bench.mjs reads `drained in X s`. */
export function drainedText(records: number, seconds: number): string {
  return `witness: ${records} records of the tree drained in ${seconds.toFixed(3)} s after the agent's release\n`;
}

export class RunSession {
  rootPid = -1;
  readonly exitedPids = new Set<number>();
  readonly rootExitSeen: Promise<void>;
  /** the own sensor's OpenSSL uprobes (--tls-metadata, standalone only) */
  tls: TlsMetadata | null = null;
  /** the paths a local sensor watches for this run (the daemon registers them too) */
  readonly sensitivePaths: string[];
  private rootExited: () => void = () => {};
  private rootExe: Exe | undefined;
  // a big root binary is hashed in the background: the same fd's digest, awaited for session.json
  private rootExePending: Promise<string | null> | undefined;
  private enricher: AttributionEnricher | undefined;
  private source: SessionSource | undefined;
  private readonly hashCache: ReturnType<typeof cachedHasher>;
  private readonly net: NetDepth;
  private readonly path: ReturnType<typeof runPath>;
  private scopeToolCall: string | undefined;
  private stopTimers: () => void = () => {};
  private readonly started = process.hrtime.bigint();
  /** the agent released (onPid returned: the guardian lets it run) and the tree's records written (markDrained) */
  private releasedAt: bigint | null = null;
  private drained: { seconds: number; records: number } | null = null;

  private constructor(
    readonly plan: SessionPlan, readonly ledger: SessionWriter | null, private readonly manifest: ReturnType<typeof loadManifest> | null,
    out: { fd: number } | { sink: OutputSink }, private readonly pusher: WitnessPusher | null,
  ) {
    this.rootExitSeen = new Promise<void>((resolve) => { this.rootExited = resolve; });
    // count, compact, serialise once, ledger + output (src/pipeline/run-path.ts)
    this.path = runPath({ ...out, ledger, json: plan.json });
    const s = plan.settings;
    this.net = new NetDepth({ providers: new ProviderTable(manifest?.llm_providers ?? []), tls: { keepContent: s.tlsContent } });
    // The witness's own state is sensitive: every read the agent attempts is evidence.
    const ownPaths = [ledger?.stateDir ?? plan.stateDir, ledger?.dir, s.signKey].filter((p): p is string => p !== undefined);
    this.sensitivePaths = [...manifestSensitivePaths(manifest), ...ownPaths];
    // the parent chain's executables (node, the shell) were hashed by the previous run: reuse its digests
    this.hashCache = cachedHasher(ledger?.stateDir ?? plan.stateDir);
  }

  /**
   * The session ledger first (it records every exported line byte for byte, docs/ledger.md), then
   * the manifest; `makePusher` sends each continuity checkpoint to cosigning witnesses as it is sealed.
   */
  static async open(plan: SessionPlan, out: { fd: number } | { sink: OutputSink }, makePusher?: (stateDir: string) => WitnessPusher | null,
    /** a session dir made ready ahead for this state dir (the resident daemon's; src/ledger/session-prepare.ts) */
    takePrepared?: () => PreparedSession | null): Promise<RunSession> {
    const s = plan.settings;
    // the manifest first: a bad one is refused before any session exists
    const manifest = s.manifest !== undefined ? loadManifest(s.manifest) : null;
    const prepared = s.ledger && s.sessionDir === undefined ? takePrepared?.() ?? null : null;
    const ledger = !s.ledger ? null : await SessionWriter.create({
      ...(prepared !== null && { prepared }),
      stateDir: plan.stateDir,
      ...(s.sessionDir !== undefined ? { dir: s.sessionDir } : {}),
      ...(s.signKey !== undefined ? { signKeyPath: s.signKey } : {}),
      ...(s.track !== undefined ? { trackPaths: s.track } : {}),
      command: s.command,
      startAttributes: plan.agentAttrs,
    });
    const pusher = ledger && makePusher ? makePusher(ledger.stateDir) : null;
    pusher?.start();
    return new RunSession(plan, ledger, manifest, out, pusher);
  }

  get emit(): (env: Envelope) => void {
    return this.path.emit;
  }

  /** Decoded events from the source, in ring order. */
  readonly onSensorEvent = (ev: SensorEvent): void => {
    // attribution (agent, scope, container, executable hash) and findings ride on each envelope
    // network depth (TLS hello, names on connects, llm.call) sits before attribution
    this.tls?.onEvent(ev);
    const enricher = this.enricher;
    const clock = this.source?.clock;
    if (!clock) throw new WitnessError('E_KERNEL', 'a sensor event before the session was attached to its sensor');
    const isRootExec = ev.kind === 'exec' && ev.pid === this.rootPid && this.rootExe === undefined;
    for (const out of enrichThrough(this.net, ev, clock, (e, env) => (enricher ? enricher.enrich(e, env) : env ? [env] : []))) {
      // the root's executable as hashed at its exec, before emit may compact the record
      if (isRootExec && out.event === 'process.exec' && this.rootExe === undefined) this.rootExe = loadedExecutable(out, ev.exe || ev.filename);
      this.emit(out);
    }
    if (isRootExec && this.rootExe === undefined) this.rootExe = loadedExecutable(null, ev.exe || ev.filename);
    if (isRootExec && this.rootExe?.hash_status === 'pending' && enricher && ev.kind === 'exec') {
      this.rootExePending = enricher.hasher.identify(ev.pid, ev.exe, ev.filename, ev.cwd).pending; // joins the in-flight hash
    }
    if (ev.kind === 'exit') {
      this.exitedPids.add(ev.pid);
      if (ev.pid === this.rootPid) this.rootExited();
    }
  };

  /** Once the observer exists: attribution needs its clock. */
  async attach(source: SessionSource): Promise<void> {
    this.source = source;
    const emit = this.emit;
    this.enricher = await AttributionEnricher.create({ clock: source.clock, manifest: this.manifest, onLateFinding: emit, hasher: this.hashCache.hasher });
    this.enricher.registry.addListener((kind, scope) => emit(scopeEnvelope(kind, scope)));
  }

  /**
   * The agent is forked and traced, and has run no instruction yet: its scope opens and
   * sensor.start (who the agent runs as) is sealed, so a witness killed early still leaves a
   * signed start of the session.
   */
  onPid(pid: number): void {
    this.rootPid = pid;
    // the guardian holds the root before its first instruction: read what it runs now (the
    // guardian's own setgid/setuid records may be enriched after the root has exec'd or exited)
    this.enricher?.table.prime(pid);
    const scope = this.plan.settings.scope;
    if (scope !== undefined) {
      this.scopeToolCall = this.enricher!.registry.open({
        runId: scope.run, sessionId: scope.session, toolCallId: scope.toolCall ?? `run-${pid}`, toolName: scope.toolName ?? null, pid,
      }).toolCallId;
    }
    // durable before the agent runs; its continuity leaf goes with the next append (the final seal's), 100 ms at the latest
    this.ledger?.checkpoint('time', { leafWithinMs: 100 });
    this.releasedAt = process.hrtime.bigint(); // the guardian's `run` follows at once (guardian.ts)
  }

  /**
   * The tree is done (its root's exit record seen, the tree empty or its survivors' exits
   * waited for): every record it caused so far is in the ledger's buffer and, output flushed
   * here, written to F. The window from the agent's release to here is what the C consumer's
   * `seconds` measures (fork to the end of its drain): no node start, BPF load, session open
   * or seal. Only the first call counts.
   */
  markDrained(): void {
    if (this.drained !== null || this.releasedAt === null) return;
    this.path.flushOutput();
    let records = 0;
    for (const n of this.path.counts.values()) records += n;
    this.drained = { seconds: Number(process.hrtime.bigint() - this.releasedAt) / 1e9, records };
  }

  /** The heartbeat and the ledger's window checkpoints, while the agent runs. */
  startTimers(): void {
    const source = this.source!;
    const beat = setInterval(() => this.emit(this.withNet(heartbeat(source, new Date()))), this.plan.settings.heartbeatSeconds * 1000);
    const stopWindows = this.ledger ? startWindowCheckpoints(this.ledger, this.plan.settings.windowMs) : () => {};
    this.stopTimers = () => { clearInterval(beat); stopWindows(); };
  }

  private withNet(hb: Envelope): Envelope {
    Object.assign(hb.attributes, this.net.heartbeatAttributes());
    return hb;
  }

  /** Descendants alive after the root exited and the linger: named before they are ended (or left running). */
  outlived(survivors: Survivor[]): void {
    const s = this.plan.settings;
    for (const x of survivors) this.emit(outlivedEnvelope(x, this.rootPid, s.lingerMs, s.leaveRunning ? 'left_running' : 'killed'));
  }

  /** After the guardian ended the survivors: their exit records are evidence too, so wait for them, briefly. */
  async survivorsExited(survivors: Survivor[]): Promise<void> {
    if (this.plan.settings.leaveRunning) return;
    for (let i = 0; i < 50 && survivors.some((s) => !this.exitedPids.has(s.pid)); i++) await sleep(20);
  }

  /**
   * The tree is done and its survivors handled: closes the source, writes the final heartbeat,
   * waits for the output's reader and seals the session. Answers the summary for stderr.
   */
  async close(result: RootResult, survivors: Survivor[]): Promise<string> {
    const enricher = this.enricher!;
    const { counts, sink, sinkFailures } = this.path;
    this.stopTimers();
    this.tls?.close();
    const stats = await this.source!.close();
    for (const [src, env] of this.net.tls.flushAll()) for (const x of enricher.enrich(src, env)) this.emit(x);
    if (this.scopeToolCall !== undefined) enricher.registry.close(this.scopeToolCall, this.plan.settings.scope?.run);
    await enricher.close();
    this.hashCache.save();
    this.emit(this.withNet(heartbeat(this.source!, new Date(), stats)));
    // The sensor is closed, so nothing upstream can suffer now: wait for the
    // reader as any Unix writer would (a reader that went away ends it at once).
    await sink.close(Number.POSITIVE_INFINITY);
    let ledgerCloseError: Error | null = null;
    const s = this.plan.settings;
    if (this.ledger) {
      await this.ledger.close({
        exitCode: result.code,
        signal: result.signal,
        counters: Object.fromEntries(counts),
        drops: { ...stats.kernelDropped, user: stats.userDropped, decode_errors: stats.decodeErrors, output: sink.stats().dropped, ...sinkFailures.drops() },
        executable: await settleExecutable(this.rootExe, this.rootExePending),
        agent: { ...this.plan.agentAttrs, 'witness.linger.ms': s.lingerMs, 'witness.linger.leave_running': s.leaveRunning, 'witness.linger.survivors': survivors.map((x) => String(x.pid)) },
      }).catch((err: Error) => { ledgerCloseError = err; });
    }
    const witnessed = await this.pusher?.close();
    const seconds = Number(process.hrtime.bigint() - this.started) / 1e9;
    let text = summaryText(counts, stats, sink.stats().dropped, seconds) + sinkFailures.summary();
    if (this.drained) text += drainedText(this.drained.records, this.drained.seconds);
    if (ledgerCloseError) text += `witness: the session ledger could not be closed (${(ledgerCloseError as Error).message}); it stays unclosed and the next witness run seals it\n`;
    for (const w of witnessed ?? []) text += `witness: ${w.witness} cosigned ${w.cosigned}, size ${w.size}, pending ${w.pending}, dropped ${w.dropped}${w.lastError ? ` (${w.lastError})` : ''}\n`;
    if (this.ledger) text += `witness: session ${this.ledger.dir} (check it: witness verify --pubkey KEY.pub ${this.ledger.dir})\n`;
    return text;
  }
}

