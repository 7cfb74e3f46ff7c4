import { createRequire } from 'node:module';
import { WitnessError } from '../errors.js';
import { checkLayout } from './layout.js';
import { PACKAGE_ROOT } from '../package-root.js';
import type { SuppressRow } from './suppression.js';

/** One row of the capability table: did the program load, did it attach, why not. */
export interface ProgramStatus {
  name: string;
  section: string;
  loaded: boolean;
  /** not tried: its tracepoint does not exist on this kernel and an alternative program covers it */
  skipped: boolean;
  attached: boolean;
  error: number;
  reason: string;
}

export interface NativeStats {
  /** records written into the ring, per kind */
  kernelEmitted: Record<string, number>;
  /** records lost to a full ring (or shed at an over-budget process's ring share), per kind */
  kernelDropped: Record<string, number>;
  /** repeats past a budget the kernel counted instead of writing, per kind */
  kernelSuppressed: Record<string, number>;
  /** records handed to JavaScript, per kind; at close kernelEmitted = delivered + (user drops of that kind) */
  delivered: Record<string, number>;
  /** enum wa_loss_counter: scopeFull, pendingLost, droppersFull, suppressFull, budgetFull, shed */
  loss: Record<string, number>;
  /** failed polls of the ring, and the errno that made the poll thread give up (0: it did not) */
  pollErrors: number;
  pollFatalErrno: number;
  batches: number;
  records: number;
  bytes: number;
  userDropped: number;
  closed: boolean;
}

export interface NativeSensorOptions {
  /** batch null: the poll thread gave up; records is then -errno */
  onBatch: (batch: ArrayBuffer | null, records: number) => void;
  ringBytes?: number;
  wakeupBytes?: number;
  batchBytes?: number;
  maxLatencyMs?: number;
  traceAll?: boolean;
  tracedMax?: number;
  connOwnersMax?: number;
  budgetEvents?: number;
  budgetWindowMs?: number;
  ringSharePct?: number;
}

export interface DropperRow { pid: number; comm: string; count: number }

/** Where the syscall hooks stand (native/loader_hooks.c). */
export interface HooksState {
  /** the sys_enter/sys_exit dispatchers are attached now */
  attached: boolean;
  /** targeted mode: attached only while a traced tree exists, a spawn is armed or someone holds them */
  lazy: boolean;
  /** holders (hooks('hold') minus hooks('release')) */
  held: number;
  /** idle detaches so far */
  detaches: number;
}

export interface NativeSensor {
  capabilities(): ProgramStatus[];
  start(): void;
  addRoot(pid: number): void;
  remove(pid: number): void;
  isTraced(pid: number): boolean;
  /** attaches the syscall hooks first; throws when they cannot attach (nothing armed) */
  armSpawn(parentPid: number): void;
  /** disarms; returns the pid that was still armed, 0 when a fork consumed it */
  disarmSpawn(): number;
  setTraceAll(on: boolean): void;
  /** hold: keep the syscall hooks attached (attaches now); release: drop one hold;
   * idle: detach now if nothing needs them; no op: just report */
  hooks(op?: 'hold' | 'release' | 'idle'): HooksState;
  /**
   * The poll thread drains the ring and hands over what it holds now, not at maxLatencyMs.
   * Absent from an addon built before native/batcher.cc had it: callers then wait, as before.
   */
  flushSoon?(): void;
  addSensitive(kernelDev: number, inode: bigint): void;
  clearSensitive(): void;
  /** a sensitive name under a directory (its kernel identity): matches whatever inode later holds the name */
  addSensitiveName(parentKernelDev: number, parentInode: bigint, name: string): void;
  /** the kernel's (s_dev, inode) of each fd of this process; throws when the iterator is unavailable */
  kernelIdentities(): { fd: number; dev: number; ino: bigint }[];
  stats(): NativeStats;
  /** the processes with the most ring drops, most first */
  dropsByProcess(max?: number): DropperRow[];
  /** every repeat counter; those idle since before the cutoff are deleted (after close: the final sweep, once) */
  sweepSuppressed(deleteBeforeNs: bigint): SuppressRow[];
  /** --tls-metadata: the TLS uprobes on one ELF file (native/uprobe_attach.c); never after close() */
  attachTlsUprobes(path: string): { attached: number; error: number; functions: { func: string; error: number }[] };
  /** test hook: the next n polls fail with -errno */
  injectPollErrors(n: number, errno: number): void;
  /** test hook: close()'s worker lingers this long after queueing the last batch */
  injectCloseDelay(ms: number): void;
  close(): Promise<void>;
}

export interface NativeModule {
  Sensor: new (opts: NativeSensorOptions) => NativeSensor;
  layout: Record<string, number>;
  sourceHash: string;
  wireVersion: number;
  clockOffsets(): { bootNs: bigint; realNs: bigint };
  /** SO_PEERCRED of a connected Unix socket (native/peercred.cc); absent in an addon built before it */
  peerCred?(fd: number): { pid: number; uid: number; gid: number };
}

/** Package root: this file is src/sensor/ or dist/sensor/, two levels down. */
export { PACKAGE_ROOT };

let cached: NativeModule | undefined;

/**
 * Loads the addon (a fresh build in build/Release wins over the committed
 * prebuild, as node-gyp-build does) and refuses it when its wire layout
 * differs from the decoder's.
 */
export function loadNative(path?: string): NativeModule {
  if (cached && path === undefined) return cached;
  const require = createRequire(import.meta.url);
  let mod: NativeModule;
  try {
    mod = path ? (require(path) as NativeModule) : (require('node-gyp-build')(PACKAGE_ROOT) as NativeModule);
  } catch (err) {
    throw new WitnessError('E_NATIVE',
      `the native sensor addon is missing or failed to load (${(err as Error).message.split('\n')[0]}); ` +
      'build it with `npm run build:deps && npm run build:native`', { cause: err });
  }
  checkLayout(mod.layout);
  if (path === undefined) cached = mod;
  return mod;
}
