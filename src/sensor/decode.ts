import { WitnessError } from '../errors.js';
import { decodeBoundary, isBoundaryType } from './decode-boundary.js';
import { decodeNetRecord } from './decode-net.js';
import { parseDnsPayload } from './dns.js';
import { LAYOUT as L } from './layout.js';
import { addressText, argvList, comm, setTextBatch, utf8 } from './text.js';
import { RECORD_KIND_NAMES, SEND_SYSCALL_NAMES, SETID_SYSCALL_NAMES, type FileKind, type SensorEvent } from './types.js';

/**
 * Decodes one batch from the native addon into typed events.
 *
 * Batch framing: frames back to back; each frame is `u32 len`, `u32 reserved`
 * (0), the record's `len` bytes, zero padding to the next 8-byte boundary.
 * A record starts with `struct wa_hdr`; all integers are little-endian.
 *
 * Bad input has a defined outcome and never throws: a bad record becomes an
 * E_WIRE error handed to `errors` and decoding resumes at the next frame; a
 * frame header that cannot be trusted (len past the batch, reserved != 0)
 * ends the batch, because nothing after it can be located. Exceptions thrown
 * by the `out` callback itself are the caller's and propagate.
 * A record is bad when it is shorter than its struct, its hdr.size is not
 * the frame length, a variable length exceeds its events.h bound
 * (WA_ARGV_MAX, ...) or runs past the record, or its type is unknown. Bytes
 * after the variable parts are ignored (hdr.size may be rounded up).
 *
 * Hot path (350k+ records/s): one DataView, Uint8Array and Buffer per batch,
 * one object per event plus its strings (text.ts says how strings are made).
 * The two 64-bit fields are bigints read with getBigUint64 (types.ts says
 * why they cannot be Numbers); everything else is a Number.
 */

/** events: handed to `out`; errors: E_WIRE errors (each handed to `errors` when given). */
export interface DecodeResult { events: number; errors: number }

/** Totals since process start, for the sensor's self-metrics. */
export const decodeTotals = { batches: 0, events: 0, errors: 0 };

const HDR_SIZE = L['wa_hdr.$size'];
const FRAME_HEADER = 8;
const ADDR = L['wa_sockaddr.addr'];
const [PID, TID, UID, GID] = [L['wa_hdr.pid'], L['wa_hdr.tid'], L['wa_hdr.uid'], L['wa_hdr.gid']];
const [CGROUP, TS, COMM, FLAGS] = [L['wa_hdr.cgroup_id'], L['wa_hdr.ts_ns'], L['wa_hdr.comm'], L['wa_hdr.flags']];
const PORT = L['wa_sockaddr.port'];

// Per-batch state. Module-level so the per-record functions take offsets
// only and no closure is created per batch or record.
let dv: DataView = new DataView(new ArrayBuffer(0));
let u8: Uint8Array = new Uint8Array(0);
// A record's failure reason, set by the record decoders (they return null).
let failField = '';
let failReason = '';

function fail(field: string, reason: string): null {
  failField = field;
  failReason = reason;
  return null;
}

// A process's cgroup rarely changes between its records: reuse the last
// bigint when the raw 64 bits are the same instead of allocating one per record.
let lastCgLo = -1;
let lastCgHi = -1;
let lastCg = 0n;
function cgroupAt(o: number): bigint {
  const lo = dv.getUint32(o + CGROUP, true);
  const hi = dv.getUint32(o + CGROUP + 4, true);
  if (lo !== lastCgLo || hi !== lastCgHi) {
    lastCgLo = lo;
    lastCgHi = hi;
    lastCg = dv.getBigUint64(o + CGROUP, true);
  }
  return lastCg;
}

function tooShort(struct: string, size: number, len: number): null {
  return fail(`${struct}.$size`, `record of ${len} bytes is shorter than struct ${struct} (${size})`);
}

function overBound(field: string, value: number, bound: string, max: number): null {
  return fail(field, `${value} exceeds ${bound} (${max}); the probe and events.h disagree`);
}

function varOverrun(struct: string, fields: string, total: number, len: number): null {
  return fail(struct, `${fields} need ${total} bytes but the record has ${len}`);
}

/**
 * Decodes every frame of `buf` (an ArrayBuffer, or a view of one such as a
 * Buffer; offsets in errors are relative to its start).
 */
export function decodeBatch(
  buf: ArrayBuffer | Uint8Array,
  out: (ev: SensorEvent) => void,
  errors?: (e: WitnessError) => void,
): DecodeResult {
  const n = buf.byteLength;
  // `out` may itself decode another batch; put our caller's state back at the end.
  const callerDv = dv;
  const callerU8 = u8;
  const ab = ArrayBuffer.isView(buf) ? buf.buffer : buf;
  const base = ArrayBuffer.isView(buf) ? buf.byteOffset : 0;
  dv = new DataView(ab, base, n);
  const view = new Uint8Array(ab, base, n);
  u8 = view;
  setTextBatch(view);
  let events = 0;
  let errs = 0;
  const report = (at: number, type: number, field: string, reason: string): void => {
    errs++;
    if (errors === undefined) return;
    const kind = type < 0 ? '' : ` (type ${type}${RECORD_KIND_NAMES[type] ? ` ${RECORD_KIND_NAMES[type]}` : ''})`;
    errors(new WitnessError('E_WIRE', `record at byte ${at}${kind}: ${reason}`, { file: 'ring buffer batch', field }));
  };

  let off = 0;
  while (off < n) {
    if (n - off < FRAME_HEADER) {
      report(off, -1, 'frame.len', `${n - off} trailing byte(s) are too few for a frame header; rest of batch dropped`);
      break;
    }
    const len = dv.getUint32(off, true);
    const reserved = dv.getUint32(off + 4, true);
    const start = off + FRAME_HEADER;
    if (reserved !== 0) {
      report(off, -1, 'frame.reserved', `frame reserved word is ${reserved}, not 0: framing lost, rest of batch dropped`);
      break;
    }
    if (len > n - start) {
      report(off, -1, 'frame.len', `frame length ${len} runs past the batch (${n - start} bytes left): rest of batch dropped`);
      break;
    }
    off = start + len + ((8 - (len & 7)) & 7); // no `(len + 7) & ~7`: it goes negative past 2^31
    if (len < HDR_SIZE) {
      report(start, len >= 2 ? dv.getUint16(start, true) : -1, 'wa_hdr.$size', `record of ${len} bytes is shorter than struct wa_hdr (${HDR_SIZE})`);
      continue;
    }
    const type = dv.getUint16(start, true);
    const size = dv.getUint32(start + 4, true);
    if (size !== len) {
      report(start, type, 'wa_hdr.size', `hdr.size ${size} differs from the frame length ${len}`);
      continue;
    }
    const ev = decodeRecord(type, start, len);
    if (ev === null) {
      report(start, type, failField, failReason);
      continue;
    }
    events++;
    out(ev);
  }
  dv = callerDv;
  u8 = callerU8;
  setTextBatch(callerU8);
  decodeTotals.batches++;
  decodeTotals.events += events;
  decodeTotals.errors += errs;
  return { events, errors: errs };
}

function decodeRecord(type: number, o: number, len: number): SensorEvent | null {
  switch (type) {
    case L.WA_EV_EXEC: return exec(o, len);
    case L.WA_EV_EXIT: return exit(o, len);
    case L.WA_EV_FORK: return fork(o, len);
    case L.WA_EV_CONNECT: return connect(o, len);
    case L.WA_EV_DNS: return dns(o, len);
    case L.WA_EV_FILE_WRITE: return file('file_write', o, len);
    case L.WA_EV_FILE_UNLINK: return file('file_unlink', o, len);
    case L.WA_EV_FILE_READ_SENSITIVE: return file('file_read_sensitive', o, len);
    case L.WA_EV_FILE_RENAME: return rename(o, len);
    case L.WA_EV_SETUID: return setid('setuid', o, len);
    case L.WA_EV_SETGID: return setid('setgid', o, len);
    case L.WA_EV_PTRACE: return ptrace(o, len);
    case L.WA_EV_BIND: return bind(o, len);
    case L.WA_EV_SCOPE_OVERFLOW: return scopeOverflow(o, len);
    default: {
      if (isBoundaryType(type)) { // the boundary (decode-boundary.ts)
        const b = decodeBoundary(type, dv, o, len);
        return 'kind' in b ? b : fail(b.field, b.reason);
      }
      // network depth (decode-net.ts), else unknown
      const r = decodeNetRecord(dv, u8, type, o, len);
      return r === undefined ? fail('wa_hdr.type', `unknown record type ${type}`) : 'reason' in r ? fail(r.field, r.reason) : r;
    }
  }
}

function exec(o: number, len: number): SensorEvent | null {
  const fixed = L['wa_exec.$size'];
  if (len < fixed) return tooShort('wa_exec', fixed, len);
  const filenameLen = dv.getUint16(o + L['wa_exec.filename_len'], true);
  const argvLen = dv.getUint16(o + L['wa_exec.argv_len'], true);
  const cwdLen = dv.getUint16(o + L['wa_exec.cwd_len'], true);
  const exeLen = dv.getUint16(o + L['wa_exec.exe_len'], true);
  const rootLen = dv.getUint16(o + L['wa_exec.root_len'], true);
  if (filenameLen > L.WA_FILENAME_MAX) return overBound('wa_exec.filename_len', filenameLen, 'WA_FILENAME_MAX', L.WA_FILENAME_MAX);
  if (argvLen > L.WA_ARGV_MAX) return overBound('wa_exec.argv_len', argvLen, 'WA_ARGV_MAX', L.WA_ARGV_MAX);
  if (cwdLen > L.WA_PATH_MAX) return overBound('wa_exec.cwd_len', cwdLen, 'WA_PATH_MAX', L.WA_PATH_MAX);
  if (exeLen > L.WA_PATH_MAX) return overBound('wa_exec.exe_len', exeLen, 'WA_PATH_MAX', L.WA_PATH_MAX);
  if (rootLen > L.WA_PATH_MAX) return overBound('wa_exec.root_len', rootLen, 'WA_PATH_MAX', L.WA_PATH_MAX);
  const total = fixed + filenameLen + argvLen + cwdLen + exeLen + rootLen;
  if (total > len) return varOverrun('wa_exec', 'filename_len + argv_len + cwd_len + exe_len + root_len', total, len);
  const flags = dv.getUint16(o + FLAGS, true);
  const f = o + fixed;
  const a = f + filenameLen;
  const c = a + argvLen;
  const e = c + cwdLen;
  return {
    kind: 'exec',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags,
    ppid: dv.getUint32(o + L['wa_exec.ppid'], true),
    argc: dv.getUint32(o + L['wa_exec.argc'], true),
    euid: dv.getUint32(o + L['wa_exec.euid'], true),
    egid: dv.getUint32(o + L['wa_exec.egid'], true),
    filename: utf8(f, a),
    argv: argvList(a, c),
    cwd: utf8(c, e),
    exe: utf8(e, e + exeLen),
    root: rootLen > 0 ? utf8(e + exeLen, e + exeLen + rootLen) : null,
    argvTruncated: (flags & L.WA_F_TRUNC_ARGV) !== 0,
    filenameTruncated: (flags & L.WA_F_TRUNC_FILENAME) !== 0,
    pathTruncated: (flags & L.WA_F_TRUNC_PATH) !== 0,
  };
}

function exit(o: number, len: number): SensorEvent | null {
  if (len < L['wa_exit.$size']) return tooShort('wa_exit', L['wa_exit.$size'], len);
  const status = dv.getUint32(o + L['wa_exit.exit_code'], true);
  const signal = status & 0x7f;
  return {
    kind: 'exit',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    ppid: dv.getUint32(o + L['wa_exit.ppid'], true),
    status,
    exitCode: signal === 0 ? (status >>> 8) & 0xff : null,
    signal: signal === 0 ? null : signal,
    coreDumped: (status & 0x80) !== 0,
  };
}

function fork(o: number, len: number): SensorEvent | null {
  if (len < L['wa_fork.$size']) return tooShort('wa_fork', L['wa_fork.$size'], len);
  return {
    kind: 'fork',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    childPid: dv.getUint32(o + L['wa_fork.child_pid'], true),
  };
}

function connect(o: number, len: number): SensorEvent | null {
  if (len < L['wa_connect.$size']) return tooShort('wa_connect', L['wa_connect.$size'], len);
  const peer = o + L['wa_connect.peer'];
  const family = dv.getUint16(peer, true);
  return {
    kind: 'connect',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    sockType: dv.getUint16(o + L['wa_connect.sock_type'], true),
    protocol: dv.getUint16(o + L['wa_connect.protocol'], true),
    ret: dv.getInt32(o + L['wa_connect.ret'], true),
    fd: dv.getUint32(o + L['wa_connect.fd'], true),
    peerFamily: family,
    peerAddress: addressText(family, peer + ADDR),
    peerPort: dv.getUint16(peer + PORT, true),
  };
}

function bind(o: number, len: number): SensorEvent | null {
  if (len < L['wa_bind.$size']) return tooShort('wa_bind', L['wa_bind.$size'], len);
  const local = o + L['wa_bind.local'];
  const family = dv.getUint16(local, true);
  return {
    kind: 'bind',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    sockType: dv.getUint16(o + L['wa_bind.sock_type'], true),
    protocol: dv.getUint16(o + L['wa_bind.protocol'], true),
    ret: dv.getInt32(o + L['wa_bind.ret'], true),
    fd: dv.getUint32(o + L['wa_bind.fd'], true),
    localFamily: family,
    localAddress: addressText(family, local + ADDR),
    localPort: dv.getUint16(local + PORT, true),
  };
}

function dns(o: number, len: number): SensorEvent | null {
  const fixed = L['wa_dns.$size'];
  if (len < fixed) return tooShort('wa_dns', fixed, len);
  const payloadLen = dv.getUint16(o + L['wa_dns.payload_len'], true);
  if (payloadLen > L.WA_DNS_MAX) return overBound('wa_dns.payload_len', payloadLen, 'WA_DNS_MAX', L.WA_DNS_MAX);
  if (fixed + payloadLen > len) return varOverrun('wa_dns', 'payload_len', fixed + payloadLen, len);
  const flags = dv.getUint16(o + FLAGS, true);
  const origLen = dv.getUint32(o + L['wa_dns.orig_len'], true);
  const sockType = dv.getUint16(o + L['wa_dns.sock_type'], true);
  const protocol = dv.getUint16(o + L['wa_dns.protocol'], true);
  const syscallNo = dv.getUint16(o + L['wa_dns.syscall'], true);
  const peer = o + L['wa_dns.peer'];
  const family = dv.getUint16(peer, true);
  const payloadTruncated = (flags & L.WA_F_TRUNC_PAYLOAD) !== 0 || origLen > payloadLen;
  return {
    kind: 'dns',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags,
    sockType,
    protocol,
    peerFamily: family,
    peerAddress: addressText(family, peer + ADDR),
    peerPort: dv.getUint16(peer + PORT, true),
    syscall: SEND_SYSCALL_NAMES[syscallNo] ?? String(syscallNo),
    payloadLen,
    origLen,
    payloadTruncated,
    dns: parseDnsPayload(u8, o + fixed, o + fixed + payloadLen, { sockType, protocol, truncated: payloadTruncated }),
  };
}

function file(kind: FileKind, o: number, len: number): SensorEvent | null {
  const fixed = L['wa_file.$size'];
  if (len < fixed) return tooShort('wa_file', fixed, len);
  const pathLen = dv.getUint16(o + L['wa_file.path_len'], true);
  if (pathLen > L.WA_PATH_MAX) return overBound('wa_file.path_len', pathLen, 'WA_PATH_MAX', L.WA_PATH_MAX);
  if (fixed + pathLen > len) return varOverrun('wa_file', 'path_len', fixed + pathLen, len);
  const flags = dv.getUint16(o + FLAGS, true);
  return {
    kind,
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags,
    ret: dv.getInt32(o + L['wa_file.ret'], true),
    openFlags: dv.getUint32(o + L['wa_file.open_flags'], true),
    mode: dv.getUint32(o + L['wa_file.mode'], true),
    path: utf8(o + fixed, o + fixed + pathLen),
    pathTruncated: (flags & L.WA_F_TRUNC_PATH) !== 0,
    relativePath: (flags & L.WA_F_RELATIVE) !== 0,
  };
}

function rename(o: number, len: number): SensorEvent | null {
  const fixed = L['wa_rename.$size'];
  if (len < fixed) return tooShort('wa_rename', fixed, len);
  const oldLen = dv.getUint16(o + L['wa_rename.old_len'], true);
  const newLen = dv.getUint16(o + L['wa_rename.new_len'], true);
  if (oldLen > L.WA_PATH_MAX) return overBound('wa_rename.old_len', oldLen, 'WA_PATH_MAX', L.WA_PATH_MAX);
  if (newLen > L.WA_PATH_MAX) return overBound('wa_rename.new_len', newLen, 'WA_PATH_MAX', L.WA_PATH_MAX);
  if (fixed + oldLen + newLen > len) return varOverrun('wa_rename', 'old_len + new_len', fixed + oldLen + newLen, len);
  const flags = dv.getUint16(o + FLAGS, true);
  const p = o + fixed;
  return {
    kind: 'file_rename',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags,
    ret: dv.getInt32(o + L['wa_rename.ret'], true),
    renameFlags: dv.getUint32(o + L['wa_rename.rename_flags'], true),
    oldPath: utf8(p, p + oldLen),
    newPath: utf8(p + oldLen, p + oldLen + newLen),
    pathTruncated: (flags & L.WA_F_TRUNC_PATH) !== 0,
    relativePath: (flags & L.WA_F_RELATIVE) !== 0,
  };
}

function setid(kind: 'setuid' | 'setgid', o: number, len: number): SensorEvent | null {
  if (len < L['wa_setid.$size']) return tooShort('wa_setid', L['wa_setid.$size'], len);
  const syscallNo = dv.getUint32(o + L['wa_setid.syscall'], true);
  const old = o + L['wa_setid.old_ids'];
  const nu = o + L['wa_setid.new_ids'];
  return {
    kind,
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    ret: dv.getInt32(o + L['wa_setid.ret'], true),
    syscall: SETID_SYSCALL_NAMES[syscallNo] ?? String(syscallNo),
    oldIds: [dv.getUint32(old, true), dv.getUint32(old + 4, true), dv.getUint32(old + 8, true)],
    newIds: [dv.getUint32(nu, true), dv.getUint32(nu + 4, true), dv.getUint32(nu + 8, true)],
  };
}

function ptrace(o: number, len: number): SensorEvent | null {
  if (len < L['wa_ptrace.$size']) return tooShort('wa_ptrace', L['wa_ptrace.$size'], len);
  return {
    kind: 'ptrace',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    ret: dv.getInt32(o + L['wa_ptrace.ret'], true),
    targetPid: dv.getUint32(o + L['wa_ptrace.target_pid'], true),
    request: dv.getBigInt64(o + L['wa_ptrace.request'], true),
  };
}

function scopeOverflow(o: number, len: number): SensorEvent | null {
  if (len < L['wa_scope_overflow.$size']) return tooShort('wa_scope_overflow', L['wa_scope_overflow.$size'], len);
  return {
    kind: 'scope_overflow',
    pid: dv.getUint32(o + PID, true), tid: dv.getUint32(o + TID, true),
    uid: dv.getUint32(o + UID, true), gid: dv.getUint32(o + GID, true),
    cgroupId: cgroupAt(o), tsBootNs: dv.getBigUint64(o + TS, true), comm: comm(o + COMM),
    flags: dv.getUint16(o + FLAGS, true),
    childPid: dv.getUint32(o + L['wa_scope_overflow.child_pid'], true),
    rootPid: dv.getUint32(o + L['wa_scope_overflow.root_pid'], true),
    depth: dv.getUint32(o + L['wa_scope_overflow.depth'], true),
    error: dv.getInt32(o + L['wa_scope_overflow.error'], true),
  };
}
