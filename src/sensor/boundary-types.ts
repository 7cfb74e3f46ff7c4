import { LAYOUT as L } from './layout.js';
import type { EventHeader } from './types.js';

/**
 * Typed events of the boundary records (bpf/boundary.bpf.h, io_uring.bpf.h):
 * signals outside the sender's tree, io_uring submissions, and the rare
 * privilege/persistence syscalls that share struct wa_sysop.
 */

export interface KillEvent extends EventHeader {
  kind: 'kill';
  /** generated: 0 (see delivery); syscall: the failed call's -errno */
  ret: number;
  sig: number;
  /** the target's tgid; for a failed call, the pid argument as given (0, -1, -pgid possible) */
  targetPid: number;
  targetTid: number;
  /** si_code: 0 SI_USER, -1 SI_QUEUE, -6 SI_TKILL */
  code: number;
  /** generated: seen by signal_generate (after the permission check); syscall: a failed kill */
  source: 'generated' | 'syscall';
  /** the syscall's name for source 'syscall', null when generated */
  syscall: string | null;
  /** signal_generate's result for source 'generated', null otherwise */
  delivery: string | null;
}

export interface IoUringEvent extends EventHeader {
  kind: 'io_uring';
  fd: number;
  opcode: number;
  /** IORING_OP_* name, or the number as a string when unknown */
  opName: string;
  opFlags: number;
  sqThread: boolean;
  /** open / unlink / mkdir: the name; rename / link: the old name; symlink: the target text; '' when none */
  path: string;
  /** rename / link / symlink: the new name; '' otherwise */
  path2: string;
  peerFamily: number;
  peerAddress: string | null;
  peerPort: number;
}

export type SysopKind = 'link' | 'symlink' | 'chmod' | 'memfd' | 'module' | 'bpf' | 'mount' | 'namespace';

/** One struct wa_sysop record; what args and paths mean per syscall is in docs/ndjson.md. */
export interface SysopEvent extends EventHeader {
  kind: SysopKind;
  ret: number;
  syscall: string;
  path: string;
  path2: string;
  args: [number, number, number, number];
}

export type BoundaryEvent = KillEvent | IoUringEvent | SysopEvent;

export const BOUNDARY_KIND_NAMES: Record<number, BoundaryEvent['kind']> = {
  [L.WA_EV_KILL]: 'kill', [L.WA_EV_IO_URING]: 'io_uring', [L.WA_EV_LINK]: 'link', [L.WA_EV_SYMLINK]: 'symlink',
  [L.WA_EV_CHMOD]: 'chmod', [L.WA_EV_MEMFD]: 'memfd', [L.WA_EV_MODULE]: 'module', [L.WA_EV_BPF]: 'bpf',
  [L.WA_EV_MOUNT]: 'mount', [L.WA_EV_NAMESPACE]: 'namespace',
};

/** enum wa_sysop_syscall */
export const SYSOP_SYSCALL_NAMES: Record<number, string> = {
  [L.WA_SYS_LINK]: 'link', [L.WA_SYS_LINKAT]: 'linkat', [L.WA_SYS_SYMLINK]: 'symlink', [L.WA_SYS_SYMLINKAT]: 'symlinkat',
  [L.WA_SYS_CHMOD]: 'chmod', [L.WA_SYS_FCHMOD]: 'fchmod', [L.WA_SYS_FCHMODAT]: 'fchmodat', [L.WA_SYS_FCHMODAT2]: 'fchmodat2',
  [L.WA_SYS_MEMFD_CREATE]: 'memfd_create', [L.WA_SYS_INIT_MODULE]: 'init_module', [L.WA_SYS_FINIT_MODULE]: 'finit_module',
  [L.WA_SYS_BPF]: 'bpf', [L.WA_SYS_MOUNT]: 'mount', [L.WA_SYS_UMOUNT2]: 'umount2', [L.WA_SYS_MOVE_MOUNT]: 'move_mount',
  [L.WA_SYS_UNSHARE]: 'unshare', [L.WA_SYS_SETNS]: 'setns', [L.WA_SYS_KILL]: 'kill', [L.WA_SYS_TKILL]: 'tkill',
  [L.WA_SYS_TGKILL]: 'tgkill', [L.WA_SYS_PIDFD_SEND_SIGNAL]: 'pidfd_send_signal',
};

/** signal_generate's `result` (enum trace_signal_result in the kernel) */
export const SIGNAL_DELIVERY = ['delivered', 'ignored', 'already_pending', 'overflow_fail', 'lose_info'] as const;

/** IORING_OP_* (include/uapi/linux/io_uring.h; the numbers are ABI) */
export const IORING_OP_NAMES: readonly string[] = [
  'NOP', 'READV', 'WRITEV', 'FSYNC', 'READ_FIXED', 'WRITE_FIXED', 'POLL_ADD', 'POLL_REMOVE', 'SYNC_FILE_RANGE',
  'SENDMSG', 'RECVMSG', 'TIMEOUT', 'TIMEOUT_REMOVE', 'ACCEPT', 'ASYNC_CANCEL', 'LINK_TIMEOUT', 'CONNECT',
  'FALLOCATE', 'OPENAT', 'CLOSE', 'FILES_UPDATE', 'STATX', 'READ', 'WRITE', 'FADVISE', 'MADVISE', 'SEND', 'RECV',
  'OPENAT2', 'EPOLL_CTL', 'SPLICE', 'PROVIDE_BUFFERS', 'REMOVE_BUFFERS', 'TEE', 'SHUTDOWN', 'RENAMEAT', 'UNLINKAT',
  'MKDIRAT', 'SYMLINKAT', 'LINKAT', 'MSG_RING', 'FSETXATTR', 'SETXATTR', 'FGETXATTR', 'GETXATTR', 'SOCKET',
  'URING_CMD', 'SEND_ZC', 'SENDMSG_ZC', 'READ_MULTISHOT', 'WAITID', 'FUTEX_WAIT', 'FUTEX_WAKE', 'FUTEX_WAITV',
  'FIXED_FD_INSTALL', 'FTRUNCATE', 'BIND', 'LISTEN', 'RECV_ZC', 'EPOLL_WAIT', 'READV_FIXED', 'WRITEV_FIXED', 'PIPE',
];

const BOUNDARY_KINDS: ReadonlySet<string> = new Set(Object.values(BOUNDARY_KIND_NAMES));

export function isBoundaryEvent(ev: { kind: string }): ev is BoundaryEvent {
  return BOUNDARY_KINDS.has(ev.kind);
}
