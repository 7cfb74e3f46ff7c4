import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WitnessError } from '../errors.js';
import { checkLayout } from './layout.js';

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
  kernelEmitted: Record<string, number>;
  kernelDropped: Record<string, number>;
  batches: number;
  records: number;
  bytes: number;
  userDropped: number;
  closed: boolean;
}

export interface NativeSensorOptions {
  onBatch: (batch: ArrayBuffer, records: number) => void;
  ringBytes?: number;
  wakeupBytes?: number;
  batchBytes?: number;
  maxLatencyMs?: number;
  traceAll?: boolean;
}

export interface NativeSensor {
  capabilities(): ProgramStatus[];
  start(): void;
  addRoot(pid: number): void;
  remove(pid: number): void;
  isTraced(pid: number): boolean;
  armSpawn(parentPid: number): void;
  /** disarms; returns the pid that was still armed, 0 when a fork consumed it */
  disarmSpawn(): number;
  setTraceAll(on: boolean): void;
  addSensitive(kernelDev: number, inode: bigint): void;
  clearSensitive(): void;
  /** a sensitive name under a directory (its kernel identity): matches whatever inode later holds the name */
  addSensitiveName(parentKernelDev: number, parentInode: bigint, name: string): void;
  /** the kernel's (s_dev, inode) of each fd of this process; throws when the iterator is unavailable */
  kernelIdentities(): { fd: number; dev: number; ino: bigint }[];
  stats(): NativeStats;
  close(): Promise<void>;
}

export interface NativeModule {
  Sensor: new (opts: NativeSensorOptions) => NativeSensor;
  layout: Record<string, number>;
  sourceHash: string;
  wireVersion: number;
  clockOffsets(): { bootNs: bigint; realNs: bigint };
}

/** Package root: this file is src/sensor/ or dist/sensor/, two levels down. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

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
