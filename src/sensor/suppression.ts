import { parseDnsPayload } from './dns.js';
import { LAYOUT as L } from './layout.js';
import { addressText, setTextBatch } from './text.js';
import { RECORD_KIND_NAMES, type SuppressedEvent } from './types.js';

/** One repeat counter as the addon copies it out of the kernel's wa_suppress map (bpf/maps.h). */
export interface SuppressRow {
  pid: number;
  /** wa_event_type of the repeats */
  type: number;
  hash: bigint;
  /** repeats counted since the counter began; only ever grows */
  count: number;
  winStartNs: bigint;
  firstNs: bigint;
  lastNs: bigint;
  keyFullLen: number;
  key: Buffer;
  uid: number;
  gid: number;
  cgroupId: bigint;
  comm: string;
  /** removed from the kernel map in this sweep: its count is final */
  deleted: boolean;
}

export interface BudgetConfig {
  /** records per process, per kind, per window before repeats are counted; 0: no budget */
  budget: number;
  windowNs: number;
}

/** The key bytes the kernel kept, as text (see wa_admit's callers for what each kind keys on). */
export function suppressedKeyText(type: number, key: Buffer): string | null {
  if (type === L.WA_EV_CONNECT) {
    if (key.length < L['wa_sockaddr.$size']) return null;
    const family = key.readUInt16LE(L['wa_sockaddr.family']);
    const port = key.readUInt16LE(L['wa_sockaddr.port']);
    setTextBatch(key);
    const addr = addressText(family, L['wa_sockaddr.addr']);
    if (addr === null) return null;
    return family === 10 ? `[${addr}]:${port}` : `${addr}:${port}`;
  }
  if (type === L.WA_EV_DNS) {
    // the kernel keys on the message past its 2-byte ID: put a zero ID back to parse it
    const msg = Buffer.concat([Buffer.alloc(2), key]);
    const parsed = parseDnsPayload(msg, 0, msg.length, { sockType: 2, protocol: 17, truncated: true });
    if (!parsed.ok || parsed.questions.length === 0) return null;
    return parsed.questions.map((q) => `${q.name} ${q.type}`).join(', ');
  }
  return key.toString('utf8');
}

interface Reported { count: number; toNs: bigint }

/**
 * Turns the kernel's cumulative repeat counters into sensor.suppressed
 * summaries: each sweep reports what each counter gained since the last, so
 * the summaries' counts add up to exactly what the kernel counted. Counters
 * idle for two windows are deleted by the sweep (their last gain reported);
 * the final sweep, after the probes are detached, takes every counter.
 */
export class SuppressionSummarizer {
  private readonly reported = new Map<string, Reported>();
  /** repeats summarised so far, per kind name */
  readonly summarized: Record<string, number> = {};

  constructor(private readonly cfg: BudgetConfig) {}

  summarize(rows: SuppressRow[], final: boolean): SuppressedEvent[] {
    const out: SuppressedEvent[] = [];
    for (const r of rows) {
      const id = `${r.pid}:${r.type}:${r.hash}`;
      const prev = this.reported.get(id);
      const gained = r.count - (prev?.count ?? 0);
      if (r.deleted) this.reported.delete(id);
      if (gained <= 0) continue;
      if (!r.deleted) this.reported.set(id, { count: r.count, toNs: r.lastNs });
      const kind = RECORD_KIND_NAMES[r.type] ?? String(r.type);
      this.summarized[kind] = (this.summarized[kind] ?? 0) + gained;
      out.push({
        kind: 'suppressed',
        pid: r.pid, tid: 0, uid: r.uid, gid: r.gid, cgroupId: r.cgroupId, comm: r.comm,
        tsBootNs: r.lastNs, flags: 0,
        suppressedKind: kind,
        key: suppressedKeyText(r.type, r.key),
        keyTruncated: r.keyFullLen > r.key.length,
        keyHash: r.hash.toString(16).padStart(16, '0'),
        count: gained,
        fromBootNs: prev ? prev.toNs : r.firstNs,
        toBootNs: r.lastNs,
        windowNs: this.cfg.windowNs,
        budget: this.cfg.budget,
        final,
      });
    }
    return out;
  }

  /**
   * After the final sweep: what the kernel counted per kind and no counter
   * accounts for (a repeat counted into a counter the sweep was deleting in
   * the same instant) becomes one summary without a key, so the totals still
   * add up and nothing is unaccounted.
   */
  reconcile(kernelSuppressed: Record<string, number>, nowBootNs: bigint): SuppressedEvent[] {
    const out: SuppressedEvent[] = [];
    for (const [kind, total] of Object.entries(kernelSuppressed)) {
      const missing = total - (this.summarized[kind] ?? 0);
      if (missing <= 0) continue;
      this.summarized[kind] = total;
      out.push({
        kind: 'suppressed', pid: 0, tid: 0, uid: 0, gid: 0, cgroupId: 0n, comm: '', tsBootNs: nowBootNs, flags: 0,
        suppressedKind: kind, key: null, keyTruncated: false, keyHash: '0000000000000000', count: missing,
        fromBootNs: nowBootNs, toBootNs: nowBootNs, windowNs: this.cfg.windowNs, budget: this.cfg.budget, final: true,
      });
    }
    return out;
  }
}
