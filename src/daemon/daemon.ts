import { join } from 'node:path';
import type { DaemonConfig } from '../config/schema.js';
import { rfc3339Nanos, type Envelope } from '../events/envelope.js';
import { RotatingFileSink } from '../export/file-sink.js';
import { OtlpSink } from '../export/otlp-sink.js';
import { SCHEMA_VERSION, hostIdentity } from '../export/schema.js';
import { StdoutSink } from '../export/stdout-sink.js';
import { DaemonWriter } from '../ledger/index.js';
import { log } from '../log.js';
import type { Sink } from '../pipeline/types.js';
import { PulseEngine } from '../pulse/engine.js';
import type { PulseOptionsInput } from '../pulse/options.js';
import { loadManifest } from '../manifest/load.js';
import { manifestSensitivePaths } from '../manifest/sensitive.js';
import { heartbeat } from '../sensor/heartbeat.js';
import { DEFAULT_SENSITIVE, expandHome } from '../sensor/sensitive.js';
import { registerSensitive } from '../sensor/sensitive-set.js';
import { loadNative } from '../sensor/native.js';
import type { ProviderRule } from '../sensor/llm.js';
import { bootToEpochOffsetNs, type BootClock } from '../sensor/ndjson.js';
import { WitnessSensor, type SensorStats } from '../sensor/sensor.js';
import { TlsMetadata } from '../sensor/tls-run.js';
import { STORE_FILE, openStore, stateDir as defaultStateDir, type Store } from '../store/db.js';
import { attributionHooks } from './attribution.js';
import type { AttributionHooks, HookContext, ScopeServerHandle } from './hooks.js';
import { LedgerSink } from './ledger-sink.js';
import { WitnessPusher } from '../cosigner/push.js';
import { loadVerifierKey } from '../ledger/note-key-files.js';
import { Pipeline } from './pipeline.js';
import { sdNotify, watchdogIntervalMs } from './sdnotify.js';
import { StoreSink } from './store-sink.js';
import { WorkerStoreSink, storeWorkerAvailable } from './store-worker-sink.js';
import { DaemonHealth } from './health.js';
import { ExtraSensitive, startResident } from './resident.js';
import type { ResidentServer } from './resident-server.js';
import type { WitnessError } from '../errors.js';

export interface DaemonStartOptions {
  config: DaemonConfig;
  /** Where the config came from, for sensor.start and messages. */
  configPath: string;
  hooks?: AttributionHooks;
  env?: NodeJS.ProcessEnv;
  /** the sensor stopped reading its ring (repeated poll failures): the daemon is blind and must be restarted */
  onSensorFatal?: (err: WitnessError) => void;
}

/** The sensor's defaults (or the config's list) plus every path the manifest adds. */
function sensitivePathsFor(config: DaemonConfig): string[] {
  const manifest = config.manifest !== undefined ? loadManifest(config.manifest) : null;
  return manifestSensitivePaths(manifest, config.sensor.sensitivePaths ?? DEFAULT_SENSITIVE);
}

/** The config's provider rows, then the manifest's (docs/network.md). */
function llmProvidersFor(config: DaemonConfig): ProviderRule[] {
  const manifest = config.manifest !== undefined ? loadManifest(config.manifest) : null;
  return [...config.llmProviders, ...(manifest?.llm_providers ?? [])];
}

function now(): string {
  return rfc3339Nanos(BigInt(Date.now()) * 1_000_000n);
}

/**
 * `witness daemon`: the host-wide sensor with the full pipeline behind it —
 * attribution hook, store, exporters, pulse, ledger — plus the systemd
 * protocol (READY / WATCHDOG / STOPPING), a periodic `sensor.heartbeat`
 * with per-stage counts, a clean drain on stop and a manifest reload.
 */
export class WitnessDaemon {
  private timers: NodeJS.Timeout[] = [];
  private stopping: Promise<void> | null = null;
  private finalStats: SensorStats | null = null;
  /** the resident socket (`witness run` through this daemon's sensor); null when off */
  resident: ResidentServer | null = null;
  private extraSensitive: ExtraSensitive | null = null;
  /** memory and event-loop holds, in every heartbeat */
  private readonly health = new DaemonHealth();

  private constructor(
    readonly config: DaemonConfig,
    readonly stateDir: string,
    readonly sensor: WitnessSensor,
    readonly pipeline: Pipeline,
    private readonly store: Store | null,
    private readonly storeSink: StoreSink | WorkerStoreSink | null,
    private readonly fileSink: RotatingFileSink | null,
    private readonly scopeServer: ScopeServerHandle | null,
  ) {}

  static async start(opts: DaemonStartOptions): Promise<WitnessDaemon> {
    const { config } = opts;
    const env = opts.env ?? process.env;
    const hooks = opts.hooks ?? attributionHooks;
    const dir = config.stateDir ?? defaultStateDir(env);
    const needStore = config.store.enabled || config.pulse.enabled;
    const store = needStore ? openStore(join(dir, STORE_FILE)) : null;
    const sinks: Sink[] = [];
    let ledgerSink: LedgerSink | null = null;
    const closers: (() => Promise<void>)[] = [];
    const closeAll = async (): Promise<void> => {
      for (const c of closers.reverse()) await c().catch(() => {});
      for (const s of sinks) await s.close().catch(() => {});
      store?.close();
    };
    try {
      const storeOpts = { maxQueued: config.store.maxQueued, maxQueuedBytes: config.store.maxQueuedBytes, retention: { maxAgeMs: config.store.maxAge, maxBytes: config.store.maxBytes } };
      // inserts on a thread of their own where the compiled worker exists (src/daemon/store-worker-sink.ts)
      const storeSink = !config.store.enabled || !store ? null
        : storeWorkerAvailable() && store.path !== ':memory:' ? new WorkerStoreSink({ path: store.path, ...storeOpts })
          : new StoreSink(store, storeOpts);
      if (storeSink) sinks.push(storeSink);
      const x = config.export;
      if (x.stdout?.enabled) sinks.push(new StdoutSink({ maxQueuedBytes: x.stdout.maxQueuedBytes }));
      // the schema requires dir/endpoint whenever a sink is enabled
      const fileSink = x.file?.enabled && x.file.dir !== undefined
        ? new RotatingFileSink({ dir: x.file.dir, prefix: x.file.prefix, maxBytes: x.file.maxBytes, maxAgeSeconds: x.file.maxAge / 1000, keep: x.file.keep, maxQueuedLines: x.file.maxQueued, maxQueuedBytes: x.file.maxQueuedBytes })
        : null;
      if (fileSink) sinks.push(fileSink);
      if (x.otlp?.enabled && x.otlp.endpoint !== undefined) {
        sinks.push(new OtlpSink({
          endpoint: x.otlp.endpoint, headers: x.otlp.headers, batchSize: x.otlp.batchSize, maxQueued: x.otlp.maxQueued,
          timeoutMs: x.otlp.timeout, initialBackoffMs: x.otlp.initialBackoff, maxBackoffMs: x.otlp.maxBackoff,
        }));
      }
      if (config.ledger.enabled) {
        const writer = await DaemonWriter.create({
          stateDir: dir,
          ...(config.ledger.signKeyPath !== undefined ? { signKeyPath: config.ledger.signKeyPath } : {}),
          ...(config.ledger.segmentMaxBytes !== undefined ? { segmentMaxBytes: config.ledger.segmentMaxBytes } : {}),
          ...(config.ledger.segmentMaxAge !== undefined ? { segmentMaxSeconds: config.ledger.segmentMaxAge / 1000 } : {}),
          retryIntervalMs: config.ledger.retryInterval,
          retention: { maxBytes: config.ledger.maxBytes, maxAgeMs: config.ledger.maxAge },
        });
        ledgerSink = new LedgerSink(writer);
        sinks.push(ledgerSink);
        if (config.witnesses.length > 0) {
          const pusher = new WitnessPusher({ stateDir: dir, witnesses: config.witnesses.map((w) => ({ url: w.url.replace(/\/+$/, ''), vkey: loadVerifierKey(w.vkey, 'witnesses.vkey') })) });
          pusher.start();
          closers.push(async () => { await pusher.close(); });
        }
      }
      const ledger = ledgerSink;
      const pulse = config.pulse.enabled && store
        ? new PulseEngine({
          store,
          options: config.pulse.options as PulseOptionsInput,
          // a checkpoint per closed window binds the ledger to the pulse's windows (docs/ledger.md)
          ...(ledger ? { onWindow: () => ledger.checkpoint('window') } : {}),
        })
        : null;

      // The same boot→epoch offset the sensor computes when it opens (one
      // sample of both clocks in C), taken now so the enricher and scope
      // server exist before the first batch arrives.
      const clock: BootClock = { bootToEpochNs: bootToEpochOffsetNs(loadNative().clockOffsets()) };
      const ctx: HookContext = { emit: (e) => pipeline.emit(e), clock, store, env };
      const enricher = await hooks.createEnricher(config, ctx);
      const pipeline: Pipeline = new Pipeline(enricher, sinks, pulse, () => clock, llmProvidersFor(config),
        { keepContent: config.sensor.tlsContent === true });
      closers.push(async () => { await enricher.close?.(); });
      const scopeServer = await hooks.startScopeServer(config, enricher, ctx);
      if (scopeServer) closers.push(async () => { await scopeServer.close(); });
      let resident: ResidentServer | null = null;
      let tls: TlsMetadata | null = null; // sensor.tlsMetadata: OpenSSL uprobes (docs/privacy.md)
      const sensor = WitnessSensor.open({
        onEvent: (ev) => {
          tls?.onEvent(ev);
          pipeline.onSensorEvent(ev);
          if (ev.kind === 'suppressed') resident?.onSuppressed(ev);
        },
        onRawBatch: (ab) => {
          try { resident?.onRawBatch(ab); } catch (err) { log.error({ err: (err as Error).message }, 'resident routing failed on a batch'); }
        },
        onDecodeError: (err) => log.warn({ err: err.message }, 'malformed wire record'),
        traceAll: true,
        // the resident sensor: `witness run` through this daemon never waits for a hook attach
        holdHooks: true,
        ...(config.sensor.ringBytes !== undefined ? { ringBytes: config.sensor.ringBytes } : {}),
        ...(config.sensor.maxLatencyMs !== undefined ? { maxLatencyMs: config.sensor.maxLatencyMs } : {}),
        ...(config.sensor.budgetEvents !== undefined ? { budgetEvents: config.sensor.budgetEvents } : {}),
        ...(config.sensor.budgetWindowMs !== undefined ? { budgetWindowMs: config.sensor.budgetWindowMs } : {}),
        ...(config.sensor.ringSharePct !== undefined ? { ringSharePct: config.sensor.ringSharePct } : {}),
        ...(config.sensor.tracedMax !== undefined ? { tracedMax: config.sensor.tracedMax } : {}),
        onFatal: (err) => {
          log.error({ err: err.message }, 'sensor blind');
          opts.onSensorFatal?.(err);
        },
        sensitivePaths: sensitivePathsFor(config),
      });
      const daemon = new WitnessDaemon(config, dir, sensor, pipeline, store, storeSink, fileSink, scopeServer);
      closers.push(async () => { tls?.close(); await sensor.close(); });
      if (config.sensor.tlsMetadata === true) tls = new TlsMetadata(sensor.native, (e) => pipeline.emit(e));
      const extra = new ExtraSensitive(sensor, () => expandHome(sensitivePathsFor(config)));
      daemon.extraSensitive = extra;
      resident = await startResident(config, sensor, extra, env);
      daemon.resident = resident;
      closers.pop();
      daemon.announceStart(opts.configPath);
      daemon.startTimers(env);
      sdNotify(`READY=1\nSTATUS=observing host-wide; exporting to ${sinks.map((s) => s.name).join(', ') || 'nothing'}\nMAINPID=${process.pid}`, env);
      return daemon;
    } catch (err) {
      await closeAll();
      throw err;
    }
  }

  private announceStart(configPath: string): void {
    const caps = this.sensor.capabilities();
    const env: Envelope = {
      time: now(),
      event: 'sensor.start',
      attributes: {
        'witness.schema_version': SCHEMA_VERSION,
        ...hostIdentity(),
        'witness.sensor.pid': process.pid,
        'witness.sensor.mode': 'host',
        'witness.config': configPath,
        'witness.probes.attached': caps.filter((p) => p.attached).map((p) => p.name),
        'witness.probes.missing': caps.filter((p) => !p.attached).map((p) => p.name),
        'witness.sensitive.skipped': this.sensor.sensitiveSkipped,
        'witness.sensitive.refused': this.sensor.sensitive.refused,
        'witness.sensitive.identity': this.sensor.sensitive.identity,
      },
    };
    this.pipeline.emit(env);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      try {
        fn();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'daemon timer failed');
      }
    }, ms);
    this.timers.push(t);
  }

  private startTimers(env: NodeJS.ProcessEnv): void {
    this.every(this.config.heartbeat, () => {
      const beat = this.heartbeat();
      this.pipeline.emit(beat);
      this.ledgerCounters(beat);
    });
    if (this.config.pulse.enabled) this.every(this.config.pulse.tick, () => this.pipeline.tick());
    // retention in small steps (the sink also trims as rows arrive): one pass a minute stalled the loop for seconds
    if (this.storeSink) {
      this.storeSink.retainSoon();
      this.every(1000, () => this.storeSink!.retainSoon());
    }
    if (this.fileSink) this.every(1000, () => this.fileSink!.rotateIfDue());
    const watchdog = watchdogIntervalMs(env);
    if (watchdog !== null) {
      // Pet the watchdog only while the sensor is alive and the ledger writes: a hung event
      // loop, a sensor that closed under us, or a ledger failing (disk full, EIO) for longer
      // than ledger.failureTimeout all let systemd restart the daemon; the restart seals the
      // failed epoch and records what it lost (docs/ledger.md §5).
      const ledger = this.pipeline.sinks.find((s): s is LedgerSink => s instanceof LedgerSink);
      this.every(watchdog, () => {
        if (this.sensor.stats().closed) return;
        if (ledger && ledger.failingForMs() > this.config.ledger.failureTimeout) {
          log.error({ failingForMs: ledger.failingForMs() }, 'ledger failing past ledger.failureTimeout; not petting the watchdog');
          return;
        }
        sdNotify('WATCHDOG=1', env);
      });
    }
  }

  /** `sensor.heartbeat` with the sensor's counts plus every pipeline stage and sink. */
  heartbeat(final?: SensorStats): Envelope {
    const env = heartbeat(this.sensor, new Date(), final);
    Object.assign(env.attributes, { 'witness.schema_version': SCHEMA_VERSION, 'witness.sensor.mode': 'host' }, this.pipeline.heartbeatAttributes(),
      this.health.heartbeatAttributes());
    const r = this.resident?.stats;
    if (r) {
      Object.assign(env.attributes, {
        'witness.resident.connections': r.connections, 'witness.resident.refused': r.refused, 'witness.resident.sessions': r.sessions,
        'witness.resident.routed': r.routed, 'witness.resident.dropped': r.dropped,
      });
    }
    return env;
  }

  /** Numeric heartbeat attributes become the counters every later ledger checkpoint carries. */
  private ledgerCounters(beat: Envelope): void {
    const ledger = this.pipeline.sinks.find((s): s is LedgerSink => s instanceof LedgerSink);
    if (!ledger) return;
    const counters: Record<string, number> = {};
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(beat.attributes)) {
      if (typeof v !== 'number') continue;
      if (k.startsWith('witness.drops.') || k.endsWith('.dropped')) drops[k] = v;
      else counters[k] = v;
    }
    ledger.updateCounters(counters, drops);
  }

  /**
   * Points the kernel's sensitive-file table at the manifest's paths. The
   * table is cleared and refilled; a read in the microseconds between the
   * two goes unreported, which a reload accepts.
   */
  private refreshSensitive(): void {
    this.sensor.native.clearSensitive();
    const reg = registerSensitive(this.sensor.native, expandHome(sensitivePathsFor(this.config)));
    if (reg.skipped.length > 0) log.info({ skipped: reg.skipped }, 'sensitive paths absent at reload');
  }

  /** SIGHUP: re-read the manifest through the enricher; a bad manifest keeps the old one. */
  async reload(): Promise<boolean> {
    const enricher = this.pipeline.currentEnricher;
    if (!enricher.reload) {
      log.info('reload requested; no manifest-backed enricher is mounted, nothing to reload');
      return true;
    }
    sdNotify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
    try {
      await enricher.reload();
      this.refreshSensitive();
      this.extraSensitive?.reregister();
      log.info({ manifest: this.config.manifest }, 'manifest reloaded');
      return true;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'manifest reload failed; keeping the previous manifest');
      return false;
    } finally {
      sdNotify('READY=1');
    }
  }

  /**
   * SIGTERM: stop the probes after draining every record already in the
   * ring, send a final heartbeat and `sensor.stop`, then give each sink until
   * `sinkTimeoutMs` to deliver what it holds (what it cannot is counted).
   */
  stop(sinkTimeoutMs = 5000): Promise<void> {
    this.stopping ??= this.doStop(sinkTimeoutMs);
    return this.stopping;
  }

  private async doStop(sinkTimeoutMs: number): Promise<void> {
    sdNotify('STOPPING=1');
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // resident clients see their stream end (and their own record says it broke) before the probes go
    try { await this.resident?.close(); } catch (err) { log.warn({ err: (err as Error).message }, 'resident socket close failed'); }
    const stats = await this.sensor.close();
    this.finalStats = stats;
    this.pipeline.emit(this.heartbeat(stats));
    this.pipeline.emit({ time: now(), event: 'sensor.stop', attributes: { 'witness.sensor.pid': process.pid, 'witness.drops.total': stats.droppedTotal } });
    try { await this.scopeServer?.close(); } catch (err) { log.warn({ err: (err as Error).message }, 'scope server close failed'); }
    try { await this.pipeline.currentEnricher.close?.(); } catch (err) { log.warn({ err: (err as Error).message }, 'enricher close failed'); }
    // every sink drains in parallel, so one dead consumer cannot eat the others' time
    await Promise.all(this.pipeline.sinks.map(async (s) => {
      try {
        await (s.close as (timeoutMs?: number) => Promise<void>).call(s, sinkTimeoutMs);
      } catch (err) {
        log.error({ sink: s.name, err: (err as Error).message }, 'sink close failed');
      }
    }));
    this.health.close();
    const final = this.pipeline.stats();
    log.info({ sensor: { records: stats.records, drops: stats.droppedTotal }, emitted: final.emitted, sinks: final.sinks }, 'daemon stopped');
    this.store?.close();
  }

  get sensorFinalStats(): SensorStats | null {
    return this.finalStats;
  }
}
