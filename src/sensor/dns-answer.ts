import { dnsTypeName, readDnsName } from './dns.js';

/**
 * Parses a DNS response captured by the `wa_dns_answer` probe (bytes a
 * traced process received on a socket it had sent a query on): the question,
 * and the answer section's A / AAAA / CNAME records with their TTLs.
 *
 * Hostile input again (anything may answer on that socket), so the parser is
 * total and bounded: names follow dns.ts's rule that compression pointers
 * point strictly backwards (a loop cannot be expressed), at most MAX_RECORDS
 * answers are read, and every length is checked against the capture.
 * A TCP answer carries a 2-byte length prefix; it is recognised by that
 * prefix matching the capture and the QR bit being set behind it.
 */

export interface DnsAnswerRecord {
  name: string;
  type: string;
  ttl: number;
  /** the address for A / AAAA, the target for CNAME, '' for other types */
  data: string;
}

export type DnsAnswerResult =
  | {
    ok: true;
    id: number;
    /** RCODE: 0 NOERROR, 3 NXDOMAIN, ... */
    rcode: number;
    /** the first question's name, null without one */
    question: string | null;
    records: DnsAnswerRecord[];
    /** A and AAAA addresses of the answer section, in order */
    addresses: string[];
    /** CNAME targets in order (the chain from the question to the addresses) */
    cnames: string[];
    /** lowest TTL among the address records, null without any */
    minTtl: number | null;
    /** the capture ended before the records did; what was read is kept */
    truncated: boolean;
  }
  | { ok: false; error: string; truncated: boolean };

const MAX_RECORDS = 64;
const be16 = (b: Uint8Array, at: number): number => ((b[at] as number) << 8) | (b[at + 1] as number);

export function ipv4Text(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text of 16 address bytes (longest run of zero groups as ::, v4-mapped as ::ffff:a.b.c.d). */
export function ipv6Text(b: Uint8Array, at: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(be16(b, at + 2 * i));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return `::ffff:${ipv4Text(b, at + 12)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function parseDnsAnswer(bytes: Uint8Array, captureTruncated = false): DnsAnswerResult {
  let msg = 0;
  if (bytes.length >= 14 && be16(bytes, 0) === bytes.length - 2 && ((bytes[4] as number) & 0x80) !== 0) msg = 2;
  return parseResponse(bytes, msg, bytes.length, captureTruncated);
}

function parseResponse(b: Uint8Array, msg: number, end: number, truncated: boolean): DnsAnswerResult {
  if (end - msg < 12) return { ok: false, error: `DNS message of ${end - msg} byte(s) is shorter than the 12-byte header`, truncated };
  const id = be16(b, msg);
  const flags = be16(b, msg + 2);
  if ((flags & 0x8000) === 0) return { ok: false, error: 'QR bit clear: a query, not a response', truncated };
  const qd = be16(b, msg + 4);
  const an = be16(b, msg + 6);
  let p = msg + 12;
  let question: string | null = null;
  const out = { ok: true as const, id, rcode: flags & 0xf, question: null as string | null, records: [] as DnsAnswerRecord[], addresses: [] as string[], cnames: [] as string[], minTtl: null as number | null, truncated };
  for (let i = 0; i < qd && i < MAX_RECORDS; i++) {
    const n = readDnsName(b, msg, end, p);
    if ('error' in n) return cut(out, truncated, `question ${i + 1}: ${n.error}`);
    if (n.next + 4 > end) return cut(out, truncated, `question ${i + 1}: type and class run past the end`);
    if (question === null) question = n.name;
    p = n.next + 4;
  }
  out.question = question;
  for (let i = 0; i < an && i < MAX_RECORDS; i++) {
    const n = readDnsName(b, msg, end, p);
    if ('error' in n) return cut(out, truncated, `answer ${i + 1}: ${n.error}`);
    p = n.next;
    if (p + 10 > end) return cut(out, truncated, `answer ${i + 1}: fixed fields run past the end`);
    const type = be16(b, p);
    const ttl = ((b[p + 4] as number) * 0x1000000) + (((b[p + 5] as number) << 16) | ((b[p + 6] as number) << 8) | (b[p + 7] as number));
    const rdlen = be16(b, p + 8);
    const rd = p + 10;
    if (rd + rdlen > end) return cut(out, truncated, `answer ${i + 1}: rdata of ${rdlen} byte(s) runs past the end`);
    p = rd + rdlen;
    let data = '';
    if (type === 1 && rdlen === 4) data = ipv4Text(b, rd);
    else if (type === 28 && rdlen === 16) data = ipv6Text(b, rd);
    else if (type === 5) {
      const t = readDnsName(b, msg, rd + rdlen, rd);
      if ('error' in t) return cut(out, truncated, `answer ${i + 1}: CNAME target: ${t.error}`);
      data = t.name;
      out.cnames.push(data);
    }
    if (data !== '' && type !== 5) {
      out.addresses.push(data);
      out.minTtl = out.minTtl === null ? ttl : Math.min(out.minTtl, ttl);
    }
    out.records.push({ name: n.name, type: dnsTypeName(type), ttl, data });
  }
  return out;
}

/** A capture cut short keeps what was read; a message malformed inside the capture is an error. */
function cut(out: Extract<DnsAnswerResult, { ok: true }>, truncated: boolean, error: string): DnsAnswerResult {
  if (truncated) return out;
  return { ok: false, error, truncated };
}
