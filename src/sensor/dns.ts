/**
 * Parses the question section of a DNS query captured by the `wa_dns` probe.
 *
 * The capture is whatever the process handed to a send syscall, so the
 * framing depends on the socket: a UDP socket sends a bare DNS message, a TCP
 * socket sends a 2-byte big-endian length prefix first, and a raw socket
 * sends the UDP header (and, with IP_HDRINCL / IPPROTO_RAW, the IP header)
 * before the message. Only the header and questions are read; answers and the
 * additional section (EDNS0 OPT, cookies) are skipped.
 *
 * Input is hostile (any process can send any bytes to port 53), so every
 * failure is a result, never a throw: compression pointers must point
 * strictly backwards (which also makes loops impossible), label types other
 * than plain labels and pointers are rejected, and names stop at 255 bytes.
 */

export interface DnsQuestion {
  /** presentation form without the trailing dot ('.' for the root); non-printable bytes as \DDD */
  name: string;
  /** 'A', 'AAAA', ... or the decimal number when the type has no name here */
  type: string;
  /** 'IN', 'CH', ... or the decimal number */
  class: string;
}

export type DnsParseResult =
  | { ok: true; id: number; questions: DnsQuestion[]; truncated: boolean }
  | { ok: false; error: string; truncated: boolean };

export interface DnsPayloadContext {
  /** SOCK_STREAM=1, SOCK_DGRAM=2, SOCK_RAW=3, 0 unknown */
  sockType: number;
  /** IPPROTO_* of the socket, 0 unknown */
  protocol: number;
  /** the capture stopped before the end of what was sent (WA_F_TRUNC_PAYLOAD or orig_len > payload_len) */
  truncated: boolean;
}

const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_RAW = 3;
const IPPROTO_UDP = 17;
const IPPROTO_RAW = 255;
const DNS_PORT = 53;
const HEADER_LEN = 12;
const MAX_NAME_WIRE_LEN = 255;

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 13: 'HINFO', 15: 'MX', 16: 'TXT', 17: 'RP',
  18: 'AFSDB', 24: 'SIG', 25: 'KEY', 28: 'AAAA', 29: 'LOC', 33: 'SRV', 35: 'NAPTR', 36: 'KX',
  37: 'CERT', 39: 'DNAME', 41: 'OPT', 42: 'APL', 43: 'DS', 44: 'SSHFP', 45: 'IPSECKEY', 46: 'RRSIG',
  47: 'NSEC', 48: 'DNSKEY', 49: 'DHCID', 50: 'NSEC3', 51: 'NSEC3PARAM', 52: 'TLSA', 53: 'SMIMEA',
  55: 'HIP', 59: 'CDS', 60: 'CDNSKEY', 61: 'OPENPGPKEY', 62: 'CSYNC', 63: 'ZONEMD', 64: 'SVCB',
  65: 'HTTPS', 99: 'SPF', 108: 'EUI48', 109: 'EUI64', 249: 'TKEY', 250: 'TSIG', 251: 'IXFR',
  252: 'AXFR', 255: 'ANY', 256: 'URI', 257: 'CAA',
};

const CLASS_NAMES: Record<number, string> = { 1: 'IN', 3: 'CH', 4: 'HS', 254: 'NONE', 255: 'ANY' };

export function dnsTypeName(type: number): string {
  return TYPE_NAMES[type] ?? String(type);
}

export function dnsClassName(cls: number): string {
  return CLASS_NAMES[cls] ?? String(cls);
}

function be16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}

/**
 * Parses the captured payload bytes[start, end) of a wa_dns record.
 * `ctx` says how the socket frames the message.
 */
export function parseDnsPayload(bytes: Uint8Array, start: number, end: number, ctx: DnsPayloadContext): DnsParseResult {
  const truncated = ctx.truncated;
  const len = end - start;
  const sockType = ctx.sockType & 0xf; // SOCK_NONBLOCK/SOCK_CLOEXEC live above the type bits
  if (sockType === SOCK_RAW) {
    const msg = skipRawHeaders(bytes, start, end, ctx.protocol);
    if (msg < 0) return fail('raw payload is not a UDP datagram to port 53 (no UDP or IPv4/IPv6+UDP header with destination port 53)', truncated);
    return parseMessage(bytes, msg, end, truncated);
  }
  const looksPrefixed = len >= 2 + HEADER_LEN && be16(bytes, start) + 2 <= len && be16(bytes, start) >= HEADER_LEN;
  if (sockType === SOCK_STREAM || (sockType !== SOCK_DGRAM && looksPrefixed && be16(bytes, start) + 2 === len)) {
    if (len < 2) return fail(`TCP write of ${len} byte(s) is shorter than the 2-byte length prefix`, truncated);
    if (len === 2 && !truncated) return fail('TCP write carries only the 2-byte length prefix (message sent separately)', truncated);
    const declared = be16(bytes, start);
    if (looksPrefixed) return parseMessage(bytes, start + 2, start + 2 + declared, truncated);
    if (truncated && declared + 2 > len) return parseMessage(bytes, start + 2, end, truncated);
    // Some resolvers write the length prefix and the message in two writes;
    // this write is then the bare message.
    return parseMessage(bytes, start, end, truncated);
  }
  return parseMessage(bytes, start, end, truncated);
}

/** Convenience for a bare DNS message (UDP framing). */
export function parseDnsMessage(bytes: Uint8Array, truncated = false): DnsParseResult {
  return parseMessage(bytes, 0, bytes.length, truncated);
}

/** Returns the offset of the DNS message inside a raw-socket payload, or -1. */
function skipRawHeaders(b: Uint8Array, start: number, end: number, protocol: number): number {
  // Without IP_HDRINCL a raw UDP socket's payload starts at the UDP header.
  // Try that first unless the socket is IPPROTO_RAW (which implies
  // IP_HDRINCL): a UDP source port in 0x4000-0x4fff also starts with nibble 4.
  if (protocol !== IPPROTO_RAW && end - start >= 8 && be16(b, start + 2) === DNS_PORT) return start + 8;
  if (end - start < 1) return -1;
  const version = (b[start] as number) >> 4;
  let udp = -1;
  if (version === 4) {
    const ihl = ((b[start] as number) & 0xf) * 4;
    if (ihl >= 20 && b[start + 9] === IPPROTO_UDP) udp = start + ihl;
  } else if (version === 6) {
    // Fixed 40-byte header; extension headers before UDP are not followed.
    if (b[start + 6] === IPPROTO_UDP) udp = start + 40;
  }
  if (udp < 0 || udp + 8 > end || be16(b, udp + 2) !== DNS_PORT) return -1;
  return udp + 8;
}

function fail(error: string, truncated: boolean): DnsParseResult {
  return { ok: false, error, truncated };
}

// readName's second and third results; module state avoids an object per name.
let nameNext = 0;
let nameError = '';
/** the name ran past the captured bytes (as opposed to being malformed) */
let nameRanOut = false;

function parseMessage(b: Uint8Array, msg: number, end: number, truncated: boolean): DnsParseResult {
  if (end - msg < HEADER_LEN) {
    return fail(`DNS message of ${Math.max(0, end - msg)} byte(s) is shorter than the 12-byte header`, truncated);
  }
  const id = be16(b, msg);
  const qdcount = be16(b, msg + 4);
  const questions: DnsQuestion[] = [];
  let p = msg + HEADER_LEN;
  for (let i = 0; i < qdcount; i++) {
    const name = readName(b, msg, end, p);
    if (name === null) {
      if (nameRanOut && truncated) break; // capture cut mid-question: keep what was read
      return fail(`question ${i + 1} of ${qdcount}: ${nameError}`, truncated);
    }
    p = nameNext;
    if (p + 4 > end) {
      if (truncated) break;
      return fail(`question ${i + 1} of ${qdcount}: type and class run past the end of the message`, truncated);
    }
    questions.push({ name, type: dnsTypeName(be16(b, p)), class: dnsClassName(be16(b, p + 2)) });
    p += 4;
  }
  return { ok: true, id, questions, truncated };
}

/** Reads the domain name at `pos`; sets nameNext, or returns null and sets nameError. */
function readName(b: Uint8Array, msg: number, end: number, pos: number): string | null {
  let out = '';
  let wireLen = 1; // the root label's zero byte
  let next = -1;
  let lowest = pos; // every pointer must land strictly below everything read so far
  nameRanOut = false;
  for (;;) {
    if (pos >= end) return ranOut();
    const len = b[pos] as number;
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    const labelType = len & 0xc0;
    if (labelType === 0xc0) {
      if (pos + 1 >= end) return ranOut();
      const target = msg + (((len & 0x3f) << 8) | (b[pos + 1] as number));
      if (next < 0) next = pos + 2;
      if (target >= lowest) {
        nameError = `compression pointer at byte ${pos - msg} to byte ${target - msg} does not point backwards`;
        return null;
      }
      lowest = target;
      pos = target;
      continue;
    }
    if (labelType !== 0) {
      nameError = `label length byte 0x${len.toString(16)} at byte ${pos - msg} is not a label (> 63) or a pointer`;
      return null;
    }
    wireLen += len + 1;
    if (wireLen > MAX_NAME_WIRE_LEN) {
      nameError = `name longer than ${MAX_NAME_WIRE_LEN} bytes`;
      return null;
    }
    if (pos + 1 + len > end) return ranOut();
    if (out.length > 0) out += '.';
    out += labelText(b, pos + 1, pos + 1 + len);
    pos += 1 + len;
  }
  nameNext = next;
  return out.length === 0 ? '.' : out;
}

function ranOut(): null {
  nameRanOut = true;
  nameError = 'name runs past the end of the message';
  return null;
}

/** One label in presentation form (RFC 1035 §5.1 escapes; \t \r \n as OpenTelemetry's dns.question.name asks). */
function labelText(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const c = b[i] as number;
    if (c > 32 && c < 127) {
      if (c === 0x2e || c === 0x5c || c === 0x22) s += '\\'; // . \ "
      s += String.fromCharCode(c);
    } else if (c === 32) s += ' ';
    else if (c === 9) s += '\\t';
    else if (c === 13) s += '\\r';
    else if (c === 10) s += '\\n';
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s;
}

/** readName for the answer parser (dns-answer.ts): the name and the offset after it, or why not. */
export function readDnsName(b: Uint8Array, msg: number, end: number, pos: number): { name: string; next: number } | { error: string } {
  const name = readName(b, msg, end, pos);
  return name === null ? { error: nameError } : { name, next: nameNext };
}
