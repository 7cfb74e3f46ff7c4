import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { WitnessError } from '../errors.js';
import { decodeBatch } from './decode.js';
import { checkBtf, checkPrivileges, ensureTracefs } from './host.js';
import { log } from '../log.js';
import { loadNative, type DropperRow, type HooksState, type NativeModule, type NativeSensor, type NativeStats, type ProgramStatus } from './native.js';
import { bootToEpochOffsetNs, type BootClock } from './ndjson.js';
import { DEFAULT_SENSITIVE, expandHome } from './sensitive.js';
import { registerSensitive, type SensitiveRegistration } from './sensitive-set.js';
import { SuppressionSummarizer } from './suppression.js';
import type { SensorEvent } from './types.js';
import { deniedReadFilter } from './sensitive.js';

export interface SensorOptions {
  onEvent: (ev: SensorEvent) => void;
  /** each raw batch (the addon's framing) before it is decoded: the daemon's resident socket routes from it */
  onRawBatch?: (batch: ArrayBuffer) => void;
  /** malformed wire records: counted always, reported here when given */
  onDecodeError?: (err: WitnessError) => void;
  traceAll?: boolean;
  ringBytes?: number;
  batchBytes?: number;
  maxLatencyMs?: number;
  /** paths whose reads are reported; default DEFAULT_SENSITIVE */
  sensitivePaths?: string[];
  /** false: load and attach but do not drain until start() (the ring fills; benchmarks) */
  autoStart?: boolean;
  /** entries of the kernel's traced set (default 65,536); past it children escape, each one a scope_overflow */
  tracedMax?: number;
  /** entries of the kernel's per-process connection index (default 8,192 processes); past it a
   * connection's accounting is a counted conn_end drop. Tests shrink it to force that. */
  connOwnersMax?: number;
  /** fairness (bpf/budget.bpf.h): records per process, per high-volume kind, per window before
   * repeats are counted instead of written; default 1024, 0 = no budget */
  budgetEvents?: number;
  /** the budget window, default 1000 ms */
  budgetWindowMs?: number;
  /** ring fill (%) an over-budget process may not push past, default 50 */
  ringSharePct?: number;
  /** how often repeat counters are summarised into `suppressed` events, default 1000 ms */
  suppressSweepMs?: number;
  /** keep the syscall hooks attached for the sensor's life (a resident sensor serving many runs);
   * default: in targeted mode they are attached only while a traced tree exists */
  holdHooks?: boolean;
  /** the poll thread gave up (the sensor is blind from here on); default: logged as an error */
  onFatal?: (err: WitnessError) => void;
}

export const DEFAULT_BUDGET_EVENTS = 1024;
export const DEFAULT_BUDGET_WINDOW_MS = 1000;

export interface SensorStats extends NativeStats {
  decoded: number;
  decodeErrors: number;
  /** kernel ring drops + records user space could not hand over */
  droppedTotal: number;
  /** repeats reported in `suppressed` events, per kind (equals kernelSuppressed after close) */
  suppressedSummarized: Record<string, number>;
}

/** Programs the core cannot do without; the rest degrade one capability each. */
export const CORE_PROGRAMS = ['wa_fork', 'wa_exec', 'wa_exit'];

/**
 * The kernel sensor as TypeScript sees it: typed events from the addon's raw
 * batches. Refuses to start without privileges, BTF, tracefs or a matching
 * wire layout, each with a message that says what to do.
 */
export class WitnessSensor {
  readonly clock: BootClock;
  /** configured sensitive paths not watched: neither they nor their parent exist */
  readonly sensitiveSkipped: string[];
  /** how the sensitive set was registered: counts, refused entries (the kernel cap), identity source */
  readonly sensitive: SensitiveRegistration;
  private decoded = 0;
  private decodeErrors = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** denied opens the kernel reported that were not under a sensitive path (not evidence, not lost: filtered) */
  deniedOutside = 0;

  private constructor(
    readonly native: NativeSensor,
    readonly module: NativeModule,
    sensitive: SensitiveRegistration,
    private readonly summarizer: SuppressionSummarizer,
    private readonly onEvent: (ev: SensorEvent) => void,
    private readonly windowNs: number,
  ) {
    this.clock = { bootToEpochNs: bootToEpochOffsetNs(module.clockOffsets()) };
    this.sensitive = sensitive;
    this.sensitiveSkipped = sensitive.skipped;
  }

  static open(opts: SensorOptions): WitnessSensor {
    checkPrivileges();
    checkBtf();
    ensureTracefs();
    const mod = loadNative();
    let self: WitnessSensor | undefined;
    const budget = opts.budgetEvents ?? DEFAULT_BUDGET_EVENTS;
    const windowMs = opts.budgetWindowMs ?? DEFAULT_BUDGET_WINDOW_MS;
    const sensitivePaths = expandHome(opts.sensitivePaths ?? DEFAULT_SENSITIVE);
    const denied = deniedReadFilter(sensitivePaths);
    const onEvent = (ev: SensorEvent): void => {
      if (ev.kind === 'file_read_sensitive' && ev.ret < 0 && !denied(ev.path)) {
        if (self) self.deniedOutside++;
        return;
      }
      opts.onEvent(ev);
    };
    const onBatch = (ab: ArrayBuffer | null, records: number): void => {
      if (ab === null) {
        const err = new WitnessError('E_KERNEL',
          `the sensor stopped reading its ring buffer after repeated poll failures (errno ${-records}); nothing is observed from here on`);
        if (opts.onFatal) opts.onFatal(err);
        else log.error({ err: err.message }, 'sensor blind');
        return;
      }
      opts.onRawBatch?.(ab);
      const r = decodeBatch(ab, onEvent, opts.onDecodeError);
      if (self) {
        self.decoded += r.events;
        self.decodeErrors += r.errors;
      }
    };
    let native: NativeSensor;
    try {
      native = new mod.Sensor({
        onBatch,
        ringBytes: opts.ringBytes ?? 16 << 20,
        batchBytes: opts.batchBytes ?? 1 << 20,
        maxLatencyMs: opts.maxLatencyMs ?? 20,
        traceAll: opts.traceAll ?? false,
        tracedMax: opts.tracedMax ?? 0,
        connOwnersMax: opts.connOwnersMax ?? 0,
        budgetEvents: budget,
        budgetWindowMs: windowMs,
        ringSharePct: opts.ringSharePct ?? 0,
      });
    } catch (err) {
      throw new WitnessError('E_KERNEL', (err as Error).message, { cause: err });
    }
    const missing = native.capabilities().filter((p) => CORE_PROGRAMS.includes(p.name) && !p.attached);
    if (missing.length > 0) {
      void native.close();
      throw new WitnessError('E_KERNEL',
        `core probes did not attach: ${missing.map((p) => `${p.name} (${p.reason})`).join('; ')}; see \`witness probe\``);
    }
    if (opts.holdHooks) native.hooks('hold');
    const reg = registerSensitive(native, sensitivePaths);
    const summarizer = new SuppressionSummarizer({ budget, windowNs: windowMs * 1e6 });
    self = new WitnessSensor(native, mod, reg, summarizer, opts.onEvent, windowMs * 1e6);
    if (budget > 0) {
      const s = self;
      // a failed sweep leaves the counters in the kernel map (the next sweep, or
      // close, takes them); a full map writes repeats instead (WA_LOSS_SUPPRESS_FULL)
      s.sweepTimer = setInterval(() => {
        try { s.sweepSuppressed(); } catch (err) { log.warn({ err: (err as Error).message }, 'suppressed sweep failed'); }
      }, opts.suppressSweepMs ?? 1000);
      s.sweepTimer.unref();
    }
    if (opts.autoStart !== false) native.start();
    return self;
  }

  private bootNowNs(): bigint {
    return this.module.clockOffsets().bootNs;
  }

  /** Reports what the kernel's repeat counters gained; deletes those idle for two windows. */
  sweepSuppressed(): void {
    const cutoff = this.bootNowNs() - BigInt(Math.round(2 * this.windowNs));
    for (const ev of this.summarizer.summarize(this.native.sweepSuppressed(cutoff), false)) this.onEvent(ev);
  }

  /** The processes with the most ring drops (a heartbeat names them). */
  dropsByProcess(max = 5): DropperRow[] {
    return this.native.dropsByProcess(max);
  }

  /** Starts draining (only needed with autoStart: false). */
  start(): void {
    this.native.start();
  }

  capabilities(): ProgramStatus[] {
    return this.native.capabilities();
  }

  /**
   * Spawns a command traced from its first instruction: the kernel marks the
   * next child this process forks as a root before that child runs.
   */
  spawnTraced(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    this.native.armSpawn(process.pid);
    let child: ChildProcess;
    try {
      child = spawn(command, args, options);
    } finally {
      // The fork tracepoint runs before spawn() returns, so a successful fork
      // has consumed the one-shot by now. (Asking isTraced(pid) instead races
      // a child that already exited, and would re-add a dead pid.)
      var stillArmed = this.native.disarmSpawn();
    }
    if (stillArmed !== 0 && child.pid !== undefined) {
      child.kill('SIGKILL');
      throw new WitnessError('E_KERNEL', 'the fork probe did not capture the spawned command; refusing to let it run untraced');
    }
    return child;
  }

  addRoot(pid: number): void { this.native.addRoot(pid); }

  /**
   * The syscall hooks (attached while a traced tree exists, in targeted
   * mode): 'hold' keeps them attached until the matching 'release' — a
   * resident sensor holds them while agents come and go, so no run pays an
   * attach — and 'idle' detaches them now if nothing needs them.
   */
  hooks(op?: 'hold' | 'release' | 'idle'): HooksState { return this.native.hooks(op); }
  /**
   * Every record in the ring now reaches onBatch within a poll, not at maxLatencyMs: for a
   * caller that knows a record it waits for was written (a resident run's guardian exited).
   */
  flushSoon(): void { this.native.flushSoon?.(); }
  isTraced(pid: number): boolean { return this.native.isTraced(pid); }

  stats(): SensorStats {
    const s = this.native.stats();
    const kernelDrops = Object.values(s.kernelDropped).reduce((a, b) => a + b, 0);
    return {
      ...s, decoded: this.decoded, decodeErrors: this.decodeErrors, droppedTotal: kernelDrops + s.userDropped,
      suppressedSummarized: { ...this.summarizer.summarized },
    };
  }

  /**
   * Detaches the probes, then delivers every record left in the ring and
   * summarises every repeat counter: after it, per kind, kernelEmitted =
   * delivered + user drops, and the suppressed summaries add up to
   * kernelSuppressed.
   */
  async close(): Promise<SensorStats> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.native.close();
    const finalRows = this.native.sweepSuppressed(0n);
    for (const ev of this.summarizer.summarize(finalRows, true)) this.onEvent(ev);
    const stats = this.stats();
    for (const ev of this.summarizer.reconcile(stats.kernelSuppressed, this.bootNowNs())) this.onEvent(ev);
    return this.stats();
  }
}
