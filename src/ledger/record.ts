/**
 * One ledger record is one line. Two forms; both are valid JSON whenever the
 * event is, and the event's bytes sit verbatim after `"event":` and before
 * the final `}`:
 *
 *   v2 (written since wave 2):  {"seq":N,"event":<event bytes>}\n
 *   v1 (still read):            {"seq":N,"prev_chain":"<hex>","leaf_hash":"<hex>","chain_hash":"<hex>","event":<event bytes>}\n
 *
 * The hashes v1 stored per record are all functions of the event bytes and
 * the previous record (leaf = H(event), chain = H(prev || leaf)); verifiers
 * recompute them either way and the signed checkpoints decide, so v2 leaves
 * them out (≈200 bytes a record: docs/ledger.md §2). What v1's copies added
 * was pinpointing a *naive* edit to its record; an editor who rewrote them
 * too was only ever caught at the checkpoint, which is still the case.
 * Verification slices the event bytes out of the line and never
 * re-serialises anything; field order and spelling are fixed.
 */
const P_SEQ = '{"seq":';
const P_PREV = ',"prev_chain":"';
const P_LEAF = '","leaf_hash":"';
const P_CHAIN = '","chain_hash":"';
const P_EVENT = '","event":';

const P_EVENT_V2 = ',"event":';

/** A v2 record line (with its newline). */
export function formatRecord(seq: number, event: string): string {
  return recordHead(seq) + event + '}\n';
}

/** What precedes the event bytes in a v2 record (ASCII); the writer lays out head, event, `}\n` without concatenating. */
export function recordHead(seq: number): string {
  return P_SEQ + seq + P_EVENT_V2;
}

/** A v1 record line; only tests and fixtures of old ledgers write these now. */
export function formatRecordV1(seq: number, prevHex: string, leafHex: string, chainHex: string, event: string): string {
  return P_SEQ + seq + P_PREV + prevHex + P_LEAF + leafHex + P_CHAIN + chainHex + P_EVENT + event + '}\n';
}

export interface ParsedRecord {
  seq: number;
  /** v1 only (null in v2): the stored copies, checked against the recomputed values */
  prevHex: string | null;
  leafHex: string | null;
  chainHex: string | null;
  /** Absolute byte offsets of the event bytes inside the buffer that was parsed. */
  eventStart: number;
  eventEnd: number;
}

const B_SEQ = Buffer.from(P_SEQ);
const B_PREV = Buffer.from(P_PREV);
const B_LEAF = Buffer.from(P_LEAF);
const B_CHAIN = Buffer.from(P_CHAIN);
const B_EVENT = Buffer.from(P_EVENT);
const B_EVENT_V2 = Buffer.from(P_EVENT_V2);
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
  if (end - start < B_SEQ.length + 1 + B_EVENT_V2.length + 2 || !expect(buf, p, B_SEQ)) return 'not a ledger record (bad prefix)';
  p += B_SEQ.length;
  let seq = 0;
  const digitsStart = p;
  while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { seq = seq * 10 + (buf[p]! - 48); p++; }
  if (p === digitsStart || p - digitsStart > 15 || (buf[digitsStart] === 48 && p - digitsStart > 1)) return 'malformed seq';
  if (p + B_EVENT_V2.length < end && expect(buf, p, B_EVENT_V2)) {
    p += B_EVENT_V2.length;
    if (buf[end - 1] !== CLOSE_BRACE || end - 1 <= p) return 'record does not end with the event and "}"';
    return { seq, prevHex: null, leafHex: null, chainHex: null, eventStart: p, eventEnd: end - 1 };
  }
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
