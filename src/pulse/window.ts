import type { Attributes, Envelope } from '../events/envelope.js';
import { destinationKey, isExternalAddress } from './addresses.js';

/**
 * Counting for one window: what each agent did (AgentWindow) and how well the
 * sensor watched (ObserverWindow). The engine closes both into WindowRecords.
 */
export type WindowStatus = 'ok' | 'gap' | 'degraded';

/** Why a window is a gap or degraded; stable strings, they end up in events. */
export type WindowReason = 'no_heartbeat' | 'sensor_restart' | 'drops' | 'clock_backwards' | 'partial_coverage' | 'clock_jump';

export interface WindowRecord {
  agent: string;
  windowStart: number;
  windowEnd: number;
  slot: number;
  status: WindowStatus;
  reasons: WindowReason[];
  flows: number;
  failedFlows: number;
  externalFlows: number;
  uniqueDestinations: number;
  uniqueExternalDestinations: number;
  firstSeen: string[];
  dnsNames: string[];
  sniNames: string[];
  /** bytes both ways on connections that ended in the window (kernel counts: network.close, llm.call) */
  bytes: number;
  /** model-provider traffic (llm.call records) per gen_ai.provider.name, sorted by provider */
  llmProviders: LlmProviderWindow[];
  execs: number;
  fileWrites: number;
  sensitiveReads: number;
  findings: number;
  drops: number;
  heartbeats: number;
  quietStreak: number;
  alertActive: boolean;
}

/** Metrics the congruence band watches, with their record field. */
export const BAND_METRICS = {
  flows: 'flows',
  external_flows: 'externalFlows',
  unique_destinations: 'uniqueDestinations',
  execs: 'execs',
  file_writes: 'fileWrites',
  sensitive_reads: 'sensitiveReads',
  findings: 'findings',
} as const satisfies Record<string, keyof WindowRecord>;
export type BandMetric = keyof typeof BAND_METRICS;

export interface LlmProviderWindow {
  provider: string;
  calls: number;
  requestBytes: number;
  responseBytes: number;
}

export interface ExternalFlow {
  destination: string;
  tsMs: number;
  bytes: number | null;
}

const EINPROGRESS = -115;

export function agentOf(attrs: Attributes): string {
  const a = attrs['witness.agent'];
  return typeof a === 'string' && a !== '' ? a : 'unattributed';
}

/** Events that say something about an agent (as opposed to the sensor or the pulse itself). */
export function isAgentActivity(event: string): boolean {
  return !event.startsWith('sensor.') && !event.startsWith('pulse.');
}

function numberAttr(attrs: Attributes, key: string): number | undefined {
  const v = attrs[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

function stringAttr(attrs: Attributes, key: string): string | undefined {
  const v = attrs[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export class AgentWindow {
  flows = 0;
  failedFlows = 0;
  execs = 0;
  fileWrites = 0;
  sensitiveReads = 0;
  findings = 0;
  readonly destinations = new Set<string>();
  readonly externalFlows: ExternalFlow[] = [];
  readonly dnsNames = new Set<string>();
  readonly sniNames = new Set<string>();
  bytes = 0;
  readonly providers = new Map<string, LlmProviderWindow>();

  constructor(private readonly own: ReadonlySet<string>) {}

  add(env: Envelope, tsMs: number): void {
    const a = env.attributes;
    // SNI: server.address of a ClientHello (tls.client.server_name is the deprecated key)
    const sni = env.event === 'tls.client_hello' ? stringAttr(a, 'server.address') : stringAttr(a, 'tls.client.server_name');
    if (sni) this.sniNames.add(sni.toLowerCase());
    switch (env.event) {
      case 'network.connect': this.addConnect(a, tsMs); break;
      case 'network.close': this.addClose(a); break;
      case 'llm.call': this.addClose(a); this.addLlmCall(a); break;
      case 'dns.query': {
        const name = stringAttr(a, 'dns.question.name');
        if (name) this.dnsNames.add(name.toLowerCase().replace(/\.$/, ''));
        break;
      }
      case 'process.exec': this.execs++; break;
      case 'file.write': this.fileWrites++; break;
      case 'file.read_sensitive': this.sensitiveReads++; break;
      default:
        if (env.event.startsWith('finding.')) this.findings++;
    }
  }

  private addConnect(a: Attributes, tsMs: number): void {
    // 0 = connected, EINPROGRESS = non-blocking attempt under way; both are
    // flows. Any other errno is a refused/unreachable attempt.
    const result = numberAttr(a, 'witness.result');
    if (result !== undefined && result !== 0 && result !== EINPROGRESS) {
      this.failedFlows++;
      return;
    }
    this.flows++;
    const address = stringAttr(a, 'network.peer.address');
    if (!address) return;
    const destination = destinationKey(address, numberAttr(a, 'network.peer.port'));
    this.destinations.add(destination);
    if (isExternalAddress(address, this.own)) {
      this.externalFlows.push({ destination, tsMs, bytes: numberAttr(a, 'witness.bytes') ?? null });
    }
  }

  /** A connection's kernel byte count sizes its flow (beacon data size): the latest unsized flow to it. */
  private addClose(a: Attributes): void {
    const address = stringAttr(a, 'network.peer.address');
    if (!address) return;
    const destination = destinationKey(address, numberAttr(a, 'network.peer.port'));
    const bytes = (numberAttr(a, 'witness.conn.tx_bytes') ?? 0) + (numberAttr(a, 'witness.conn.rx_bytes') ?? 0);
    this.bytes += bytes;
    for (let i = this.externalFlows.length - 1; i >= 0; i--) {
      const f = this.externalFlows[i]!;
      if (f.destination === destination && f.bytes === null) {
        f.bytes = bytes;
        return;
      }
    }
  }

  private addLlmCall(a: Attributes): void {
    const provider = stringAttr(a, 'gen_ai.provider.name');
    if (!provider) return;
    let p = this.providers.get(provider);
    if (!p) this.providers.set(provider, (p = { provider, calls: 0, requestBytes: 0, responseBytes: 0 }));
    p.calls++;
    p.requestBytes += numberAttr(a, 'witness.llm.request_bytes') ?? 0;
    p.responseBytes += numberAttr(a, 'witness.llm.response_bytes') ?? 0;
  }

  llmProviders(): LlmProviderWindow[] {
    return [...this.providers.values()].sort((x, y) => (x.provider < y.provider ? -1 : x.provider > y.provider ? 1 : 0)).map((p) => ({ ...p }));
  }

  externalDestinations(): string[] {
    return [...new Set(this.externalFlows.map((f) => f.destination))].sort();
  }
}

/** The sensor's own health during a window. */
export class ObserverWindow {
  heartbeats = 0;
  restarts = 0;
  drops = 0;
  clockBackwards = 0;
  clockJumps = 0;
  private maxSilenceMs = 0;

  /** lastBeatMs: the last heartbeat before this window, if known. */
  constructor(readonly windowStart: number, private lastBeatMs: number | null) {}

  heartbeat(tsMs: number): void {
    // Only the blind stretch inside this window counts: a sensor back at
    // 05:00:00 after a 5 h outage saw all of the 05:00 window.
    this.maxSilenceMs = Math.max(this.maxSilenceMs, tsMs - Math.max(this.lastBeatMs ?? this.windowStart, this.windowStart));
    this.lastBeatMs = Math.max(tsMs, this.lastBeatMs ?? tsMs);
    this.heartbeats++;
  }

  get lastBeat(): number | null {
    return this.lastBeatMs;
  }

  /** Status and reasons at close; `windowEnd` bounds the trailing silence. */
  assess(windowEnd: number, maxSilenceMs: number): { status: WindowStatus; reasons: WindowReason[] } {
    if (this.heartbeats === 0) {
      const reasons: WindowReason[] = ['no_heartbeat'];
      if (this.clockJumps > 0) reasons.push('clock_jump');
      return { status: 'gap', reasons };
    }
    const reasons: WindowReason[] = [];
    if (this.restarts > 0) reasons.push('sensor_restart');
    if (this.drops > 0) reasons.push('drops');
    if (this.clockBackwards > 0) reasons.push('clock_backwards');
    if (this.clockJumps > 0) reasons.push('clock_jump');
    const trailing = windowEnd - Math.max(this.lastBeatMs ?? this.windowStart, this.windowStart);
    if (Math.max(this.maxSilenceMs, trailing) > maxSilenceMs) reasons.push('partial_coverage');
    return { status: reasons.length > 0 ? 'degraded' : 'ok', reasons };
  }
}
