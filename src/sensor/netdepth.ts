import type { Attributes, Envelope } from '../events/envelope.js';
import { ProviderTable } from './llm.js';
import { headerAttrs, netEnvelope, spanMs } from './ndjson-net.js';
import { toEnvelope, type BootClock } from './ndjson.js';
import { runtimeSocket } from './runtime-sockets.js';
import { parseClientHello, type ClientHelloResult } from './tls.js';
import { TlsSessions, type TlsSessionsOptions } from './tls-sessions.js';
import type { SensorEvent } from './types.js';
import type { ConnEndEvent, StreamHeadEvent, UnixConnectEvent } from './types-net.js';

/**
 * The stateful half of the network-depth mapping, between the decoder and
 * the enricher (it replaces a bare toEnvelope call):
 *   - joins a connection's stream heads into one `tls.client_hello`
 *     (SNI as server.address, ALPN, versions, JA4);
 *   - keeps what each process tree resolved (DNS answers) per IP with an
 *     expiry, and puts `server.address` on its connects and closes (the
 *     SNI, once seen, names the close of its own connection);
 *   - turns the close of a connection to a model provider into `llm.call`;
 *   - raises `finding.runtime_socket` for unix connects to container runtime
 *     and init sockets.
 * Everything is bounded; what a bound costs is counted in `stats`.
 * Names and SNI come from user memory (the DNS answer and the ClientHello a
 * process handled): a process can lie to us about its own names, never about
 * the addresses and byte counts (kernel).
 */

export interface NetDepthOptions {
  providers?: ProviderTable;
  /** connections whose ClientHello is being assembled (default 4096) */
  maxConns?: number;
  /** resolved names kept over all processes (default 16384) */
  maxNames?: number;
  nowMs?: () => number;
  /** TLS plaintext (--tls-metadata) to tls.http_request; keepContent is --tls-content */
  tls?: TlsSessionsOptions;
}

export interface NetDepthStats {
  helloParsed: number;
  helloFailed: Record<string, number>;
  connsEvicted: number;
  namesEvicted: number;
}

interface Conn {
  connId: bigint;
  peerAddress: string | null;
  peerPort: number;
  heads: Uint8Array[];
  nextOff: number;
  helloDone: boolean;
  sni: string | null;
}

interface Name { name: string; source: 'dns' | 'tls'; expiresMs: number }

const MIN_TTL_S = 60; // connection pools reuse addresses past their TTL
const MAX_TTL_S = 3600;
const MAX_ANCESTRY = 32;

export class NetDepth {
  readonly stats: NetDepthStats = { helloParsed: 0, helloFailed: {}, connsEvicted: 0, namesEvicted: 0 };
  private readonly providers: ProviderTable;
  private readonly parent = new Map<number, number>();
  private readonly conns = new Map<string, Conn>();
  private readonly names = new Map<number, Map<string, Name>>();
  private nameCount = 0;
  private readonly maxConns: number;
  private readonly maxNames: number;
  private readonly now: () => number;
  readonly tls: TlsSessions;

  constructor(opts: NetDepthOptions = {}) {
    this.providers = opts.providers ?? new ProviderTable();
    this.maxConns = opts.maxConns ?? 4096;
    this.maxNames = opts.maxNames ?? 16384;
    this.now = opts.nowMs ?? Date.now;
    this.tls = new TlsSessions(opts.tls);
  }

  /** Counts for sensor.heartbeat: what the bounds cost, and ClientHellos that did not parse. */
  heartbeatAttributes(): Record<string, number> {
    const a: Record<string, number> = {
      'witness.netdepth.hello_parsed': this.stats.helloParsed,
      'witness.netdepth.conns_evicted': this.stats.connsEvicted,
      'witness.netdepth.names_evicted': this.stats.namesEvicted,
    };
    for (const [reason, n] of Object.entries(this.stats.helloFailed)) a[`witness.netdepth.hello_failed.${reason}`] = n;
    if (this.tls.stats.records > 0) Object.assign(a, this.tls.heartbeatAttributes());
    return a;
  }

  /** The envelopes one event yields (none, one, or an event and its finding). */
  process(ev: SensorEvent, clock: BootClock): Envelope[] {
    switch (ev.kind) {
      case 'fork':
        this.noteParent(ev.childPid, ev.pid);
        return [];
      case 'stream_head': return this.streamHead(ev, clock);
      case 'tls_data': return this.tls.process(ev, clock);
      default: break;
    }
    const env = toEnvelope(ev, clock);
    if (env === null) return [];
    switch (ev.kind) {
      case 'connect':
        if ((ev.ret === 0 || ev.ret === -115) && ev.peerAddress !== null && (ev.sockType & 0xf) === 1) {
          this.setConn(`${ev.pid}:${ev.fd}`, { connId: 0n, peerAddress: ev.peerAddress, peerPort: ev.peerPort, heads: [], nextOff: 0, helloDone: false, sni: null });
        }
        if (ev.peerAddress !== null) this.nameOn(env.attributes, ev.pid, ev.peerAddress);
        return [env];
      case 'dns_answer':
        if (ev.dns.ok && ev.dns.question !== null) {
          const ttl = Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, ev.dns.minTtl ?? 0));
          for (const a of ev.dns.addresses) this.remember(ev.pid, a, ev.dns.question, 'dns', ttl);
        }
        return [env];
      case 'conn_end': return this.connEnd(ev, env, clock);
      case 'unix_connect': return this.unixConnect(ev, env);
      default: return [env];
    }
  }

  private noteParent(child: number, parent: number): void {
    if (this.parent.size >= 65536) this.parent.delete(this.parent.keys().next().value!);
    this.parent.set(child, parent);
  }

  private setConn(key: string, c: Conn): void {
    this.conns.delete(key);
    if (this.conns.size >= this.maxConns) {
      this.conns.delete(this.conns.keys().next().value!);
      this.stats.connsEvicted++;
    }
    this.conns.set(key, c);
  }

  private remember(pid: number, address: string, name: string, source: Name['source'], ttlS: number): void {
    let m = this.names.get(pid);
    if (!m) {
      m = new Map();
      this.names.set(pid, m);
    }
    if (!m.has(address)) this.nameCount++;
    m.set(address, { name, source, expiresMs: this.now() + ttlS * 1000 });
    while (this.nameCount > this.maxNames) {
      const [oldPid, oldest] = this.names.entries().next().value!;
      this.nameCount -= oldest.size;
      this.stats.namesEvicted += oldest.size;
      this.names.delete(oldPid);
    }
  }

  /** The name this process, or the nearest ancestor, resolved `address` to. */
  nameOf(pid: number, address: string): Name | null {
    const now = this.now();
    let p: number | undefined = pid;
    for (let i = 0; i < MAX_ANCESTRY && p !== undefined; i++) {
      const n = this.names.get(p)?.get(address);
      if (n && n.expiresMs > now) return n;
      p = this.parent.get(p);
    }
    return null;
  }

  private nameOn(a: Attributes, pid: number, address: string): void {
    const n = this.nameOf(pid, address);
    if (n) {
      a['server.address'] = n.name;
      a['witness.server.address.source'] = n.source;
    }
  }

  private streamHead(ev: StreamHeadEvent, clock: BootClock): Envelope[] {
    const key = `${ev.pid}:${ev.fd}`;
    let c = this.conns.get(key);
    if (!c || (c.connId !== 0n && c.connId !== ev.connId)) {
      c = { connId: ev.connId, peerAddress: null, peerPort: 0, heads: [], nextOff: 0, helloDone: false, sni: null };
      this.setConn(key, c);
    }
    c.connId = ev.connId;
    if (c.helloDone) return [];
    let r: ClientHelloResult;
    if (ev.streamOff !== c.nextOff) {
      r = { ok: false, reason: 'incomplete', detail: `capture gap: bytes ${c.nextOff}..${ev.streamOff} were not captured` };
    } else {
      c.heads.push(ev.bytes);
      c.nextOff += ev.bytes.length;
      r = parseClientHello(c.heads.length === 1 ? ev.bytes : Buffer.concat(c.heads));
      if (!r.ok && r.reason === 'incomplete' && !ev.captureEnd) return []; // the next write carries the rest
    }
    return [this.hello(ev, c, r, clock)];
  }

  private hello(ev: StreamHeadEvent, c: Conn, r: ClientHelloResult, clock: BootClock): Envelope {
    c.helloDone = true;
    const a = headerAttrs(ev);
    a['network.transport'] = 'tcp';
    a['network.peer.address'] = c.peerAddress;
    a['network.peer.port'] = c.peerPort;
    a['witness.fd'] = ev.fd;
    a['witness.tls.captured_bytes'] = c.nextOff;
    a['witness.tls.writes'] = c.heads.length;
    if (r.ok) {
      this.stats.helloParsed++;
      c.sni = r.serverName;
      // The SNI names this connection only: one address (a CDN edge) serves
      // many names, so it is never remembered for other connections.
      if (r.serverName !== null) a['server.address'] = r.serverName;
      a['tls.client.ja4'] = r.ja4;
      a['witness.tls.ja4_r'] = r.ja4Raw;
      a['witness.tls.alpn'] = r.alpn;
      a['witness.tls.versions'] = r.versions;
      a['witness.tls.cipher_count'] = r.cipherCount;
      a['witness.tls.extension_count'] = r.extensionCount;
    } else {
      this.stats.helloFailed[r.reason] = (this.stats.helloFailed[r.reason] ?? 0) + 1;
      a['witness.tls.parse_error'] = r.reason;
      a['witness.tls.parse_detail'] = r.detail;
    }
    c.heads = [];
    return netEnvelope(ev, clock, 'tls.client_hello', a);
  }

  private connEnd(ev: ConnEndEvent, env: Envelope, clock: BootClock): Envelope[] {
    const key = `${ev.pid}:${ev.fd}`;
    const c = this.conns.get(key);
    const out: Envelope[] = [];
    if (c && (c.connId === ev.connId || c.connId === 0n)) {
      this.conns.delete(key);
      if (!c.helloDone && c.heads.length > 0) {
        out.push(this.hello({ ...ev, kind: 'stream_head', syscall: '', streamOff: 0, origLen: 0, bytes: new Uint8Array(0), captureEnd: true }, c,
          { ok: false, reason: 'incomplete', detail: 'the connection ended before the ClientHello did' }, clock));
      }
    }
    const a = env.attributes;
    const sni = c?.sni ?? null;
    if (sni !== null) {
      a['server.address'] = sni;
      a['witness.server.address.source'] = 'tls';
    } else if (ev.peerAddress !== null) {
      this.nameOn(a, ev.pid, ev.peerAddress);
    }
    const host = typeof a['server.address'] === 'string' ? a['server.address'] : null;
    const provider = host !== null ? this.providers.classify(host) : null;
    if (provider !== null) {
      env.event = 'llm.call';
      a['gen_ai.provider.name'] = provider;
      a['witness.llm.request_bytes'] = ev.txBytes;
      a['witness.llm.response_bytes'] = ev.rxBytes;
      a['witness.llm.ttft_ms'] = spanMs(ev.reqEndNs, ev.respStartNs);
      a['witness.llm.duration_ms'] = spanMs(ev.firstTxNs, ev.lastRxNs > ev.lastTxNs ? ev.lastRxNs : ev.lastTxNs);
    }
    out.push(env);
    return out;
  }

  private unixConnect(ev: UnixConnectEvent, env: Envelope): Envelope[] {
    const hit = runtimeSocket(ev.path);
    if (hit === null) return [env];
    const a = headerAttrs(ev);
    a['network.transport'] = 'unix';
    a['network.peer.address'] = ev.path;
    a['witness.unix.path_source'] = ev.userAddress ? 'user' : 'kernel';
    a['witness.result'] = ev.ret;
    a['witness.finding.runtime'] = hit;
    a['witness.finding.source_event'] = 'network.unix_connect';
    a['witness.finding.reason'] = `connect to the ${hit} socket: whoever talks to it can act as its owner (root on this host)`;
    return [env, { time: env.time, event: 'finding.runtime_socket', attributes: a }];
  }
}

/** toEnvelope + enrich, through NetDepth: what the run and daemon pipelines do per sensor event. */
export function enrichThrough(net: NetDepth, ev: SensorEvent, clock: BootClock, enrich: (ev: SensorEvent, env: Envelope | null) => Envelope[]): Envelope[] {
  // an exiting process's open TLS exchanges first, each enriched as its own session's record
  const out: Envelope[] = ev.kind === 'exit' ? net.tls.flushPid(ev.pid).flatMap(([src, env]) => enrich(src, env)) : [];
  const envs = net.process(ev, clock);
  if (envs.length === 0 && out.length === 0) return enrich(ev, null);
  if (envs.length === 1 && out.length === 0) return enrich(ev, envs[0]!);
  if (envs.length === 0) return [...out, ...enrich(ev, null)];
  for (const e of envs) for (const x of enrich(ev, e)) out.push(x);
  return out;
}
