import fs from 'node:fs';
import { parseRecord } from './record.js';

export interface GapReport { log: string; from: string; to: string; cause: string; records: number }

const NEEDLE = Buffer.from('"event":"ledger.gap"');

/**
 * The write outages a log recorded about itself (`ledger.gap` records, see
 * docs/ledger.md §5): what verify lists next to VERIFIED, so a gap is never
 * mistaken for a quiet period. A substring scan: gap records are rare.
 * A retry that wrote its gap record but failed to seal it is followed by
 * another record of the same outage (same log, same start): the last one,
 * which has the final end and counts, stands for it.
 */
export function collectGaps(eventsFile: string, logName: string): GapReport[] {
  let buf: Buffer;
  try { buf = fs.readFileSync(eventsFile); } catch { return []; }
  const out: GapReport[] = [];
  for (let at = buf.indexOf(NEEDLE); at !== -1; at = buf.indexOf(NEEDLE, at + NEEDLE.length)) {
    const start = buf.lastIndexOf(0x0a, at) + 1;
    const end = buf.indexOf(0x0a, at);
    if (end === -1) break;
    const rec = parseRecord(buf, start, end);
    if (typeof rec === 'string') continue;
    try {
      const a = (JSON.parse(buf.toString('utf8', rec.eventStart, rec.eventEnd)) as { attributes: Record<string, unknown> }).attributes;
      out.push({
        log: logName,
        from: String(a['witness.ledger.gap.from']),
        to: String(a['witness.ledger.gap.to']),
        cause: String(a['witness.ledger.gap.cause']),
        records: Number(a['witness.ledger.gap.records']),
      });
    } catch { /* an event that merely mentions the string */ }
  }
  const last = new Map<string, GapReport>();
  for (const g of out) last.set(g.from, g);
  return [...last.values()];
}
