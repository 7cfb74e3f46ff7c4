import type { DnsAnswerResult } from './dns-answer.js';
import type { EventHeader } from './types.js';

/**
 * Events of the network-depth probes (bpf/conn*.bpf.h; wire structs in
 * bpf/events.h). Which fields come from kernel objects and which from user
 * memory is said per field: user memory can be altered by a racing thread.
 */

export interface StreamHeadEvent extends EventHeader {
  kind: 'stream_head';
  fd: number;
  /** enum wa_send_syscall name */
  syscall: string;
  /** bytes written on the connection before these (kernel count) */
  streamOff: number;
  /** bytes the syscall wrote (kernel count) */
  origLen: number;
  /** connect time, boot ns: with pid and fd it names the connection */
  connId: bigint;
  /** the captured bytes (user memory after the syscall), a copy */
  bytes: Uint8Array;
  /** no further stream-head record comes for this connection */
  captureEnd: boolean;
}

export interface DnsAnswerEvent extends EventHeader {
  kind: 'dns_answer';
  fd: number;
  syscall: string;
  payloadLen: number;
  /** bytes the receive syscall returned */
  origLen: number;
  truncated: boolean;
  /** parsed at decode time (user memory after the syscall) */
  dns: DnsAnswerResult;
}

export type ConnEndHow = 'close' | 'exit' | 'reused';

/** Byte and timing accounting of one TCP connection, all from the kernel (syscall results, kernel socket). */
export interface ConnEndEvent extends EventHeader {
  kind: 'conn_end';
  fd: number;
  how: ConnEndHow | string;
  peerFamily: number;
  peerAddress: string | null;
  peerPort: number;
  connId: bigint;
  /** boot ns; 0n when it never happened */
  firstTxNs: bigint;
  lastTxNs: bigint;
  firstRxNs: bigint;
  lastRxNs: bigint;
  /** the last write before the answer of the last answered exchange, and that answer's start */
  reqEndNs: bigint;
  respStartNs: bigint;
  txBytes: number;
  rxBytes: number;
  txCalls: number;
  rxCalls: number;
}

export interface UnixConnectEvent extends EventHeader {
  kind: 'unix_connect';
  ret: number;
  fd: number;
  sockType: number;
  /** the socket path; an abstract name as '@' + name (non-printable bytes as \DDD) */
  path: string;
  abstract: boolean;
  /** the path is what the caller passed (a failed connect), not the peer's kernel address */
  userAddress: boolean;
}

export interface ListenEvent extends EventHeader {
  kind: 'listen' | 'accept';
  ret: number;
  /** listen: the socket; accept: the new connection's fd */
  fd: number;
  backlog: number;
  sockType: number;
  protocol: number;
  localFamily: number;
  localAddress: string | null;
  localPort: number;
  peerAddress: string | null;
  peerPort: number;
}

/** Plaintext one SSL_write / SSL_read moved (--tls-metadata uprobes): parsed, never recorded as such. */
export interface TlsDataEvent extends EventHeader {
  kind: 'tls_data';
  /** the SSL* in the process: with pid it names the TLS connection */
  ssl: bigint;
  direction: 'tx' | 'rx';
  /** SSL_write | SSL_read | SSL_write_ex | SSL_read_ex */
  fn: string;
  /** bytes the call moved (its return value), and where these bytes start in them */
  callLen: number;
  callOff: number;
  /** the bytes (user memory after the call), a copy */
  bytes: Uint8Array;
  /** the call moved more than the probe copies (WA_TLS_CHUNKS records) */
  truncated: boolean;
}

export type NetDepthEvent = StreamHeadEvent | DnsAnswerEvent | ConnEndEvent | UnixConnectEvent | ListenEvent | TlsDataEvent;
