import type Database from 'better-sqlite3';
import { z } from 'zod';
import { WitnessError } from '../errors.js';
import type { Store } from '../store/db.js';
import type { Band } from './band.js';
import type { ExternalFlow, WindowReason, WindowRecord } from './window.js';

/**
 * All pulse SQL in one place. Every row read back is validated: a corrupt
 * row becomes an E_STORE error naming the database file and the row/column,
 * never a NaN that silently skews a band.
 */
export interface AgentState {
  agent: string;
  active: boolean;
  quietStreak: number;
  alertActive: boolean;
  lastWindowStart: number | null;
  lastWindowEnd: number | null;
  lastBand: Band | null;
}

export interface StoredPulseEvent {
  timeMs: number;
  event: string;
  agent: string;
  windowStart: number | null;
  attributes: Record<string, unknown>;
}

const int = z.number().int();
const jsonStrings = z.string().transform((s, ctx) => {
  try {
    const v: unknown = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'not a JSON array of strings' });
  return z.NEVER;
});
const bandSchema = z.object({ median: z.number(), low: z.number(), high: z.number(), samples: int }).strict();
const jsonBand = z.string().nullable().transform((s, ctx) => {
  if (s === null) return null;
  try {
    const parsed = bandSchema.safeParse(JSON.parse(s));
    if (parsed.success) return parsed.data;
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'not a JSON band {median, low, high, samples}' });
  return z.NEVER;
});

const windowRow = z.object({
  agent: z.string(), window_start: int, window_end: int, slot: int,
  status: z.enum(['ok', 'gap', 'degraded']), reasons: jsonStrings,
  flows: int, failed_flows: int, external_flows: int, unique_destinations: int, unique_external_destinations: int,
  first_seen: jsonStrings, dns_names: jsonStrings, sni_names: jsonStrings,
  execs: int, file_writes: int, sensitive_reads: int, findings: int, drops: int, heartbeats: int,
  quiet_streak: int, alert_active: z.union([z.literal(0), z.literal(1)]),
  bytes: int, llm_providers: z.string().transform((s, ctx) => {
    try {
      const parsed = z.array(z.object({ provider: z.string(), calls: int, requestBytes: int, responseBytes: int }).strict()).safeParse(JSON.parse(s));
      if (parsed.success) return parsed.data;
    } catch { /* reported below */ }
    ctx.addIssue({ code: 'custom', message: 'not a JSON array of {provider, calls, requestBytes, responseBytes}' });
    return z.NEVER;
  }),
});
const agentRow = z.object({
  agent: z.string(), active: z.union([z.literal(0), z.literal(1)]), quiet_streak: int,
  alert_active: z.union([z.literal(0), z.literal(1)]), last_window_start: int.nullable(),
  last_window_end: int.nullable(), last_band: jsonBand,
});
const eventRow = z.object({
  time_ms: int, event: z.string(), agent: z.string(), window_start: int.nullable(),
  attributes: z.string().transform((s, ctx) => {
    try {
      const v: unknown = JSON.parse(s);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch { /* reported below */ }
    ctx.addIssue({ code: 'custom', message: 'not a JSON object' });
    return z.NEVER;
  }),
});

export class PulseRepo {
  readonly db: Database.Database;
  readonly file: string;

  constructor(store: Store) {
    this.db = store.db;
    this.file = store.path;
  }

  private parse<S extends z.ZodType>(schema: S, row: unknown, where: string): z.output<S> {
    const r = schema.safeParse(row);
    if (r.success) return r.data;
    const issue = r.error.issues[0]!;
    throw new WitnessError('E_STORE', `corrupt row: ${issue.message}`, { file: this.file, field: `${where}.${issue.path.join('.')}` });
  }

  transaction<T>(fn: () => T): T {
    // BEGIN IMMEDIATE: with the events table's writer thread on the same file, a deferred
    // transaction that read first could not take the write lock after that thread committed
    return this.db.transaction(fn).immediate();
  }

  getMeta(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM pulse_meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  getMetaNumber(key: string): number | null {
    const v = this.getMeta(key);
    if (v === undefined) return null;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new WitnessError('E_STORE', `corrupt value '${v}'`, { file: this.file, field: `pulse_meta.${key}` });
    return n;
  }

  setMeta(key: string, value: string | number | null): void {
    if (value === null) this.db.prepare('DELETE FROM pulse_meta WHERE key = ?').run(key);
    else this.db.prepare('INSERT INTO pulse_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, String(value));
  }

  agentState(agent: string): AgentState | undefined {
    const row = this.db.prepare('SELECT * FROM pulse_agents WHERE agent = ?').get(agent);
    return row === undefined ? undefined : this.toAgent(row);
  }

  listAgents(): AgentState[] {
    return this.db.prepare('SELECT * FROM pulse_agents ORDER BY agent').all().map((r) => this.toAgent(r));
  }

  private toAgent(row: unknown): AgentState {
    const name = (row as { agent?: unknown }).agent;
    const r = this.parse(agentRow, row, `pulse_agents(agent=${String(name)})`);
    return {
      agent: r.agent, active: r.active === 1, quietStreak: r.quiet_streak, alertActive: r.alert_active === 1,
      lastWindowStart: r.last_window_start, lastWindowEnd: r.last_window_end, lastBand: r.last_band,
    };
  }

  saveAgent(s: AgentState): void {
    this.db.prepare(`INSERT INTO pulse_agents (agent, active, quiet_streak, alert_active, last_window_start, last_window_end, last_band)
      VALUES (@agent, @active, @quietStreak, @alertActive, @lastWindowStart, @lastWindowEnd, @lastBand)
      ON CONFLICT(agent) DO UPDATE SET active = excluded.active, quiet_streak = excluded.quiet_streak,
        alert_active = excluded.alert_active, last_window_start = excluded.last_window_start,
        last_window_end = excluded.last_window_end, last_band = excluded.last_band`).run({
      ...s, active: s.active ? 1 : 0, alertActive: s.alertActive ? 1 : 0,
      lastBand: s.lastBand === null ? null : JSON.stringify(s.lastBand),
    });
  }

  countWindowsAt(windowStart: number): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM pulse_windows WHERE window_start = ?').get(windowStart) as { n: number }).n;
  }

  /** INSERT OR IGNORE: a duplicate leaves the count short, which the importer turns into a fault. */
  insertWindow(r: WindowRecord): number {
    return this.db.prepare(`INSERT OR IGNORE INTO pulse_windows VALUES (
      @agent, @windowStart, @windowEnd, @slot, @status, @reasons, @flows, @failedFlows, @externalFlows,
      @uniqueDestinations, @uniqueExternalDestinations, @firstSeen, @dnsNames, @sniNames, @execs, @fileWrites,
      @sensitiveReads, @findings, @drops, @heartbeats, @quietStreak, @alertActive, @bytes, @llmProviders)`).run({
      ...r, reasons: JSON.stringify(r.reasons), firstSeen: JSON.stringify(r.firstSeen),
      dnsNames: JSON.stringify(r.dnsNames), sniNames: JSON.stringify(r.sniNames), alertActive: r.alertActive ? 1 : 0,
      llmProviders: JSON.stringify(r.llmProviders),
    }).changes;
  }

  private toWindow(row: unknown): WindowRecord {
    const k = row as { agent?: unknown; window_start?: unknown };
    const r = this.parse(windowRow, row, `pulse_windows(agent=${String(k.agent)}, window_start=${String(k.window_start)})`);
    return {
      agent: r.agent, windowStart: r.window_start, windowEnd: r.window_end, slot: r.slot, status: r.status,
      reasons: r.reasons as WindowReason[], flows: r.flows, failedFlows: r.failed_flows, externalFlows: r.external_flows,
      uniqueDestinations: r.unique_destinations, uniqueExternalDestinations: r.unique_external_destinations,
      firstSeen: r.first_seen, dnsNames: r.dns_names, sniNames: r.sni_names, execs: r.execs, fileWrites: r.file_writes,
      sensitiveReads: r.sensitive_reads, findings: r.findings, drops: r.drops, heartbeats: r.heartbeats,
      quietStreak: r.quiet_streak, alertActive: r.alert_active === 1, bytes: r.bytes, llmProviders: r.llm_providers,
    };
  }

  /** Healthy windows of the same slot in [since, before), newest first. */
  slotHistory(agent: string, slot: number, since: number, before: number, limit: number): WindowRecord[] {
    return this.db.prepare(`SELECT * FROM pulse_windows WHERE agent = ? AND slot = ? AND status = 'ok'
      AND window_start >= ? AND window_start < ? ORDER BY window_start DESC LIMIT ?`)
      .all(agent, slot, since, before, limit).map((r) => this.toWindow(r));
  }

  /** Windows overlapping [from, to), oldest first. */
  windowsBetween(from: number, to: number, agent?: string): WindowRecord[] {
    const rows = agent === undefined
      ? this.db.prepare('SELECT * FROM pulse_windows WHERE window_end > ? AND window_start < ? ORDER BY window_start, agent').all(from, to)
      : this.db.prepare('SELECT * FROM pulse_windows WHERE window_end > ? AND window_start < ? AND agent = ? ORDER BY window_start').all(from, to, agent);
    return rows.map((r) => this.toWindow(r));
  }

  latestWindowEnd(): number | null {
    const row = this.db.prepare('SELECT MAX(window_end) AS e FROM pulse_windows').get() as { e: unknown };
    if (row.e === null) return null;
    return this.parse(int, row.e, 'pulse_windows.window_end');
  }

  hasDestination(agent: string, destination: string): boolean {
    return this.db.prepare('SELECT 1 FROM pulse_destinations WHERE agent = ? AND destination = ?').get(agent, destination) !== undefined;
  }

  addDestination(agent: string, destination: string, firstSeenMs: number): void {
    this.db.prepare('INSERT INTO pulse_destinations (agent, destination, first_seen_ms) VALUES (?, ?, ?)').run(agent, destination, firstSeenMs);
  }

  insertFlows(agent: string, flows: readonly ExternalFlow[]): void {
    const stmt = this.db.prepare('INSERT INTO pulse_flows (agent, destination, ts_ms, bytes) VALUES (?, ?, ?, ?)');
    for (const f of flows) stmt.run(agent, f.destination, f.tsMs, f.bytes);
  }

  pruneFlows(before: number): void {
    this.db.prepare('DELETE FROM pulse_flows WHERE ts_ms < ?').run(before);
  }

  loadFlows(since: number): { agent: string; flow: ExternalFlow }[] {
    const rows = this.db.prepare('SELECT agent, destination, ts_ms, bytes FROM pulse_flows WHERE ts_ms >= ? ORDER BY ts_ms').all(since);
    const schema = z.object({ agent: z.string(), destination: z.string(), ts_ms: int, bytes: int.nullable() });
    return rows.map((row) => {
      const r = this.parse(schema, row, 'pulse_flows');
      return { agent: r.agent, flow: { destination: r.destination, tsMs: r.ts_ms, bytes: r.bytes } };
    });
  }

  activeBeacons(): Set<string> {
    const rows = this.db.prepare('SELECT agent, destination FROM pulse_beacons').all() as { agent: string; destination: string }[];
    return new Set(rows.map((r) => beaconKey(r.agent, r.destination)));
  }

  setBeacon(agent: string, destination: string, score: number | null, sinceMs: number): void {
    if (score === null) this.db.prepare('DELETE FROM pulse_beacons WHERE agent = ? AND destination = ?').run(agent, destination);
    else this.db.prepare('INSERT OR REPLACE INTO pulse_beacons (agent, destination, score, since_ms) VALUES (?, ?, ?, ?)').run(agent, destination, score, sinceMs);
  }

  insertEvent(e: StoredPulseEvent): void {
    this.db.prepare('INSERT INTO pulse_events (time_ms, event, agent, window_start, attributes) VALUES (?, ?, ?, ?, ?)')
      .run(e.timeMs, e.event, e.agent, e.windowStart, JSON.stringify(e.attributes));
  }

  eventsBetween(from: number, to: number): StoredPulseEvent[] {
    return this.db.prepare('SELECT time_ms, event, agent, window_start, attributes FROM pulse_events WHERE time_ms >= ? AND time_ms <= ? ORDER BY id')
      .all(from, to).map((row, i) => {
        const r = this.parse(eventRow, row, `pulse_events[${i}]`);
        return { timeMs: r.time_ms, event: r.event, agent: r.agent, windowStart: r.window_start, attributes: r.attributes };
      });
  }

  firstSeenBetween(from: number, to: number): { agent: string; destination: string; firstSeenMs: number }[] {
    const rows = this.db.prepare('SELECT agent, destination, first_seen_ms FROM pulse_destinations WHERE first_seen_ms >= ? AND first_seen_ms < ? ORDER BY first_seen_ms')
      .all(from, to) as { agent: string; destination: string; first_seen_ms: number }[];
    return rows.map((r) => ({ agent: r.agent, destination: r.destination, firstSeenMs: r.first_seen_ms }));
  }
}

export function beaconKey(agent: string, destination: string): string {
  return `${agent}\u0000${destination}`;
}
