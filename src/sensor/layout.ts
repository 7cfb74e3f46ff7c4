import { WitnessError } from '../errors.js';

/**
 * The decoder's own copy of the wire layout in bpf/events.h: byte offsets of
 * every field (`"<struct>.<field>"`), struct sizes (`"<struct>.$size"`) and
 * every numeric #define / enum constant by its C name.
 *
 * It is written out by hand on purpose: the native addon exports the same
 * table computed by the C compiler (native/layout.c), test/decoder.test.ts
 * recomputes it from the text of events.h, and `checkLayout` refuses to start
 * the sensor when the addon and this copy disagree. Three independent sources
 * that must agree is what lets the decoder read raw offsets without checks.
 *
 * Offsets of nested structs (`wa_connect.peer`) are the start of the nested
 * struct; its own fields are under its own name (`wa_sockaddr.port`).
 * `struct wa_traced` is a BPF map value, not a wire record, so it is absent.
 */
export const LAYOUT = {
  // constants (#define and enum members)
  WA_WIRE_VERSION: 2,
  WA_COMM_LEN: 16,
  WA_ARGV_MAX: 4096,
  WA_PATH_MAX: 4096,
  WA_NAME_MAX: 256,
  WA_PATH_DEPTH: 48,
  WA_FILENAME_MAX: 512,
  WA_DNS_MAX: 512,
  WA_EV_EXEC: 1,
  WA_EV_EXIT: 2,
  WA_EV_FORK: 3,
  WA_EV_CONNECT: 4,
  WA_EV_DNS: 5,
  WA_EV_FILE_WRITE: 6,
  WA_EV_FILE_UNLINK: 7,
  WA_EV_FILE_RENAME: 8,
  WA_EV_FILE_READ_SENSITIVE: 9,
  WA_EV_SETUID: 10,
  WA_EV_SETGID: 11,
  WA_EV_PTRACE: 12,
  WA_EV_BIND: 13,
  WA_EV_SCOPE_OVERFLOW: 30,
  WA_EV_MAX: 64,
  WA_F_TRUNC_ARGV: 1,
  WA_F_TRUNC_PATH: 2,
  WA_F_TRUNC_PAYLOAD: 4,
  WA_F_TRUNC_FILENAME: 8,
  WA_F_READ_FAULT: 16,
  WA_F_RELATIVE: 32,
  WA_SEND_SENDTO: 1,
  WA_SEND_SENDMSG: 2,
  WA_SEND_SENDMMSG: 3,
  WA_SEND_WRITE: 4,
  WA_SETID_SETUID: 1,
  WA_SETID_SETREUID: 2,
  WA_SETID_SETRESUID: 3,
  WA_SETID_SETGID: 4,
  WA_SETID_SETREGID: 5,
  WA_SETID_SETRESGID: 6,
  WA_STREAM_HEAD_MAX: 2048,
  WA_STREAM_HEAD_WRITES: 4,
  WA_DNS_ANSWER_MAX: 1232,
  WA_UNIX_PATH_MAX: 108,
  WA_EV_STREAM_HEAD: 36,
  WA_EV_DNS_ANSWER: 37,
  WA_EV_CONN_END: 38,
  WA_EV_UNIX_CONNECT: 39,
  WA_EV_LISTEN: 40,
  WA_EV_ACCEPT: 41,
  WA_F_CAPTURE_END: 4096,
  WA_F_USER_ADDR: 8192,
  WA_SEND_WRITEV: 5,
  WA_RECV_READ: 1,
  WA_RECV_RECVFROM: 2,
  WA_RECV_RECVMSG: 3,
  WA_END_CLOSE: 1,
  WA_END_EXIT: 2,
  WA_END_REUSED: 3,

  'wa_hdr.type': 0,
  'wa_hdr.flags': 2,
  'wa_hdr.size': 4,
  'wa_hdr.ts_ns': 8,
  'wa_hdr.pid': 16,
  'wa_hdr.tid': 20,
  'wa_hdr.uid': 24,
  'wa_hdr.gid': 28,
  'wa_hdr.cgroup_id': 32,
  'wa_hdr.comm': 40,
  'wa_hdr.$size': 56,

  'wa_exec.hdr': 0,
  'wa_exec.ppid': 56,
  'wa_exec.argc': 60,
  'wa_exec.euid': 64,
  'wa_exec.egid': 68,
  'wa_exec.filename_len': 72,
  'wa_exec.argv_len': 74,
  'wa_exec.cwd_len': 76,
  'wa_exec.exe_len': 78,
  'wa_exec.$size': 80,

  'wa_exit.hdr': 0,
  'wa_exit.ppid': 56,
  'wa_exit.exit_code': 60,
  'wa_exit.$size': 64,

  'wa_fork.hdr': 0,
  'wa_fork.child_pid': 56,
  'wa_fork.pad': 60,
  'wa_fork.$size': 64,

  'wa_sockaddr.family': 0,
  'wa_sockaddr.port': 2,
  'wa_sockaddr.addr': 4,
  'wa_sockaddr.$size': 20,

  'wa_connect.hdr': 0,
  'wa_connect.ret': 56,
  'wa_connect.sock_type': 60,
  'wa_connect.protocol': 62,
  'wa_connect.peer': 64,
  'wa_connect.fd': 84,
  'wa_connect.$size': 88,

  'wa_dns.hdr': 0,
  'wa_dns.sock_type': 56,
  'wa_dns.protocol': 58,
  'wa_dns.peer': 60,
  'wa_dns.payload_len': 80,
  'wa_dns.syscall': 82,
  'wa_dns.orig_len': 84,
  'wa_dns.$size': 88,

  'wa_file.hdr': 0,
  'wa_file.ret': 56,
  'wa_file.open_flags': 60,
  'wa_file.mode': 64,
  'wa_file.path_len': 68,
  'wa_file.pad': 70,
  'wa_file.$size': 72,

  'wa_rename.hdr': 0,
  'wa_rename.ret': 56,
  'wa_rename.rename_flags': 60,
  'wa_rename.old_len': 64,
  'wa_rename.new_len': 66,
  'wa_rename.pad': 68,
  'wa_rename.$size': 72,

  'wa_setid.hdr': 0,
  'wa_setid.ret': 56,
  'wa_setid.syscall': 60,
  'wa_setid.old_ids': 64,
  'wa_setid.new_ids': 76,
  'wa_setid.$size': 88,

  'wa_ptrace.hdr': 0,
  'wa_ptrace.ret': 56,
  'wa_ptrace.target_pid': 60,
  'wa_ptrace.request': 64,
  'wa_ptrace.$size': 72,

  'wa_bind.hdr': 0,
  'wa_bind.ret': 56,
  'wa_bind.sock_type': 60,
  'wa_bind.protocol': 62,
  'wa_bind.local': 64,
  'wa_bind.fd': 84,
  'wa_bind.$size': 88,

  'wa_scope_overflow.hdr': 0,
  'wa_scope_overflow.child_pid': 56,
  'wa_scope_overflow.root_pid': 60,
  'wa_scope_overflow.depth': 64,
  'wa_scope_overflow.error': 68,
  'wa_scope_overflow.$size': 72,

  'wa_stream_head.$size': 80,
  'wa_stream_head.hdr': 0,
  'wa_stream_head.fd': 56,
  'wa_stream_head.len': 60,
  'wa_stream_head.syscall': 62,
  'wa_stream_head.stream_off': 64,
  'wa_stream_head.orig_len': 68,
  'wa_stream_head.conn_id': 72,

  'wa_dns_answer.$size': 72,
  'wa_dns_answer.hdr': 0,
  'wa_dns_answer.fd': 56,
  'wa_dns_answer.payload_len': 60,
  'wa_dns_answer.syscall': 62,
  'wa_dns_answer.orig_len': 64,
  'wa_dns_answer.pad': 68,

  'wa_conn_end.$size': 168,
  'wa_conn_end.hdr': 0,
  'wa_conn_end.fd': 56,
  'wa_conn_end.how': 60,
  'wa_conn_end.pad': 62,
  'wa_conn_end.peer': 64,
  'wa_conn_end.conn_id': 88,
  'wa_conn_end.first_tx_ns': 96,
  'wa_conn_end.last_tx_ns': 104,
  'wa_conn_end.first_rx_ns': 112,
  'wa_conn_end.last_rx_ns': 120,
  'wa_conn_end.req_end_ns': 128,
  'wa_conn_end.resp_start_ns': 136,
  'wa_conn_end.tx_bytes': 144,
  'wa_conn_end.rx_bytes': 152,
  'wa_conn_end.tx_calls': 160,
  'wa_conn_end.rx_calls': 164,

  'wa_unix_connect.$size': 72,
  'wa_unix_connect.hdr': 0,
  'wa_unix_connect.ret': 56,
  'wa_unix_connect.fd': 60,
  'wa_unix_connect.sock_type': 64,
  'wa_unix_connect.path_len': 66,
  'wa_unix_connect.pad': 68,

  'wa_listen.$size': 112,
  'wa_listen.hdr': 0,
  'wa_listen.ret': 56,
  'wa_listen.fd': 60,
  'wa_listen.backlog': 64,
  'wa_listen.sock_type': 68,
  'wa_listen.protocol': 70,
  'wa_listen.local': 72,
  'wa_listen.peer': 92,
} as const satisfies Record<string, number>;

export type LayoutKey = keyof typeof LAYOUT;

/**
 * Throws E_LAYOUT unless `native` (the addon's table, computed by the C
 * compiler from events.h) has exactly the keys and values of LAYOUT. The
 * message lists every difference, both directions, so one run shows the
 * whole drift rather than the first symptom.
 */
export function checkLayout(native: Record<string, number>): void {
  const problems: string[] = [];
  const ours: Record<string, number> = LAYOUT;
  for (const key of Object.keys(ours)) {
    const theirs = native[key];
    if (theirs === undefined) problems.push(`${key}: missing from the addon (decoder has ${ours[key]})`);
    else if (theirs !== ours[key]) problems.push(`${key}: addon ${theirs}, decoder ${ours[key]}`);
  }
  for (const key of Object.keys(native)) {
    if (!(key in ours)) problems.push(`${key}: missing from the decoder (addon has ${native[key]})`);
  }
  if (problems.length > 0) {
    throw new WitnessError(
      'E_LAYOUT',
      `the TypeScript decoder and the native addon disagree on the wire format (${problems.length} difference(s)); ` +
        `rebuild both from the same bpf/events.h:\n  ${problems.join('\n  ')}`,
      { file: 'bpf/events.h', field: 'layout' },
    );
  }
}
