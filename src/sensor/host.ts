import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { WitnessError } from '../errors.js';

export const BTF_PATH = '/sys/kernel/btf/vmlinux';
export const TRACEFS = '/sys/kernel/tracing';

// Capability bit numbers (linux/capability.h).
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/**
 * Loading BPF needs CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN); reading other
 * processes' memory for argv needs root in practice. One line says what is
 * missing and how to fix it.
 */
export function checkPrivileges(): void {
  const caps = effectiveCaps();
  const has = (bit: number): boolean => (caps & (1n << BigInt(bit))) !== 0n;
  if (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) return;
  const missing = [!has(CAP_BPF) && 'CAP_BPF', !has(CAP_PERFMON) && 'CAP_PERFMON'].filter(Boolean).join(' and ');
  throw new WitnessError('E_PRIVILEGE',
    `missing ${missing} (uid ${process.getuid?.()}): run witness as root, e.g. \`sudo witness ...\``);
}

export function checkBtf(path = BTF_PATH): void {
  if (!existsSync(path)) {
    throw new WitnessError('E_KERNEL',
      `kernel ${release()} has no BTF at ${path}: CO-RE probes need CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.4 have it)`);
  }
}

/** Tracepoints attach through tracefs; mount it when it is missing. */
export function ensureTracefs(): 'mounted' | 'present' {
  if (existsSync(`${TRACEFS}/events`)) return 'present';
  const r = spawnSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(`${TRACEFS}/events`)) {
    throw new WitnessError('E_KERNEL',
      `tracefs is not mounted at ${TRACEFS} and mounting it failed (${(r.stderr || r.error?.message || '').trim()}): ` +
      `run \`mount -t tracefs tracefs ${TRACEFS}\``);
  }
  return 'mounted';
}

export interface HostFacts {
  kernel: string;
  btf: boolean;
  tracefs: boolean;
  uid: number;
}

export function hostFacts(): HostFacts {
  return { kernel: release(), btf: existsSync(BTF_PATH), tracefs: existsSync(`${TRACEFS}/events`), uid: process.getuid?.() ?? -1 };
}
