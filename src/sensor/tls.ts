import { createHash } from 'node:crypto';

/**
 * A TLS ClientHello parser and its JA4 fingerprint (FoxIO's JA4 spec:
 * t|q, version, d|i, cipher count, extension count, first ALPN's first and
 * last character, sha256[:12] of the sorted ciphers, sha256[:12] of the sorted
 * extensions without SNI and ALPN followed by the signature algorithms in
 * their order; GREASE values ignored everywhere).
 *
 * Input is whatever a traced process wrote at the start of a TCP stream, so
 * the parser is total: every byte string gives a result or a typed reason,
 * never a throw, in time linear in its length. The handshake message may be
 * split across TLS records (their payloads are joined) and across writes
 * (the caller joins the writes; `incomplete` says more bytes are needed).
 */

export type ClientHelloFailure =
  | 'not_tls' // the first record is not a TLS handshake record
  | 'not_client_hello' // a handshake message of another type
  | 'incomplete' // the bytes end inside the ClientHello
  | 'malformed'; // lengths that contradict each other

export interface ClientHello {
  /** SNI host_name, null without an SNI extension */
  serverName: string | null;
  /** ALPN protocols in the client's order */
  alpn: string[];
  /** TLS versions offered: supported_versions without GREASE, else the legacy version; as '1.3', '1.2', ... */
  versions: string[];
  ja4: string;
  /** JA4_r: the same fields before hashing (sorted lists) */
  ja4Raw: string;
  cipherCount: number;
  extensionCount: number;
  /** bytes of the TLS records the ClientHello took */
  recordBytes: number;
}

export type ClientHelloResult =
  | ({ ok: true } & ClientHello)
  | { ok: false; reason: ClientHelloFailure; detail: string };

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const MAX_HELLO = 1 << 17; // the handshake length field allows 16 MiB; no real ClientHello is near this
const EXT_SNI = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_SIG_ALGS = 0x000d;
const EXT_VERSIONS = 0x002b;

export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
}

const fail = (reason: ClientHelloFailure, detail: string): ClientHelloResult => ({ ok: false, reason, detail });
const be16 = (b: Uint8Array, at: number): number => ((b[at] as number) << 8) | (b[at + 1] as number);
const hex4 = (v: number): string => v.toString(16).padStart(4, '0');

/**
 * Joins the payloads of the handshake records at the start of `stream` until
 * one whole handshake message is in. Returns the message (header included)
 * and the record bytes it took, or a failure.
 */
function handshakeMessage(stream: Uint8Array): { msg: Uint8Array; recordBytes: number } | ClientHelloResult {
  if (stream.length < 1) return fail('incomplete', 'no bytes');
  if (stream[0] !== HANDSHAKE) return fail('not_tls', `first byte 0x${(stream[0] as number).toString(16)} is not a handshake record (0x16)`);
  if (stream.length >= 2 && stream[1] !== 3) return fail('not_tls', `record version major ${stream[1]} is not 3`);
  const parts: Uint8Array[] = [];
  let have = 0;
  let need = -1;
  let p = 0;
  while (need < 0 || have < need) {
    if (p + 5 > stream.length) return fail('incomplete', `stream ends inside a record header at byte ${p}`);
    if (stream[p] !== HANDSHAKE) return fail('malformed', `record at byte ${p} has content type ${stream[p]} before the ClientHello ended`);
    const len = be16(stream, p + 3);
    if (len === 0 || len > 16384 + 2048) return fail('malformed', `record at byte ${p} has length ${len}`);
    const end = Math.min(p + 5 + len, stream.length);
    parts.push(stream.subarray(p + 5, end));
    have += end - p - 5;
    if (need < 0 && have >= 4) {
      const first = parts.length === 1 ? parts[0]! : concat(parts, have);
      if (first[0] !== CLIENT_HELLO) return fail('not_client_hello', `handshake message type ${first[0]} is not ClientHello (1)`);
      need = 4 + (((first[1] as number) << 16) | ((first[2] as number) << 8) | (first[3] as number));
      if (need > MAX_HELLO) return fail('malformed', `ClientHello length ${need - 4} exceeds ${MAX_HELLO}`);
    }
    if (end < p + 5 + len && (need < 0 || have < need)) return fail('incomplete', `stream ends inside a record (${have} of ${need < 0 ? '?' : need} handshake bytes)`);
    p = end;
  }
  return { msg: concat(parts, have).subarray(0, need), recordBytes: p };
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

const VERSION_NAMES: Record<number, [string, string]> = {
  0x0304: ['1.3', '13'], 0x0303: ['1.2', '12'], 0x0302: ['1.1', '11'], 0x0301: ['1.0', '10'],
  0x0300: ['ssl3', 's3'], 0x0200: ['ssl2', 's2'], 0x0100: ['ssl1', 's1'],
};

function versionName(v: number): string {
  return VERSION_NAMES[v]?.[0] ?? `0x${hex4(v)}`;
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function alpnChars(first: Uint8Array | null): string {
  if (first === null || first.length === 0) return '00';
  const a = first[0] as number;
  const z = first[first.length - 1] as number;
  if (isAlnum(a) && isAlnum(z)) return String.fromCharCode(a) + String.fromCharCode(z);
  // JA4: a non-alphanumeric first or last byte is shown as the first and last hex digit of the value
  const hex = Buffer.from(first).toString('hex');
  return hex[0]! + hex[hex.length - 1]!;
}

const sha12 = (s: string): string => (s === '' ? '000000000000' : createHash('sha256').update(s).digest('hex').slice(0, 12));
const two = (n: number): string => String(Math.min(n, 99)).padStart(2, '0');
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Parses the ClientHello at the start of `stream` (the bytes a client wrote first on a TCP connection). */
export function parseClientHello(stream: Uint8Array, transport: 't' | 'q' = 't'): ClientHelloResult {
  const hm = handshakeMessage(stream);
  if ('ok' in hm) return hm;
  const m = hm.msg;
  // body: version(2) random(32) session_id<1> ciphers<2> compression<1> extensions<2>
  let p = 4;
  if (m.length < p + 35) return fail('malformed', 'ClientHello shorter than version + random + session id length');
  const legacy = be16(m, p);
  p += 34;
  const sid = m[p] as number;
  p += 1 + sid;
  if (sid > 32 || p + 2 > m.length) return fail('malformed', `session id length ${sid}`);
  const cipherLen = be16(m, p);
  p += 2;
  if (cipherLen % 2 !== 0 || p + cipherLen > m.length) return fail('malformed', `cipher suites length ${cipherLen}`);
  const ciphers: number[] = [];
  for (let i = 0; i < cipherLen; i += 2) {
    const c = be16(m, p + i);
    if (!isGrease(c)) ciphers.push(c);
  }
  p += cipherLen;
  if (p + 1 > m.length) return fail('malformed', 'no compression methods');
  p += 1 + (m[p] as number);
  const extIds: number[] = [];
  let serverName: string | null = null;
  let hasSni = false;
  const alpn: string[] = [];
  let firstAlpn: Uint8Array | null = null;
  let sigAlgs: number[] = [];
  let offered: number[] | null = null;
  if (p < m.length) {
    if (p + 2 > m.length) return fail('malformed', 'extensions length cut');
    const extEnd = p + 2 + be16(m, p);
    p += 2;
    if (extEnd > m.length) return fail('malformed', `extensions run ${extEnd - m.length} byte(s) past the ClientHello`);
    while (p < extEnd) {
      if (p + 4 > extEnd) return fail('malformed', `extension header cut at byte ${p}`);
      const type = be16(m, p);
      const len = be16(m, p + 2);
      const d = p + 4;
      if (d + len > extEnd) return fail('malformed', `extension 0x${hex4(type)} runs past the extensions`);
      const body = m.subarray(d, d + len);
      p = d + len;
      if (isGrease(type)) continue;
      extIds.push(type);
      if (type === EXT_SNI) {
        hasSni = true;
        serverName = sniHost(body);
      } else if (type === EXT_ALPN) {
        for (let q = 2; body.length >= 2 && q < Math.min(body.length, 2 + be16(body, 0));) {
          const l = body[q] as number;
          if (q + 1 + l > body.length || l === 0) break;
          const v = body.subarray(q + 1, q + 1 + l);
          if (firstAlpn === null) firstAlpn = v;
          alpn.push(text(v));
          q += 1 + l;
        }
      } else if (type === EXT_SIG_ALGS) {
        sigAlgs = [];
        const n = body.length >= 2 ? Math.min(be16(body, 0), body.length - 2) : 0;
        for (let q = 2; q + 1 < 2 + n; q += 2) {
          const s = be16(body, q);
          if (!isGrease(s)) sigAlgs.push(s);
        }
      } else if (type === EXT_VERSIONS) {
        offered = [];
        const n = body.length >= 1 ? Math.min(body[0] as number, body.length - 1) : 0;
        for (let q = 1; q + 1 < 1 + n; q += 2) {
          const v = be16(body, q);
          if (!isGrease(v)) offered.push(v);
        }
      }
    }
  }
  const versions = offered !== null && offered.length > 0 ? offered : [legacy];
  const top = Math.max(...versions);
  const a = `${transport}${VERSION_NAMES[top]?.[1] ?? '00'}${hasSni ? 'd' : 'i'}${two(ciphers.length)}${two(extIds.length)}${alpnChars(firstAlpn)}`;
  const cipherList = [...ciphers].sort((x, y) => x - y).map(hex4).join(',');
  const extList = extIds.filter((e) => e !== EXT_SNI && e !== EXT_ALPN).sort((x, y) => x - y).map(hex4).join(',');
  const sigList = sigAlgs.map(hex4).join(',');
  const extPart = extList === '' && sigList === '' ? '' : sigList === '' ? extList : `${extList}_${sigList}`;
  return {
    ok: true,
    serverName,
    alpn,
    versions: versions.map(versionName),
    ja4: `${a}_${sha12(cipherList)}_${sha12(extPart)}`,
    ja4Raw: `${a}_${cipherList}_${extPart}`,
    cipherCount: ciphers.length,
    extensionCount: extIds.length,
    recordBytes: hm.recordBytes,
  };
}

/** The first host_name of a server_name extension; null when there is none or it is malformed. */
function sniHost(body: Uint8Array): string | null {
  if (body.length < 2) return null;
  const end = Math.min(body.length, 2 + be16(body, 0));
  for (let q = 2; q + 3 <= end;) {
    const type = body[q] as number;
    const l = be16(body, q + 1);
    if (q + 3 + l > end) return null;
    if (type === 0) return hostText(body.subarray(q + 3, q + 3 + l));
    q += 3 + l;
  }
  return null;
}

/** A host name as printable ASCII, lower-cased; other bytes as \DDD so nothing hides in it. */
function hostText(b: Uint8Array): string {
  let s = '';
  for (const c of b) {
    if (c > 32 && c < 127 && c !== 0x5c) s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
    else s += `\\${String(c).padStart(3, '0')}`;
  }
  return s;
}
