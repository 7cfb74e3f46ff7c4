import type { Attributes } from '../events/envelope.js';
import type { EventName } from '../events/names.js';
import type { BoundaryEvent, IoUringEvent, KillEvent, SysopEvent } from './boundary-types.js';
import { LAYOUT as L } from './layout.js';

/**
 * NDJSON attributes of the boundary events (docs/ndjson.md, "The boundary")
 * and the `witness.user_memory` list every event carries when a field came
 * from the caller's memory rather than a kernel object.
 */

const O_CREAT_BITS = ['witness.open.flags'];

/**
 * The fields of `event` that came from user memory, or null when none did.
 * dns.query always (the payload is the caller's buffer); the rest when the
 * probe set WA_F_USER_MEMORY (bpf/events.h).
 */
export function userMemoryFields(event: EventName, flags: number, ret: number): string[] | null {
  if (event === 'dns.query') return ['dns.question.name', 'witness.dns.questions', 'witness.dns.type', 'witness.dns.id', 'network.peer.address', 'network.peer.port'];
  if ((flags & L.WA_F_USER_MEMORY) === 0) return null;
  switch (event) {
    case 'network.connect':
    case 'security.io_uring': return ['network.peer.address', 'network.peer.port'];
    case 'security.bind': return ['network.local.address', 'network.local.port'];
    case 'file.write':
    case 'file.read_sensitive': return ret < 0 ? ['file.path', 'witness.open.flags', 'witness.open.mode'] : O_CREAT_BITS;
    case 'file.unlink': return ['file.path'];
    case 'file.rename': return ['file.path', 'witness.file.old_path'];
    case 'security.link': return ['file.path', 'witness.link.target'];
    case 'security.symlink': return ['file.path', 'witness.link.target'];
    case 'security.chmod': return ['file.path'];
    case 'security.memfd': return ['witness.memfd.name'];
    case 'security.module': return ['witness.module.params'];
    case 'security.bpf': return ['witness.bpf.prog_type'];
    case 'security.mount': return ['witness.mount.source', 'file.path'];
    default: return [];
  }
}

const SIGNALS = ['', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN',
  'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS'];

export function signalName(sig: number): string {
  return SIGNALS[sig] || (sig >= 34 && sig <= 64 ? `SIGRTMIN+${sig - 34}` : String(sig));
}

const CLONE_NS_BITS: readonly [number, string][] = [
  [0x00000080, 'CLONE_NEWTIME'], [0x00020000, 'CLONE_NEWNS'], [0x02000000, 'CLONE_NEWCGROUP'], [0x04000000, 'CLONE_NEWUTS'],
  [0x08000000, 'CLONE_NEWIPC'], [0x10000000, 'CLONE_NEWUSER'], [0x20000000, 'CLONE_NEWPID'], [0x40000000, 'CLONE_NEWNET'],
  [0x00000200, 'CLONE_FS'], [0x00000400, 'CLONE_FILES'], [0x00040000, 'CLONE_SYSVSEM'],
];

function bitNames(value: number, bits: readonly [number, string][]): string[] {
  const names: string[] = [];
  let rest = value >>> 0;
  for (const [bit, name] of bits) {
    if ((rest & bit) !== 0) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names;
}

const MEMFD_BITS: readonly [number, string][] = [[1, 'MFD_CLOEXEC'], [2, 'MFD_ALLOW_SEALING'], [4, 'MFD_HUGETLB'], [8, 'MFD_NOEXEC_SEAL'], [0x10, 'MFD_EXEC']];
/** bpf(2) command names by number (include/uapi/linux/bpf.h; the numbers are ABI) */
export const BPF_CMDS: readonly string[] = ['BPF_MAP_CREATE', 'BPF_MAP_LOOKUP_ELEM', 'BPF_MAP_UPDATE_ELEM', 'BPF_MAP_DELETE_ELEM', 'BPF_MAP_GET_NEXT_KEY',
  'BPF_PROG_LOAD', 'BPF_OBJ_PIN', 'BPF_OBJ_GET', 'BPF_PROG_ATTACH', 'BPF_PROG_DETACH', 'BPF_PROG_TEST_RUN',
  'BPF_PROG_GET_NEXT_ID', 'BPF_MAP_GET_NEXT_ID', 'BPF_PROG_GET_FD_BY_ID', 'BPF_MAP_GET_FD_BY_ID', 'BPF_OBJ_GET_INFO_BY_FD',
  'BPF_PROG_QUERY', 'BPF_RAW_TRACEPOINT_OPEN', 'BPF_BTF_LOAD', 'BPF_BTF_GET_FD_BY_ID', 'BPF_TASK_FD_QUERY',
  'BPF_MAP_LOOKUP_AND_DELETE_ELEM', 'BPF_MAP_FREEZE', 'BPF_BTF_GET_NEXT_ID', 'BPF_MAP_LOOKUP_BATCH',
  'BPF_MAP_LOOKUP_AND_DELETE_BATCH', 'BPF_MAP_UPDATE_BATCH', 'BPF_MAP_DELETE_BATCH', 'BPF_LINK_CREATE', 'BPF_LINK_UPDATE',
  'BPF_LINK_GET_FD_BY_ID', 'BPF_LINK_GET_NEXT_ID', 'BPF_ENABLE_STATS', 'BPF_ITER_CREATE', 'BPF_LINK_DETACH', 'BPF_PROG_BIND_MAP',
  'BPF_TOKEN_CREATE'];

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

function base(ev: BoundaryEvent): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': ev.cgroupId.toString(),
  };
}

/** The event name and attributes of a boundary record. */
export function boundaryAttrs(ev: BoundaryEvent): [EventName, Attributes] {
  switch (ev.kind) {
    case 'kill': return ['security.kill', killAttrs(ev)];
    case 'io_uring': return ['security.io_uring', ioUringAttrs(ev)];
    default: return sysopAttrs(ev);
  }
}

function killAttrs(ev: KillEvent): Attributes {
  const a = base(ev);
  a['witness.signal.number'] = ev.sig;
  a['witness.signal.name'] = signalName(ev.sig);
  a['witness.signal.target_pid'] = ev.targetPid;
  a['witness.signal.target_tid'] = ev.targetTid;
  a['witness.signal.code'] = ev.code;
  a['witness.signal.source'] = ev.source;
  a['witness.signal.delivery'] = ev.delivery;
  a['witness.syscall'] = ev.syscall;
  a['witness.result'] = ev.ret;
  return a;
}

function ioUringAttrs(ev: IoUringEvent): Attributes {
  const a = base(ev);
  a['witness.io_uring.opcode'] = ev.opName;
  a['witness.io_uring.sq_thread'] = ev.sqThread;
  a['witness.fd'] = ev.fd;
  const op = ev.opName;
  if (op === 'RENAMEAT' || op === 'LINKAT') {
    a['file.path'] = ev.path2;
    a['witness.file.old_path'] = ev.path;
  } else if (op === 'SYMLINKAT') {
    a['file.path'] = ev.path2;
    a['witness.link.target'] = ev.path;
  } else if (ev.path !== '') {
    a['file.path'] = ev.path;
  }
  if (op === 'OPENAT' || op === 'OPENAT2' || op === 'SETUP') a['witness.io_uring.op_flags'] = ev.opFlags;
  if (op === 'CONNECT') {
    a['network.peer.address'] = ev.peerAddress;
    a['network.peer.port'] = ev.peerPort;
  }
  return a;
}

/** witness.chmod.special by the mode's top three bits, frozen: one list per value (the line writer remembers a frozen list's JSON). */
const SPECIAL_BITS: readonly string[][] = Array.from({ length: 8 }, (_, b) => Object.freeze([
  ...((b & 4) !== 0 ? ['setuid'] : []), ...((b & 2) !== 0 ? ['setgid'] : []), ...((b & 1) !== 0 ? ['sticky'] : []),
]) as string[]);

function sysopAttrs(ev: SysopEvent): [EventName, Attributes] {
  const a = base(ev);
  a['witness.syscall'] = ev.syscall;
  a['witness.result'] = ev.ret;
  const [x0, x1, x2] = ev.args;
  switch (ev.kind) {
    case 'link':
      a['file.path'] = ev.path2;
      a['witness.link.target'] = ev.path;
      return ['security.link', a];
    case 'symlink':
      a['file.path'] = ev.path2;
      a['witness.link.target'] = ev.path;
      return ['security.symlink', a];
    case 'chmod': {
      a['file.path'] = ev.path;
      a['witness.chmod.mode'] = octal(x0);
      if (ev.syscall === 'fchmod') a['witness.chmod.mode_after'] = octal(x1);
      a['witness.chmod.special'] = SPECIAL_BITS[(x0 >> 9) & 7]!;
      a['witness.chmod.executable'] = (x0 & 0o111) !== 0;
      return ['security.chmod', a];
    }
    case 'memfd':
      a['witness.memfd.name'] = ev.path;
      a['witness.memfd.flags'] = bitNames(x0, MEMFD_BITS);
      return ['security.memfd', a];
    case 'module':
      a['file.path'] = ev.path === '' ? null : ev.path;
      a['witness.module.params'] = ev.path2;
      a['witness.module.size'] = ev.syscall === 'init_module' ? x0 : null;
      return ['security.module', a];
    case 'bpf':
      a['witness.bpf.cmd'] = BPF_CMDS[x0] ?? String(x0);
      a['witness.bpf.prog_type'] = x0 === 5 ? x1 : null;
      return ['security.bpf', a];
    case 'mount':
      a['witness.mount.source'] = ev.path;
      a['file.path'] = ev.path2;
      a['witness.mount.flags'] = x0;
      return ['security.mount', a];
    case 'namespace':
      a['witness.namespace.flags'] = bitNames(x0, CLONE_NS_BITS);
      if (ev.syscall === 'setns') {
        a['witness.namespace.inode'] = x1;
        a['witness.fd'] = x2;
      }
      return ['security.namespace', a];
  }
}
