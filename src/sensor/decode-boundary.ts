import { LAYOUT as L } from './layout.js';
import { addressText, comm, utf8 } from './text.js';
import {
  BOUNDARY_KIND_NAMES, IORING_OP_NAMES, SIGNAL_DELIVERY, SYSOP_SYSCALL_NAMES, type BoundaryEvent, type SysopKind,
} from './boundary-types.js';

/**
 * Decoders of the boundary records (struct wa_kill, wa_io_uring, wa_sysop),
 * kept apart from decode.ts's hot-path kinds. Same rules: a record shorter
 * than its struct, or whose variable parts exceed their bounds or run past
 * it, is refused with the field that says why.
 */

export interface WireFailure { field: string; reason: string }

export function isBoundaryType(type: number): boolean {
  return BOUNDARY_KIND_NAMES[type] !== undefined;
}

function header(dv: DataView, o: number) {
  return {
    pid: dv.getUint32(o + L['wa_hdr.pid'], true), tid: dv.getUint32(o + L['wa_hdr.tid'], true),
    uid: dv.getUint32(o + L['wa_hdr.uid'], true), gid: dv.getUint32(o + L['wa_hdr.gid'], true),
    cgroupId: dv.getBigUint64(o + L['wa_hdr.cgroup_id'], true), tsBootNs: dv.getBigUint64(o + L['wa_hdr.ts_ns'], true),
    comm: comm(o + L['wa_hdr.comm']), flags: dv.getUint16(o + L['wa_hdr.flags'], true),
  };
}

function short(struct: string, size: number, len: number): WireFailure {
  return { field: `${struct}.$size`, reason: `record of ${len} bytes is shorter than struct ${struct} (${size})` };
}

/** Two trailing paths (path_len, path2_len at the given fields); a failure when they break their bounds. */
function twoPaths(dv: DataView, o: number, len: number, struct: string): [string, string] | WireFailure {
  const fixed = L[`${struct}.$size` as 'wa_sysop.$size'];
  const l1 = dv.getUint16(o + L[`${struct}.path_len` as 'wa_sysop.path_len'], true);
  const l2 = dv.getUint16(o + L[`${struct}.path2_len` as 'wa_sysop.path2_len'], true);
  if (l1 > L.WA_PATH_MAX) return { field: `${struct}.path_len`, reason: `${l1} exceeds WA_PATH_MAX (${L.WA_PATH_MAX}); the probe and events.h disagree` };
  if (l2 > L.WA_PATH_MAX) return { field: `${struct}.path2_len`, reason: `${l2} exceeds WA_PATH_MAX (${L.WA_PATH_MAX}); the probe and events.h disagree` };
  if (fixed + l1 + l2 > len) return { field: struct, reason: `path_len + path2_len need ${fixed + l1 + l2} bytes but the record has ${len}` };
  const p = o + fixed;
  return [utf8(p, p + l1), utf8(p + l1, p + l1 + l2)];
}

export function decodeBoundary(type: number, dv: DataView, o: number, len: number): BoundaryEvent | WireFailure {
  if (type === L.WA_EV_KILL) return kill(dv, o, len);
  if (type === L.WA_EV_IO_URING) return ioUring(dv, o, len);
  return sysop(BOUNDARY_KIND_NAMES[type] as SysopKind, dv, o, len);
}

function kill(dv: DataView, o: number, len: number): BoundaryEvent | WireFailure {
  if (len < L['wa_kill.$size']) return short('wa_kill', L['wa_kill.$size'], len);
  const source = dv.getUint16(o + L['wa_kill.source'], true);
  const ret = dv.getInt32(o + L['wa_kill.ret'], true);
  const sys = dv.getUint16(o + L['wa_kill.syscall'], true);
  const generated = source === L.WA_KILL_GENERATED;
  return {
    kind: 'kill', ...header(dv, o),
    ret: generated ? 0 : ret,
    sig: dv.getInt32(o + L['wa_kill.sig'], true),
    targetPid: dv.getInt32(o + L['wa_kill.target_pid'], true),
    targetTid: dv.getUint32(o + L['wa_kill.target_tid'], true),
    code: dv.getInt32(o + L['wa_kill.code'], true),
    source: generated ? 'generated' : 'syscall',
    syscall: generated ? null : SYSOP_SYSCALL_NAMES[sys] ?? String(sys),
    delivery: generated ? SIGNAL_DELIVERY[ret] ?? String(ret) : null,
  };
}

function ioUring(dv: DataView, o: number, len: number): BoundaryEvent | WireFailure {
  if (len < L['wa_io_uring.$size']) return short('wa_io_uring', L['wa_io_uring.$size'], len);
  const paths = twoPaths(dv, o, len, 'wa_io_uring');
  if (!Array.isArray(paths)) return paths;
  const opcode = dv.getUint8(o + L['wa_io_uring.opcode']);
  const peer = o + L['wa_io_uring.peer'];
  const family = dv.getUint16(peer + L['wa_sockaddr.family'], true);
  return {
    kind: 'io_uring', ...header(dv, o),
    fd: dv.getInt32(o + L['wa_io_uring.fd'], true),
    opcode,
    opName: opcode === L.WA_IORING_SETUP ? 'SETUP' : IORING_OP_NAMES[opcode] ?? String(opcode),
    opFlags: dv.getUint32(o + L['wa_io_uring.op_flags'], true),
    sqThread: dv.getUint8(o + L['wa_io_uring.sq_thread']) !== 0,
    path: paths[0], path2: paths[1],
    peerFamily: family,
    peerAddress: addressText(family, peer + L['wa_sockaddr.addr']),
    peerPort: dv.getUint16(peer + L['wa_sockaddr.port'], true),
  };
}

function sysop(kind: SysopKind, dv: DataView, o: number, len: number): BoundaryEvent | WireFailure {
  if (len < L['wa_sysop.$size']) return short('wa_sysop', L['wa_sysop.$size'], len);
  const paths = twoPaths(dv, o, len, 'wa_sysop');
  if (!Array.isArray(paths)) return paths;
  const sys = dv.getUint16(o + L['wa_sysop.syscall'], true);
  const a = o + L['wa_sysop.args'];
  // u64 arguments: flags and modes, all well below 2^53
  const arg = (i: number): number => Number(dv.getBigUint64(a + 8 * i, true));
  return {
    kind, ...header(dv, o),
    ret: dv.getInt32(o + L['wa_sysop.ret'], true),
    syscall: SYSOP_SYSCALL_NAMES[sys] ?? String(sys),
    path: paths[0], path2: paths[1],
    args: [arg(0), arg(1), arg(2), arg(3)],
  };
}
