import { parseDnsAnswer } from './dns-answer.js';
import { LAYOUT as L } from './layout.js';
import { addressText, comm } from './text.js';
import { SEND_SYSCALL_NAMES } from './types.js';
import type { EventHeader } from './types.js';
import type { ConnEndHow, NetDepthEvent } from './types-net.js';

/**
 * Decoders of the network-depth records (types 36..42), called by decode.ts
 * for the type numbers it does not know itself, with the batch it is in.
 * Same rules as decode.ts: a record shorter than its struct, or with a
 * variable length past its bound or past the record, is an E_WIRE failure.
 */

export interface WireFailure { field: string; reason: string }

const RECV_NAMES: Record<number, string> = { [L.WA_RECV_READ]: 'read', [L.WA_RECV_RECVFROM]: 'recvfrom', [L.WA_RECV_RECVMSG]: 'recvmsg' };
const END_NAMES: Record<number, ConnEndHow> = { [L.WA_END_CLOSE]: 'close', [L.WA_END_EXIT]: 'exit', [L.WA_END_REUSED]: 'reused' };
const ADDR = L['wa_sockaddr.addr'];
const PORT = L['wa_sockaddr.port'];

function header(dv: DataView, o: number): EventHeader {
  return {
    pid: dv.getUint32(o + L['wa_hdr.pid'], true), tid: dv.getUint32(o + L['wa_hdr.tid'], true),
    uid: dv.getUint32(o + L['wa_hdr.uid'], true), gid: dv.getUint32(o + L['wa_hdr.gid'], true),
    cgroupId: dv.getBigUint64(o + L['wa_hdr.cgroup_id'], true), tsBootNs: dv.getBigUint64(o + L['wa_hdr.ts_ns'], true),
    comm: comm(o + L['wa_hdr.comm']), flags: dv.getUint16(o + L['wa_hdr.flags'], true),
  };
}

const short = (struct: string, size: number, len: number): WireFailure =>
  ({ field: `${struct}.$size`, reason: `record of ${len} bytes is shorter than struct ${struct} (${size})` });
const over = (field: string, v: number, bound: string, max: number): WireFailure =>
  ({ field, reason: `${v} exceeds ${bound} (${max}); the probe and events.h disagree` });
const overrun = (struct: string, field: string, total: number, len: number): WireFailure =>
  ({ field: struct, reason: `${field} needs ${total} bytes but the record has ${len}` });

/** undefined: not a network-depth type. */
export function decodeNetRecord(dv: DataView, u8: Uint8Array, type: number, o: number, len: number): NetDepthEvent | WireFailure | undefined {
  switch (type) {
    case L.WA_EV_STREAM_HEAD: return streamHead(dv, u8, o, len);
    case L.WA_EV_DNS_ANSWER: return dnsAnswer(dv, u8, o, len);
    case L.WA_EV_CONN_END: return connEnd(dv, o, len);
    case L.WA_EV_UNIX_CONNECT: return unixConnect(dv, u8, o, len);
    case L.WA_EV_LISTEN: return listen('listen', dv, o, len);
    case L.WA_EV_ACCEPT: return listen('accept', dv, o, len);
    case L.WA_EV_TLS_DATA: return tlsData(dv, u8, o, len);
    default: return undefined;
  }
}

function streamHead(dv: DataView, u8: Uint8Array, o: number, len: number): NetDepthEvent | WireFailure {
  const fixed = L['wa_stream_head.$size'];
  if (len < fixed) return short('wa_stream_head', fixed, len);
  const n = dv.getUint16(o + L['wa_stream_head.len'], true);
  if (n > L.WA_STREAM_HEAD_MAX) return over('wa_stream_head.len', n, 'WA_STREAM_HEAD_MAX', L.WA_STREAM_HEAD_MAX);
  if (fixed + n > len) return overrun('wa_stream_head', 'len', fixed + n, len);
  const h = header(dv, o);
  const sc = dv.getUint16(o + L['wa_stream_head.syscall'], true);
  return {
    kind: 'stream_head', ...h,
    fd: dv.getUint32(o + L['wa_stream_head.fd'], true),
    syscall: SEND_SYSCALL_NAMES[sc] ?? String(sc),
    streamOff: dv.getUint32(o + L['wa_stream_head.stream_off'], true),
    origLen: dv.getUint32(o + L['wa_stream_head.orig_len'], true),
    connId: dv.getBigUint64(o + L['wa_stream_head.conn_id'], true),
    bytes: u8.slice(o + fixed, o + fixed + n),
    captureEnd: (h.flags & L.WA_F_CAPTURE_END) !== 0,
  };
}

function dnsAnswer(dv: DataView, u8: Uint8Array, o: number, len: number): NetDepthEvent | WireFailure {
  const fixed = L['wa_dns_answer.$size'];
  if (len < fixed) return short('wa_dns_answer', fixed, len);
  const n = dv.getUint16(o + L['wa_dns_answer.payload_len'], true);
  if (n > L.WA_DNS_ANSWER_MAX) return over('wa_dns_answer.payload_len', n, 'WA_DNS_ANSWER_MAX', L.WA_DNS_ANSWER_MAX);
  if (fixed + n > len) return overrun('wa_dns_answer', 'payload_len', fixed + n, len);
  const h = header(dv, o);
  const origLen = dv.getUint32(o + L['wa_dns_answer.orig_len'], true);
  const truncated = (h.flags & L.WA_F_TRUNC_PAYLOAD) !== 0 || origLen > n;
  const sc = dv.getUint16(o + L['wa_dns_answer.syscall'], true);
  return {
    kind: 'dns_answer', ...h,
    fd: dv.getUint32(o + L['wa_dns_answer.fd'], true),
    syscall: RECV_NAMES[sc] ?? String(sc),
    payloadLen: n,
    origLen,
    truncated,
    dns: parseDnsAnswer(u8.subarray(o + fixed, o + fixed + n), truncated),
  };
}

function connEnd(dv: DataView, o: number, len: number): NetDepthEvent | WireFailure {
  if (len < L['wa_conn_end.$size']) return short('wa_conn_end', L['wa_conn_end.$size'], len);
  const peer = o + L['wa_conn_end.peer'];
  const family = dv.getUint16(peer, true);
  const how = dv.getUint16(o + L['wa_conn_end.how'], true);
  const u64 = (k: keyof typeof L): bigint => dv.getBigUint64(o + L[k], true);
  return {
    kind: 'conn_end', ...header(dv, o),
    fd: dv.getUint32(o + L['wa_conn_end.fd'], true),
    how: END_NAMES[how] ?? String(how),
    peerFamily: family,
    peerAddress: addressText(family, peer + ADDR),
    peerPort: dv.getUint16(peer + PORT, true),
    connId: u64('wa_conn_end.conn_id'),
    firstTxNs: u64('wa_conn_end.first_tx_ns'),
    lastTxNs: u64('wa_conn_end.last_tx_ns'),
    firstRxNs: u64('wa_conn_end.first_rx_ns'),
    lastRxNs: u64('wa_conn_end.last_rx_ns'),
    reqEndNs: u64('wa_conn_end.req_end_ns'),
    respStartNs: u64('wa_conn_end.resp_start_ns'),
    txBytes: Number(u64('wa_conn_end.tx_bytes')),
    rxBytes: Number(u64('wa_conn_end.rx_bytes')),
    txCalls: dv.getUint32(o + L['wa_conn_end.tx_calls'], true),
    rxCalls: dv.getUint32(o + L['wa_conn_end.rx_calls'], true),
  };
}

/** sun_path bytes as text: printable ASCII kept, everything else as \DDD. */
function pathText(u8: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const c = u8[i] as number;
    s += c >= 32 && c < 127 && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`;
  }
  return s;
}

function unixConnect(dv: DataView, u8: Uint8Array, o: number, len: number): NetDepthEvent | WireFailure {
  const fixed = L['wa_unix_connect.$size'];
  if (len < fixed) return short('wa_unix_connect', fixed, len);
  const n = dv.getUint16(o + L['wa_unix_connect.path_len'], true);
  if (n > L.WA_UNIX_PATH_MAX) return over('wa_unix_connect.path_len', n, 'WA_UNIX_PATH_MAX', L.WA_UNIX_PATH_MAX);
  if (fixed + n > len) return overrun('wa_unix_connect', 'path_len', fixed + n, len);
  const h = header(dv, o);
  const p = o + fixed;
  const abstract = n > 0 && u8[p] === 0;
  // libuv binds abstract names with the whole sun_path (NUL padded): the padding is not shown
  let end = p + n;
  if (abstract) while (end > p + 1 && u8[end - 1] === 0) end--;
  return {
    kind: 'unix_connect', ...h,
    ret: dv.getInt32(o + L['wa_unix_connect.ret'], true),
    fd: dv.getUint32(o + L['wa_unix_connect.fd'], true),
    sockType: dv.getUint16(o + L['wa_unix_connect.sock_type'], true),
    path: abstract ? `@${pathText(u8, p + 1, end)}` : pathText(u8, p, end),
    abstract,
    userAddress: (h.flags & L.WA_F_USER_ADDR) !== 0,
  };
}

function listen(kind: 'listen' | 'accept', dv: DataView, o: number, len: number): NetDepthEvent | WireFailure {
  if (len < L['wa_listen.$size']) return short('wa_listen', L['wa_listen.$size'], len);
  const local = o + L['wa_listen.local'];
  const peer = o + L['wa_listen.peer'];
  const family = dv.getUint16(local, true);
  return {
    kind, ...header(dv, o),
    ret: dv.getInt32(o + L['wa_listen.ret'], true),
    fd: dv.getUint32(o + L['wa_listen.fd'], true),
    backlog: dv.getUint32(o + L['wa_listen.backlog'], true),
    sockType: dv.getUint16(o + L['wa_listen.sock_type'], true),
    protocol: dv.getUint16(o + L['wa_listen.protocol'], true),
    localFamily: family,
    localAddress: addressText(family, local + ADDR),
    localPort: dv.getUint16(local + PORT, true),
    peerAddress: kind === 'accept' ? addressText(dv.getUint16(peer, true), peer + ADDR) : null,
    peerPort: dv.getUint16(peer + PORT, true),
  };
}

const TLS_FN: Record<number, [string, 'tx' | 'rx']> = {
  [L.WA_TLS_WRITE]: ['SSL_write', 'tx'], [L.WA_TLS_READ]: ['SSL_read', 'rx'],
  [L.WA_TLS_WRITE_EX]: ['SSL_write_ex', 'tx'], [L.WA_TLS_READ_EX]: ['SSL_read_ex', 'rx'],
};

function tlsData(dv: DataView, u8: Uint8Array, o: number, len: number): NetDepthEvent | WireFailure {
  const fixed = L['wa_tls_data.$size'];
  if (len < fixed) return short('wa_tls_data', fixed, len);
  const n = dv.getUint32(o + L['wa_tls_data.len'], true);
  if (n > L.WA_TLS_CHUNK_MAX) return over('wa_tls_data.len', n, 'WA_TLS_CHUNK_MAX', L.WA_TLS_CHUNK_MAX);
  if (fixed + n > len) return overrun('wa_tls_data', 'len', fixed + n, len);
  const fnNum = dv.getUint16(o + L['wa_tls_data.fn'], true);
  const fn = TLS_FN[fnNum];
  if (fn === undefined) return { field: 'wa_tls_data.fn', reason: `unknown enum wa_tls_fn value ${fnNum}` };
  const h = header(dv, o);
  return {
    kind: 'tls_data', ...h,
    ssl: dv.getBigUint64(o + L['wa_tls_data.ssl'], true),
    direction: fn[1], fn: fn[0],
    callLen: dv.getUint32(o + L['wa_tls_data.call_len'], true),
    callOff: dv.getUint32(o + L['wa_tls_data.call_off'], true),
    bytes: u8.slice(o + fixed, o + fixed + n),
    truncated: (h.flags & L.WA_F_TRUNC_PAYLOAD) !== 0,
  };
}
