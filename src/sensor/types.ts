import type { DnsParseResult } from './dns.js';
import type { BoundaryEvent } from './boundary-types.js';
import { BOUNDARY_KIND_NAMES } from './boundary-types.js';
import { LAYOUT as L } from './layout.js';
import type { NetDepthEvent } from './types-net.js';

/**
 * Typed sensor events, one per wire record (bpf/events.h), discriminated on
 * `kind`. Every event carries the header fields flat (one object per record,
 * no nested header object, so decoding allocates as little as possible).
 *
 * `tsBootNs` and `cgroupId` are 64-bit values and stay bigint: boot-time
 * nanoseconds pass 2^53 after ~104 days of uptime and cgroup ids are opaque
 * 64-bit inode numbers. Everything else fits a Number exactly.
 */
export interface EventHeader {
  /** tgid */
  pid: number;
  tid: number;
  /** real uid / gid at the event */
  uid: number;
  gid: number;
  /** cgroup v2 id (inode of the cgroup directory) */
  cgroupId: bigint;
  /** task comm, at most 15 bytes */
  comm: string;
  /** CLOCK_BOOTTIME nanoseconds */
  tsBootNs: bigint;
  /** raw `hdr.flags` (WA_F_*); the flags that matter to a kind are also booleans on it */
  flags: number;
}

export interface ExecEvent extends EventHeader {
  kind: 'exec';
  ppid: number;
  /** argv entries the kernel saw; may exceed argv.length when argvTruncated */
  argc: number;
  euid: number;
  egid: number;
  /** the path as passed to execve */
  filename: string;
  argv: string[];
  cwd: string;
  /** resolved path of the executable file ('' when the probe could not resolve it) */
  exe: string;
  /** chrooted (WA_F_CHROOT): the process's root from its mount namespace's root; cwd and exe
   * are relative to it. null when the root is the namespace's root */
  root: string | null;
  argvTruncated: boolean;
  filenameTruncated: boolean;
  pathTruncated: boolean;
}

export interface ExitEvent extends EventHeader {
  kind: 'exit';
  ppid: number;
  /** raw wait status: (code << 8) | signal, 0x80 = core dumped */
  status: number;
  /** exit code when the process exited normally, null when a signal killed it */
  exitCode: number | null;
  /** the killing signal, null on a normal exit */
  signal: number | null;
  coreDumped: boolean;
}

export interface ForkEvent extends EventHeader {
  kind: 'fork';
  /** pid is the parent tgid */
  childPid: number;
}

/** Socket identity shared by connect / bind / dns. Addresses: family AF_INET = 2 or AF_INET6 = 10, else a null address. */
export interface SocketFields {
  /** SOCK_STREAM=1, SOCK_DGRAM=2, SOCK_RAW=3, 0 unknown */
  sockType: number;
  /** IPPROTO_* of the socket, 0 unknown */
  protocol: number;
}

export interface ConnectEvent extends EventHeader, SocketFields {
  kind: 'connect';
  ret: number;
  fd: number;
  peerFamily: number;
  /** dotted IPv4, RFC 5952 IPv6 (v4-mapped as ::ffff:a.b.c.d), null for other families */
  peerAddress: string | null;
  peerPort: number;
}

export interface BindEvent extends EventHeader, SocketFields {
  kind: 'bind';
  ret: number;
  fd: number;
  localFamily: number;
  localAddress: string | null;
  localPort: number;
}

export type SendSyscall = 'sendto' | 'sendmsg' | 'sendmmsg' | 'write' | 'writev';

export interface DnsEvent extends EventHeader, SocketFields {
  kind: 'dns';
  peerFamily: number;
  peerAddress: string | null;
  peerPort: number;
  /** the send syscall's name, or its wire number as a string when unknown */
  syscall: SendSyscall | string;
  /** bytes captured */
  payloadLen: number;
  /** bytes the syscall was asked to send */
  origLen: number;
  payloadTruncated: boolean;
  /** the captured payload, parsed at decode time so the event holds no view of the batch buffer */
  dns: DnsParseResult;
}

export type FileKind = 'file_write' | 'file_unlink' | 'file_read_sensitive';

export interface FileEvent extends EventHeader {
  kind: FileKind;
  ret: number;
  /** open(2) flags; 0 for unlink */
  openFlags: number;
  mode: number;
  path: string;
  pathTruncated: boolean;
  /** the path could not be anchored and is as the caller gave it */
  relativePath: boolean;
}

export interface RenameEvent extends EventHeader {
  kind: 'file_rename';
  ret: number;
  renameFlags: number;
  oldPath: string;
  newPath: string;
  pathTruncated: boolean;
  relativePath: boolean;
}

export type SetidSyscall = 'setuid' | 'setreuid' | 'setresuid' | 'setgid' | 'setregid' | 'setresgid';

export interface SetidEvent extends EventHeader {
  kind: 'setuid' | 'setgid';
  ret: number;
  /** the syscall's name, or its wire number as a string when unknown */
  syscall: SetidSyscall | string;
  /** [real, effective, saved] */
  oldIds: [number, number, number];
  newIds: [number, number, number];
}

export interface PtraceEvent extends EventHeader {
  kind: 'ptrace';
  ret: number;
  targetPid: number;
  /** `long request` of ptrace(2); bigint because the wire field is s64 and garbage must stay exact */
  request: bigint;
}

/** A traced process forked a child the traced set had no room for: the child runs untraced. */
export interface ScopeOverflowEvent extends EventHeader {
  kind: 'scope_overflow';
  /** the escaped child's tgid (pid is the parent's) */
  childPid: number;
  rootPid: number;
  depth: number;
  /** the kernel's -errno for the failed insert (-7 E2BIG: full) */
  error: number;
}

/** Kinds whose repeats past a process's budget are counted instead of written. */
export type SuppressibleKind = 'file_write' | 'dns' | 'connect';

/**
 * Repeats the kernel counted instead of writing (bpf/budget.bpf.h), summarised
 * by the sensor from the kernel's counters, not decoded from a record. The
 * header fields are the process's when its first repeat of this key was
 * counted; tsBootNs is the last repeat. `count` is the repeats since this
 * key's previous summary: the counts of every summary add up exactly to the
 * kernel's per-kind suppressed totals.
 */
export interface SuppressedEvent extends EventHeader {
  kind: 'suppressed';
  suppressedKind: SuppressibleKind | string;
  /** the key as text: the path, `address:port`, or the DNS question ("name TYPE"); null when unknown */
  key: string | null;
  /** the key was longer than WA_SUPP_KEY_MAX bytes and `key` is its start */
  keyTruncated: boolean;
  /** the kernel's keyed hash of the whole key, hex */
  keyHash: string;
  count: number;
  /** CLOCK_BOOTTIME of the first and last repeat this summary covers */
  fromBootNs: bigint;
  toBootNs: bigint;
  /** the budget window (ns) and budget (records per window) in force */
  windowNs: number;
  budget: number;
  /** true for the summaries taken after the probes were detached (counts final) */
  final: boolean;
}

export type SensorEvent =
  | ScopeOverflowEvent
  | SuppressedEvent
  | ExecEvent
  | ExitEvent
  | ForkEvent
  | ConnectEvent
  | DnsEvent
  | FileEvent
  | RenameEvent
  | SetidEvent
  | PtraceEvent
  | BindEvent
  | BoundaryEvent
  | NetDepthEvent;

export type SensorEventKind = SensorEvent['kind'];

/** Record kinds by wire type number (hdr.type). */
export const RECORD_KIND_NAMES: Record<number, SensorEventKind> = {
  [L.WA_EV_EXEC]: 'exec', [L.WA_EV_EXIT]: 'exit', [L.WA_EV_FORK]: 'fork', [L.WA_EV_CONNECT]: 'connect',
  [L.WA_EV_DNS]: 'dns', [L.WA_EV_FILE_WRITE]: 'file_write', [L.WA_EV_FILE_UNLINK]: 'file_unlink',
  [L.WA_EV_FILE_RENAME]: 'file_rename', [L.WA_EV_FILE_READ_SENSITIVE]: 'file_read_sensitive',
  [L.WA_EV_SETUID]: 'setuid', [L.WA_EV_SETGID]: 'setgid', [L.WA_EV_PTRACE]: 'ptrace', [L.WA_EV_BIND]: 'bind',
  ...BOUNDARY_KIND_NAMES,
  [L.WA_EV_SCOPE_OVERFLOW]: 'scope_overflow',
  [L.WA_EV_STREAM_HEAD]: 'stream_head', [L.WA_EV_DNS_ANSWER]: 'dns_answer', [L.WA_EV_CONN_END]: 'conn_end',
  [L.WA_EV_UNIX_CONNECT]: 'unix_connect', [L.WA_EV_LISTEN]: 'listen', [L.WA_EV_ACCEPT]: 'accept',
  [L.WA_EV_TLS_DATA]: 'tls_data',
};

/** enum wa_send_syscall */
export const SEND_SYSCALL_NAMES: Record<number, SendSyscall> = {
  [L.WA_SEND_SENDTO]: 'sendto', [L.WA_SEND_SENDMSG]: 'sendmsg', [L.WA_SEND_SENDMMSG]: 'sendmmsg', [L.WA_SEND_WRITE]: 'write',
  [L.WA_SEND_WRITEV]: 'writev',
};

/** enum wa_setid_syscall */
export const SETID_SYSCALL_NAMES: Record<number, SetidSyscall> = {
  [L.WA_SETID_SETUID]: 'setuid', [L.WA_SETID_SETREUID]: 'setreuid', [L.WA_SETID_SETRESUID]: 'setresuid',
  [L.WA_SETID_SETGID]: 'setgid', [L.WA_SETID_SETREGID]: 'setregid', [L.WA_SETID_SETRESGID]: 'setresgid',
};
