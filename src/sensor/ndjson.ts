import type { Attributes, Envelope } from '../events/envelope.js';
import { WITNESS_FLAG_NAMES } from '../events/schemas.js';
import type { EventName } from '../events/names.js';
import { isBoundaryEvent } from './boundary-types.js';
import { boundaryAttrs, userMemoryFields } from './ndjson-boundary.js';
import { toNetEnvelope } from './ndjson-net.js';
import type { BindEvent, ScopeOverflowEvent, SuppressedEvent, ConnectEvent, DnsEvent, EventHeader, ExecEvent, ExitEvent, FileEvent, PtraceEvent, RenameEvent, SensorEvent, SetidEvent } from './types.js';

/**
 * Maps decoded sensor events to NDJSON envelopes (docs/ndjson.md is the
 * contract; src/events/schemas.ts validates it). Runs once per event on the
 * hot path: plain object literals, no closures, no regexes, no spreads.
 */

/** CLOCK_BOOTTIME and CLOCK_REALTIME sampled back to back by the addon (clockOffsets()). */
export interface ClockOffsets { bootNs: bigint; realNs: bigint }
export interface BootClock { bootToEpochNs: bigint }

/**
 * The offset that turns a BPF timestamp (bpf_ktime_get_boot_ns) into Unix
 * epoch ns. Node has no CLOCK_BOOTTIME, so the addon samples both clocks
 * together in C; resample after a wall-clock step (NTP, suspend) to follow it.
 */
export function bootToEpochOffsetNs(offsets: ClockOffsets): bigint {
  return offsets.realNs - offsets.bootNs;
}

const OPEN_FLAG_BITS: readonly [number, string][] = [
  [0o100, 'O_CREAT'], [0o200, 'O_EXCL'], [0o400, 'O_NOCTTY'], [0o1000, 'O_TRUNC'], [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'], [0o10000, 'O_DSYNC'], [0o20000, 'O_ASYNC'], [0o40000, 'O_DIRECT'],
  [0o100000, 'O_LARGEFILE'], [0o200000, 'O_DIRECTORY'], [0o400000, 'O_NOFOLLOW'], [0o1000000, 'O_NOATIME'],
  [0o2000000, 'O_CLOEXEC'], [0o4000000, 'O_SYNC'], [0o10000000, 'O_PATH'], [0o20000000, 'O_TMPFILE'],
];
const ACCESS_MODES = ['O_RDONLY', 'O_WRONLY', 'O_RDWR'];

/** open(2) flags (x86_64 values) as names; the access mode always comes first, unknown bits as hex. */
export function openFlagNames(flags: number): string[] {
  const acc = flags & 3;
  const names = [ACCESS_MODES[acc] ?? '0x3'];
  let rest = (flags & ~3) >>> 0;
  for (const [bit, name] of OPEN_FLAG_BITS) {
    if ((rest & bit) !== 0) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names;
}

const RENAME_FLAG_BITS: readonly [number, string][] = [[1, 'RENAME_NOREPLACE'], [2, 'RENAME_EXCHANGE'], [4, 'RENAME_WHITEOUT']];

export function renameFlagNames(flags: number): string[] {
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [bit, name] of RENAME_FLAG_BITS) {
    if ((rest & bit) !== 0) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names;
}

/** hdr.flags as names (WITNESS_FLAG_NAMES, unknown bits as bit_N). */
export function witnessFlagNames(flags: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 16; bit++) {
    if ((flags & (1 << bit)) !== 0) names.push(WITNESS_FLAG_NAMES[bit] ?? `bit_${bit}`);
  }
  return names;
}

const PTRACE_REQUESTS: Record<number, string> = {
  0: 'PTRACE_TRACEME', 1: 'PTRACE_PEEKTEXT', 2: 'PTRACE_PEEKDATA', 3: 'PTRACE_PEEKUSER', 4: 'PTRACE_POKETEXT',
  5: 'PTRACE_POKEDATA', 6: 'PTRACE_POKEUSER', 7: 'PTRACE_CONT', 8: 'PTRACE_KILL', 9: 'PTRACE_SINGLESTEP',
  12: 'PTRACE_GETREGS', 13: 'PTRACE_SETREGS', 14: 'PTRACE_GETFPREGS', 15: 'PTRACE_SETFPREGS', 16: 'PTRACE_ATTACH',
  17: 'PTRACE_DETACH', 18: 'PTRACE_GETFPXREGS', 19: 'PTRACE_SETFPXREGS', 24: 'PTRACE_SYSCALL',
  30: 'PTRACE_ARCH_PRCTL', 31: 'PTRACE_SYSEMU', 32: 'PTRACE_SYSEMU_SINGLESTEP', 33: 'PTRACE_SINGLEBLOCK',
  0x4200: 'PTRACE_SETOPTIONS', 0x4201: 'PTRACE_GETEVENTMSG', 0x4202: 'PTRACE_GETSIGINFO', 0x4203: 'PTRACE_SETSIGINFO',
  0x4204: 'PTRACE_GETREGSET', 0x4205: 'PTRACE_SETREGSET', 0x4206: 'PTRACE_SEIZE', 0x4207: 'PTRACE_INTERRUPT',
  0x4208: 'PTRACE_LISTEN', 0x4209: 'PTRACE_PEEKSIGINFO', 0x420a: 'PTRACE_GETSIGMASK', 0x420b: 'PTRACE_SETSIGMASK',
  0x420c: 'PTRACE_SECCOMP_GET_FILTER', 0x420d: 'PTRACE_SECCOMP_GET_METADATA', 0x420e: 'PTRACE_GET_SYSCALL_INFO',
  0x420f: 'PTRACE_GET_RSEQ_CONFIGURATION', 0x4210: 'PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG',
  0x4211: 'PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG',
};

export function ptraceRequestName(request: bigint): string {
  const name = request >= 0n && request <= 0x4211n ? PTRACE_REQUESTS[Number(request)] : undefined;
  return name ?? request.toString();
}

/** network.transport from the socket's type and protocol (SOCK_* / IPPROTO_*). */
export function networkTransport(sockType: number, protocol: number): 'tcp' | 'udp' | 'raw' | 'unknown' {
  const type = sockType & 0xf; // SOCK_NONBLOCK / SOCK_CLOEXEC sit above the type bits
  if (type === 3) return 'raw';
  if (type === 1 || type === 0) {
    if (protocol === 6 || protocol === 262 /* MPTCP */ || (type === 1 && protocol === 0)) return 'tcp';
  }
  if (type === 2 || type === 0) {
    if (protocol === 17 || protocol === 136 /* UDP-Lite */ || (type === 2 && protocol === 0)) return 'udp';
  }
  return 'unknown';
}

function networkType(family: number): 'ipv4' | 'ipv6' | null {
  return family === 2 ? 'ipv4' : family === 10 ? 'ipv6' : null;
}

function octalMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

// Events of one cgroup come in runs; formatting the 64-bit id once per run
// keeps a BigInt#toString off the per-event path.
let lastCgroup = -1n;
let lastCgroupText = '';
function cgroupText(id: bigint): string {
  if (id !== lastCgroup) {
    lastCgroup = id;
    lastCgroupText = id.toString();
  }
  return lastCgroupText;
}

// Same output as rfc3339Nanos (src/events/envelope.ts; test/ndjson.test.ts
// checks they agree) at ~1/10 of its cost: events arrive in time order, so
// the `YYYY-MM-DDTHH:MM:SS.` prefix is built once per second, not per event.
let lastSecondNs = -1n; // the epoch ns at which the current prefix's second starts
let lastPrefix = '';
const NINE_ZEROS = '000000000';
const NS_PER_S = 1_000_000_000n;

/** RFC 3339 UTC with nanoseconds for an instant in epoch nanoseconds (>= 0). */
export function eventTime(epochNs: bigint): string {
  // within the last second: one subtraction, no division (BigInt division is the costly part)
  let d = epochNs - lastSecondNs;
  if (lastSecondNs < 0n || d < 0n || d >= NS_PER_S) {
    const seconds = epochNs / NS_PER_S;
    lastSecondNs = seconds * NS_PER_S;
    lastPrefix = `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.`;
    d = epochNs - lastSecondNs;
  }
  const frac = String(Number(d));
  return `${lastPrefix}${frac.length === 9 ? frac : NINE_ZEROS.slice(frac.length) + frac}Z`;
}

// The hot path's time, from the BPF timestamp: within the epoch second last seen, in plain Number
// arithmetic on boot ns (exact below 2^53, ~104 days of uptime), no BigInt sum or difference per event
// (each one a heap allocation: ~5 % of the storm's event loop). Anything else takes eventTime.
let bootSecondStart = -1; // boot ns at which the current epoch second starts, for `bootOffset`
let bootOffset = -1n;
let bootPrefix = '';

/** eventTime(tsBootNs + clock.bootToEpochNs), byte for byte. */
export function bootEventTime(tsBootNs: bigint, clock: BootClock): string {
  const b = Number(tsBootNs);
  if (clock.bootToEpochNs === bootOffset && b <= Number.MAX_SAFE_INTEGER) {
    const d = b - bootSecondStart;
    if (d >= 0 && d < 1e9) {
      const frac = String(d);
      return `${bootPrefix}${frac.length === 9 ? frac : NINE_ZEROS.slice(frac.length) + frac}Z`;
    }
  }
  const epochNs = tsBootNs + clock.bootToEpochNs;
  const text = eventTime(epochNs);
  const start = lastSecondNs - clock.bootToEpochNs; // eventTime just set lastSecondNs to epochNs's second
  if (start >= 0n && start <= BigInt(Number.MAX_SAFE_INTEGER) && b <= Number.MAX_SAFE_INTEGER) {
    bootSecondStart = Number(start);
    bootOffset = clock.bootToEpochNs;
    bootPrefix = lastPrefix;
  } else {
    bootOffset = -1n;
  }
  return text;
}

function envelope(ev: EventHeader, clock: BootClock, event: EventName, attributes: Attributes): Envelope {
  if (ev.flags !== 0) attributes['witness.flags'] = witnessFlagNames(ev.flags);
  if (ev.flags !== 0 || event === 'dns.query') {
    const um = userMemoryFields(event, ev.flags, typeof attributes['witness.result'] === 'number' ? attributes['witness.result'] : 0);
    if (um !== null) attributes['witness.user_memory'] = um;
  }
  return { time: bootEventTime(ev.tsBootNs, clock), event, attributes };
}

const FILE_EVENT_NAMES = { file_write: 'file.write', file_read_sensitive: 'file.read_sensitive' } as const;

/** The NDJSON envelope for one event; null for fork (it only feeds the process tree). */
export function toEnvelope(ev: SensorEvent, clock: BootClock): Envelope | null {
  switch (ev.kind) {
    case 'exec': return envelope(ev, clock, 'process.exec', execAttrs(ev));
    case 'exit': return envelope(ev, clock, 'process.exit', exitAttrs(ev));
    case 'fork': return null;
    case 'connect': return envelope(ev, clock, 'network.connect', connectAttrs(ev));
    case 'dns': return envelope(ev, clock, 'dns.query', dnsAttrs(ev));
    case 'file_write':
    case 'file_read_sensitive': return envelope(ev, clock, FILE_EVENT_NAMES[ev.kind], fileAttrs(ev));
    case 'file_unlink': return envelope(ev, clock, 'file.unlink', unlinkAttrs(ev));
    case 'file_rename': return envelope(ev, clock, 'file.rename', renameAttrs(ev));
    case 'setuid': return envelope(ev, clock, 'security.setuid', setidAttrs(ev));
    case 'setgid': return envelope(ev, clock, 'security.setgid', setidAttrs(ev));
    case 'ptrace': return envelope(ev, clock, 'security.ptrace', ptraceAttrs(ev));
    case 'bind': return envelope(ev, clock, 'security.bind', bindAttrs(ev));
    case 'scope_overflow': return envelope(ev, clock, 'sensor.scope_overflow', scopeOverflowAttrs(ev));
    case 'suppressed': return envelope(ev, clock, 'sensor.suppressed', suppressedAttrs(ev, clock));
    default: {
      if (isBoundaryEvent(ev)) { // the boundary (ndjson-boundary.ts)
        const [name, attrs] = boundaryAttrs(ev);
        return envelope(ev, clock, name, attrs);
      }
      return toNetEnvelope(ev, clock); // network depth (ndjson-net.ts)
    }
  }
}

// Each builder lists the common keys first, in the same order, so every
// attributes object of a kind shares one hidden class.

function execAttrs(ev: ExecEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'process.parent_pid': ev.ppid,
    'process.executable.path': ev.exe !== '' ? ev.exe : ev.filename,
    'process.command_args': ev.argv,
    'witness.exec.filename': ev.filename,
    'process.working_directory': ev.cwd,
    'witness.argc': ev.argc,
    'witness.euid': ev.euid,
    'witness.egid': ev.egid,
    ...(ev.root !== null ? { 'witness.process.root': ev.root } : {}),
  };
}

function exitAttrs(ev: ExitEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'process.parent_pid': ev.ppid,
    'process.exit.code': ev.exitCode,
    'witness.exit.signal': ev.signal,
    'witness.exit.core_dumped': ev.coreDumped,
  };
}

function connectAttrs(ev: ConnectEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'network.transport': networkTransport(ev.sockType, ev.protocol),
    'network.type': networkType(ev.peerFamily),
    'network.peer.address': ev.peerAddress,
    'network.peer.port': ev.peerPort,
    'witness.result': ev.ret,
    'witness.fd': ev.fd,
  };
}

function dnsAttrs(ev: DnsEvent): Attributes {
  const parsed = ev.dns;
  const questions = parsed.ok ? parsed.questions : [];
  const first = questions[0];
  const listed: string[] = [];
  for (const q of questions) listed.push(`${q.name} ${q.type}`);
  const attrs: Attributes = {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'dns.question.name': first === undefined ? null : first.name,
    'witness.dns.questions': listed,
    'witness.dns.type': first === undefined ? null : first.type,
    'witness.dns.id': parsed.ok ? parsed.id : null,
    'witness.dns.truncated': ev.payloadTruncated,
    'witness.dns.syscall': ev.syscall,
    'network.peer.address': ev.peerAddress,
    'network.peer.port': ev.peerPort,
    'network.transport': networkTransport(ev.sockType, ev.protocol),
    'network.type': networkType(ev.peerFamily),
  };
  if (!parsed.ok) attrs['witness.dns.parse_error'] = parsed.error;
  return attrs;
}

// The kernel reads open(2)'s mode only when the call can create a file.
const MODE_MATTERS = 0o100 /* O_CREAT */ | 0o20000000 /* O_TMPFILE */;

// A storm opens with the same flags record after record: one frozen list per flags value
// (bounded: past FLAG_LISTS_MAX distinct values each record gets its own list).
const FLAG_LISTS_MAX = 256;
const flagLists = new Map<number, string[]>();
function openFlagList(flags: number): string[] {
  let names = flagLists.get(flags);
  if (names === undefined) {
    names = openFlagNames(flags);
    if (flagLists.size < FLAG_LISTS_MAX) flagLists.set(flags, Object.freeze(names) as string[]);
  }
  return names;
}

function fileAttrs(ev: FileEvent): Attributes {
  const a: Attributes = {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'file.path': ev.path,
    'witness.result': ev.ret,
    'witness.open.flags': openFlagList(ev.openFlags),
  };
  if ((ev.openFlags & MODE_MATTERS) !== 0) a['witness.open.mode'] = octalMode(ev.mode);
  return a;
}

function unlinkAttrs(ev: FileEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'file.path': ev.path,
    'witness.result': ev.ret,
  };
}

function renameAttrs(ev: RenameEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'file.path': ev.newPath,
    'witness.file.old_path': ev.oldPath,
    'witness.rename.flags': renameFlagNames(ev.renameFlags),
    'witness.result': ev.ret,
  };
}

function setidAttrs(ev: SetidEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'witness.syscall': ev.syscall,
    'witness.ids.old': [String(ev.oldIds[0]), String(ev.oldIds[1]), String(ev.oldIds[2])],
    'witness.ids.new': [String(ev.newIds[0]), String(ev.newIds[1]), String(ev.newIds[2])],
    'witness.result': ev.ret,
  };
}

function ptraceAttrs(ev: PtraceEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'witness.ptrace.request': ptraceRequestName(ev.request),
    'witness.ptrace.target_pid': ev.targetPid,
    'witness.result': ev.ret,
  };
}

function bindAttrs(ev: BindEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'network.local.address': ev.localAddress,
    'network.local.port': ev.localPort,
    'network.transport': networkTransport(ev.sockType, ev.protocol),
    'network.type': networkType(ev.localFamily),
    'witness.result': ev.ret,
    'witness.fd': ev.fd,
  };
}

function scopeOverflowAttrs(ev: ScopeOverflowEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'witness.escaped.pid': ev.childPid,
    'witness.traced.root_pid': ev.rootPid,
    'witness.traced.depth': ev.depth,
    'witness.result': ev.error,
  };
}

function suppressedAttrs(ev: SuppressedEvent, clock: BootClock): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': cgroupText(ev.cgroupId),
    'witness.suppressed.kind': ev.suppressedKind,
    'witness.suppressed.key': ev.key,
    'witness.suppressed.key_truncated': ev.keyTruncated,
    'witness.suppressed.key_hash': ev.keyHash,
    'witness.suppressed.count': ev.count,
    'witness.suppressed.from': eventTime(ev.fromBootNs + clock.bootToEpochNs),
    'witness.suppressed.to': eventTime(ev.toBootNs + clock.bootToEpochNs),
    'witness.suppressed.window_ms': ev.windowNs / 1e6,
    'witness.suppressed.budget': ev.budget,
    'witness.suppressed.final': ev.final,
  };
}
