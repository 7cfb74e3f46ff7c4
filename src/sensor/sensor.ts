import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { WitnessError } from '../errors.js';
import { decodeBatch } from './decode.js';
import { checkBtf, checkPrivileges, ensureTracefs } from './host.js';
import { loadNative, type NativeModule, type NativeSensor, type NativeStats, type ProgramStatus } from './native.js';
import { bootToEpochOffsetNs, type BootClock } from './ndjson.js';
import { DEFAULT_SENSITIVE, expandHome, resolveSensitive } from './sensitive.js';
import type { SensorEvent } from './types.js';
import { deniedReadFilter } from './sensitive.js';

export interface SensorOptions {
  onEvent: (ev: SensorEvent) => void;
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
}

export interface SensorStats extends NativeStats {
  decoded: number;
  decodeErrors: number;
  /** kernel ring drops + records user space could not hand over */
  droppedTotal: number;
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
  readonly sensitiveSkipped: string[];
  private decoded = 0;
  private decodeErrors = 0;
  /** denied opens the kernel reported that were not under a sensitive path (not evidence, not lost: filtered) */
  deniedOutside = 0;

  private constructor(readonly native: NativeSensor, readonly module: NativeModule, sensitiveSkipped: string[]) {
    this.clock = { bootToEpochNs: bootToEpochOffsetNs(module.clockOffsets()) };
    this.sensitiveSkipped = sensitiveSkipped;
  }

  static open(opts: SensorOptions): WitnessSensor {
    checkPrivileges();
    checkBtf();
    ensureTracefs();
    const mod = loadNative();
    let self: WitnessSensor | undefined;
    const { entries, skipped } = resolveSensitive(expandHome(opts.sensitivePaths ?? DEFAULT_SENSITIVE));
    const denied = deniedReadFilter(entries.map((e) => e.path));
    const onEvent = (ev: SensorEvent): void => {
      if (ev.kind === 'file_read_sensitive' && ev.ret < 0 && !denied(ev.path)) {
        if (self) self.deniedOutside++;
        return;
      }
      opts.onEvent(ev);
    };
    const onBatch = (ab: ArrayBuffer): void => {
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
    for (const e of entries) native.addSensitive(e.kernelDev, e.inode);
    self = new WitnessSensor(native, mod, skipped);
    if (opts.autoStart !== false) native.start();
    return self;
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
  isTraced(pid: number): boolean { return this.native.isTraced(pid); }

  stats(): SensorStats {
    const s = this.native.stats();
    const kernelDrops = Object.values(s.kernelDropped).reduce((a, b) => a + b, 0);
    return { ...s, decoded: this.decoded, decodeErrors: this.decodeErrors, droppedTotal: kernelDrops + s.userDropped };
  }

  /** Stops the probes after delivering every record already in the ring. */
  async close(): Promise<SensorStats> {
    await this.native.close();
    return this.stats();
  }
}
