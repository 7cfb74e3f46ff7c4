/**
 * One ledger record is one line:
 *
 *   {"seq":N,"prev_chain":"<hex>","leaf_hash":"<hex>","chain_hash":"<hex>","event":<event bytes>}\n
 *
 * The event's bytes are stored verbatim after `"event":` and before the final
 * `}`; they are what leaf_hash covers, so verification slices them out of the
 * line and never re-serialises anything. Field order and spelling are fixed,
 * which is what makes byte-slicing safe; the whole line is still valid JSON
 * whenever the event is.
 */
const P_SEQ = '{"seq":';
const P_PREV = ',"prev_chain":"';
const P_LEAF = '","leaf_hash":"';
const P_CHAIN = '","chain_hash":"';
const P_EVENT = '","event":';

export function formatRecord(seq: number, prevHex: string, leafHex: string, chainHex: string, event: string): string {
  return P_SEQ + seq + P_PREV + prevHex + P_LEAF + leafHex + P_CHAIN + chainHex + P_EVENT + event + '}\n';
}

export interface ParsedRecord {
  seq: number;
  prevHex: string;
  leafHex: string;
  chainHex: string;
  /** Absolute byte offsets of the event bytes inside the buffer that was parsed. */
  eventStart: number;
  eventEnd: number;
}

const B_SEQ = Buffer.from(P_SEQ);
const B_PREV = Buffer.from(P_PREV);
const B_LEAF = Buffer.from(P_LEAF);
const B_CHAIN = Buffer.from(P_CHAIN);
const B_EVENT = Buffer.from(P_EVENT);
const HEX_LEN = 64;
const CLOSE_BRACE = 0x7d;

function expect(buf: Buffer, at: number, lit: Buffer): boolean {
  return buf.compare(lit, 0, lit.length, at, at + lit.length) === 0;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Parses the record occupying buf[start, end) (no trailing newline).
 * Returns a reason string when the line is not a well-formed record.
 */
export function parseRecord(buf: Buffer, start: number, end: number): ParsedRecord | string {
  let p = start;
  if (end - start < B_SEQ.length + 1 + B_PREV.length + 3 * HEX_LEN + 30 || !expect(buf, p, B_SEQ)) return 'not a ledger record (bad prefix)';
  p += B_SEQ.length;
  let seq = 0;
  const digitsStart = p;
  while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { seq = seq * 10 + (buf[p]! - 48); p++; }
  if (p === digitsStart || p - digitsStart > 15 || (buf[digitsStart] === 48 && p - digitsStart > 1)) return 'malformed seq';
  const hexAt = (lit: Buffer): string | null => {
    if (p + lit.length + HEX_LEN > end || !expect(buf, p, lit)) return null;
    p += lit.length;
    const s = buf.toString('latin1', p, p + HEX_LEN);
    p += HEX_LEN;
    return HEX64.test(s) ? s : null;
  };
  const prevHex = hexAt(B_PREV);
  if (prevHex === null) return 'malformed prev_chain';
  const leafHex = hexAt(B_LEAF);
  if (leafHex === null) return 'malformed leaf_hash';
  const chainHex = hexAt(B_CHAIN);
  if (chainHex === null) return 'malformed chain_hash';
  if (p + B_EVENT.length >= end || !expect(buf, p, B_EVENT)) return 'malformed event field';
  p += B_EVENT.length;
  if (buf[end - 1] !== CLOSE_BRACE || end - 1 <= p) return 'record does not end with the event and "}"';
  return { seq, prevHex, leafHex, chainHex, eventStart: p, eventEnd: end - 1 };
}
