import type { Band } from './band.js';
import { DAY_MS } from './options.js';
import type { PulseRepo, StoredPulseEvent } from './repo.js';
import type { LlmProviderWindow, WindowReason, WindowStatus } from './window.js';

/**
 * What the operator digest shows for the 24 hours ending at a window: per
 * agent, a rhythm strip of external flows with alerts and gaps, the
 * destinations seen for the first time, DNS/SNI names and the pulse events.
 * Metadata only — the store never holds payload, so neither can the digest.
 */
export interface StripCell {
  start: number;
  end: number;
  /** null: no row for this agent (not yet tracked, or removed). */
  externalFlows: number | null;
  flows: number | null;
  status: WindowStatus | 'none';
  reasons: WindowReason[];
  alert: boolean;
}

export interface AgentDigest {
  agent: string;
  quietStreak: number;
  alertActive: boolean;
  band: Band | null;
  strip: StripCell[];
  firstSeen: { destination: string; firstSeenMs: number }[];
  dnsNames: string[];
  sniNames: string[];
  /** bytes both ways on the agent's connections that ended in the span */
  bytes: number;
  /** model-provider traffic over the span, per provider */
  llmProviders: LlmProviderWindow[];
  events: StoredPulseEvent[];
}

export interface DigestModel {
  windowStart: number;
  windowEnd: number;
  windowMs: number;
  spanStart: number;
  agents: AgentDigest[];
  /** Pulse events not tied to a tracked agent (observer gaps before any agent). */
  otherEvents: StoredPulseEvent[];
}

const MAX_CELLS = 288;

export function buildDigest(repo: PulseRepo, windowStart: number, windowEnd: number): DigestModel {
  const windowMs = windowEnd - windowStart;
  const cells = Math.max(1, Math.min(MAX_CELLS, Math.round(DAY_MS / windowMs)));
  const spanStart = windowEnd - cells * windowMs;
  const rows = repo.windowsBetween(spanStart, windowEnd);
  const events = repo.eventsBetween(spanStart + 1, windowEnd).filter((e) => e.event !== 'pulse.first_seen');
  const firstSeen = repo.firstSeenBetween(spanStart, windowEnd);
  const states = new Map(repo.listAgents().map((a) => [a.agent, a]));
  const names = [...new Set([...rows.map((r) => r.agent)])].sort();

  const agents = names.map((agent): AgentDigest => {
    const mine = rows.filter((r) => r.agent === agent);
    const alertWindows = new Set(events.filter((e) => e.agent === agent && e.event === 'pulse.alert').map((e) => e.windowStart));
    const strip: StripCell[] = [];
    for (let i = 0; i < cells; i++) {
      const start = spanStart + i * windowMs;
      const end = start + windowMs;
      const row = mine.find((r) => r.windowStart <= start && r.windowEnd >= end) ?? mine.find((r) => r.windowStart === start);
      strip.push(row
        ? { start, end, externalFlows: row.externalFlows, flows: row.flows, status: row.status, reasons: row.reasons, alert: row.alertActive || alertWindows.has(row.windowStart) }
        : { start, end, externalFlows: null, flows: null, status: 'none', reasons: [], alert: false });
    }
    const state = states.get(agent);
    return {
      agent,
      quietStreak: state?.quietStreak ?? 0,
      alertActive: state?.alertActive ?? false,
      band: state?.lastBand ?? null,
      strip,
      firstSeen: firstSeen.filter((f) => f.agent === agent).map(({ destination, firstSeenMs }) => ({ destination, firstSeenMs })),
      dnsNames: [...new Set(mine.flatMap((r) => r.dnsNames))].sort(),
      sniNames: [...new Set(mine.flatMap((r) => r.sniNames))].sort(),
      bytes: mine.reduce((s, r) => s + r.bytes, 0),
      llmProviders: sumProviders(mine.flatMap((r) => r.llmProviders)),
      events: events.filter((e) => e.agent === agent),
    };
  });
  const otherEvents = events.filter((e) => !names.includes(e.agent));
  return { windowStart, windowEnd, windowMs, spanStart, agents, otherEvents };
}

/** One line describing a pulse event, for both renderers (plain text, unescaped). */
export function describeEvent(e: StoredPulseEvent): string {
  const a = e.attributes;
  switch (e.event) {
    case 'pulse.alert': return `quiet for ${String(a['witness.pulse.streak'])} windows (threshold ${String(a['witness.pulse.quiet_threshold'])} external flows)`;
    case 'pulse.alert_cleared': return 'activity resumed; quiet alert cleared';
    case 'pulse.gap': return `observer gap: ${listAttr(a['witness.pulse.reasons'])}`;
    case 'pulse.degraded': return `observation degraded: ${listAttr(a['witness.pulse.reasons'])}`;
    case 'pulse.drift': return `${String(a['witness.pulse.metric'])} = ${String(a['witness.pulse.value'])} ${String(a['witness.pulse.direction'])} band [${String(a['witness.pulse.band.low'])}, ${String(a['witness.pulse.band.high'])}]`;
    case 'pulse.beacon': return `beacon to ${String(a['witness.destination'])} score ${String(a['witness.pulse.score'])} (every ~${String(a['witness.pulse.interval.median_s'])} s)`;
    case 'pulse.first_seen': return `first contact with ${String(a['witness.destination'])}`;
    case 'pulse.fault': return `pulse fault ${String(a['witness.pulse.fault'])}: ${String(a['witness.pulse.detail'])}`;
    default: return e.event;
  }
}

function listAttr(v: unknown): string {
  return Array.isArray(v) ? v.map(String).join(', ') : String(v);
}

function sumProviders(rows: readonly LlmProviderWindow[]): LlmProviderWindow[] {
  const by = new Map<string, LlmProviderWindow>();
  for (const r of rows) {
    const p = by.get(r.provider) ?? { provider: r.provider, calls: 0, requestBytes: 0, responseBytes: 0 };
    by.set(r.provider, { provider: r.provider, calls: p.calls + r.calls, requestBytes: p.requestBytes + r.requestBytes, responseBytes: p.responseBytes + r.responseBytes });
  }
  return [...by.values()].sort((x, y) => (x.provider < y.provider ? -1 : 1));
}
