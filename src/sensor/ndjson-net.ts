import type { Attributes, Envelope } from '../events/envelope.js';
import type { EventName } from '../events/names.js';
import { LAYOUT as L } from './layout.js';
import { bootEventTime, networkTransport, witnessFlagNames, type BootClock } from './ndjson.js';
import type { EventHeader } from './types.js';
import type { ConnEndEvent, DnsAnswerEvent, ListenEvent, NetDepthEvent, UnixConnectEvent } from './types-net.js';

/**
 * NDJSON envelopes of the network-depth events that need no state
 * (docs/ndjson.md; schemas in src/events/net-schemas.ts). The stateful ones
 * (tls.client_hello from stream heads, server.address on connects, llm.call)
 * are built by NetDepth (netdepth.ts) on top of these.
 */

// The flags these events say in their own keys: not repeated in witness.flags.
const OWN_FLAGS = L.WA_F_CAPTURE_END | L.WA_F_USER_ADDR;

export function netEnvelope(ev: EventHeader, clock: BootClock, event: EventName, attributes: Attributes): Envelope {
  const flags = ev.flags & ~OWN_FLAGS;
  if (flags !== 0) attributes['witness.flags'] = witnessFlagNames(flags);
  return { time: bootEventTime(ev.tsBootNs, clock), event, attributes };
}

export function headerAttrs(ev: EventHeader): Attributes {
  return {
    'process.pid': ev.pid, 'thread.id': ev.tid, 'process.user.id': ev.uid, 'witness.gid': ev.gid,
    'process.command': ev.comm, 'process.linux.cgroup': ev.cgroupId.toString(),
  };
}

const networkType = (family: number): 'ipv4' | 'ipv6' | null => (family === 2 ? 'ipv4' : family === 10 ? 'ipv6' : null);

/** Envelope of a network-depth event; null for stream heads (NetDepth joins them into tls.client_hello). */
export function toNetEnvelope(ev: NetDepthEvent, clock: BootClock): Envelope | null {
  switch (ev.kind) {
    case 'stream_head': return null;
    case 'tls_data': return null;
    case 'dns_answer': return netEnvelope(ev, clock, 'dns.answer', dnsAnswerAttrs(ev));
    case 'conn_end': return netEnvelope(ev, clock, 'network.close', connEndAttrs(ev));
    case 'unix_connect': return netEnvelope(ev, clock, 'network.unix_connect', unixAttrs(ev));
    case 'listen': return netEnvelope(ev, clock, 'network.listen', listenAttrs(ev));
    case 'accept': return netEnvelope(ev, clock, 'network.accept', listenAttrs(ev));
  }
}

function dnsAnswerAttrs(ev: DnsAnswerEvent): Attributes {
  const a = headerAttrs(ev);
  const d = ev.dns;
  a['dns.question.name'] = d.ok ? d.question : null;
  a['dns.answers'] = d.ok ? d.addresses : [];
  a['witness.dns.cnames'] = d.ok ? d.cnames : [];
  a['witness.dns.ttl'] = d.ok ? d.minTtl : null;
  a['witness.dns.id'] = d.ok ? d.id : null;
  a['witness.dns.rcode'] = d.ok ? d.rcode : null;
  a['witness.dns.truncated'] = ev.truncated;
  a['witness.dns.syscall'] = ev.syscall;
  a['witness.fd'] = ev.fd;
  if (!d.ok) a['witness.dns.parse_error'] = d.error;
  return a;
}

const ms = (ns: bigint): number => Number(ns / 1000n) / 1000;

/** Milliseconds from `from` to `to`, null when either never happened. */
export function spanMs(from: bigint, to: bigint): number | null {
  return from === 0n || to === 0n || to < from ? null : ms(to - from);
}

function connEndAttrs(ev: ConnEndEvent): Attributes {
  const a = headerAttrs(ev);
  a['network.transport'] = 'tcp';
  a['network.type'] = networkType(ev.peerFamily);
  a['network.peer.address'] = ev.peerAddress;
  a['network.peer.port'] = ev.peerPort;
  a['witness.fd'] = ev.fd;
  a['witness.conn.end'] = ev.how;
  a['witness.conn.tx_bytes'] = ev.txBytes;
  a['witness.conn.rx_bytes'] = ev.rxBytes;
  a['witness.conn.tx_calls'] = ev.txCalls;
  a['witness.conn.rx_calls'] = ev.rxCalls;
  a['witness.conn.duration_ms'] = spanMs(ev.connId, ev.tsBootNs);
  a['witness.conn.first_byte_ms'] = spanMs(ev.connId, ev.firstRxNs);
  a['witness.conn.ttfb_ms'] = spanMs(ev.reqEndNs, ev.respStartNs);
  return a;
}

function unixAttrs(ev: UnixConnectEvent): Attributes {
  const a = headerAttrs(ev);
  a['network.transport'] = 'unix';
  a['network.peer.address'] = ev.path;
  a['witness.unix.abstract'] = ev.abstract;
  a['witness.unix.path_source'] = ev.userAddress ? 'user' : 'kernel';
  a['witness.unix.sock_type'] = (ev.sockType & 0xf) === 1 ? 'stream' : (ev.sockType & 0xf) === 2 ? 'dgram' : (ev.sockType & 0xf) === 5 ? 'seqpacket' : String(ev.sockType);
  a['witness.result'] = ev.ret;
  a['witness.fd'] = ev.fd;
  return a;
}

function listenAttrs(ev: ListenEvent): Attributes {
  const a = headerAttrs(ev);
  a['network.transport'] = networkTransport(ev.sockType, ev.protocol);
  a['network.type'] = networkType(ev.localFamily);
  a['network.local.address'] = ev.localAddress;
  a['network.local.port'] = ev.localPort;
  if (ev.kind === 'accept') {
    a['network.peer.address'] = ev.peerAddress;
    a['network.peer.port'] = ev.peerPort;
  } else {
    a['witness.listen.backlog'] = ev.backlog;
  }
  a['witness.result'] = ev.ret;
  a['witness.fd'] = ev.fd;
  return a;
}
