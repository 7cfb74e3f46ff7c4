import { LAYOUT as L } from './layout.js';

/**
 * Text made from wire bytes: UTF-8 strings, comm, argv and socket addresses.
 * `setTextBatch` points these at the current batch; they take offsets only,
 * so the decoder makes no closure or view per record.
 *
 * Strings are UTF-8 with U+FFFD for invalid bytes. comm (short, nearly
 * always ASCII) goes through a char loop; longer strings through
 * Buffer#utf8Slice, measured ~2x faster than TextDecoder#decode on a
 * subarray (which needs a view object per string): ~110 vs ~220 ns for a
 * 50-byte path on Node 20.
 */

type Utf8Sliceable = Buffer & { utf8Slice?: (start: number, end: number) => string };
// Buffer#utf8Slice is long-standing but undocumented; fall back if it ever goes.
const HAS_UTF8_SLICE = typeof (Buffer.prototype as Utf8Sliceable).utf8Slice === 'function';
const utf8Fallback = new TextDecoder('utf-8');

let u8: Uint8Array = new Uint8Array(0);
let dv: DataView = new DataView(new ArrayBuffer(0));
let nodeBuf = Buffer.alloc(0) as Required<Utf8Sliceable>;

export function setTextBatch(bytes: Uint8Array): void {
  u8 = bytes;
  dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  nodeBuf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as Required<Utf8Sliceable>;
}

/** bytes [start, end) as UTF-8; trailing NULs dropped (events.h says none are sent; tolerate a probe that counts one). */
export function utf8(start: number, end: number): string {
  while (end > start && u8[end - 1] === 0) end--;
  if (end <= start) return '';
  if (HAS_UTF8_SLICE) return nodeBuf.utf8Slice(start, end);
  return utf8Fallback.decode(u8.subarray(start, end));
}

// Records come in runs from the same few processes: a small direct-mapped
// cache keyed by the comm's 16 raw bytes (as four u32) saves building the
// same string again for every record. Comparing is exact, so a hit is always right.
const COMM_SLOTS = 256;
const commKeys = new Uint32Array(COMM_SLOTS * 4);
const commVals: string[] = new Array<string>(COMM_SLOTS).fill('');
const commUsed = new Uint8Array(COMM_SLOTS);

/** The NUL-terminated (or full-length) comm at `at` (WA_COMM_LEN = 16 bytes). */
export function comm(at: number): string {
  const w0 = dv.getUint32(at, true), w1 = dv.getUint32(at + 4, true);
  const w2 = dv.getUint32(at + 8, true), w3 = dv.getUint32(at + 12, true);
  const slot = ((w0 ^ Math.imul(w1, 31) ^ Math.imul(w2, 17) ^ w3) >>> 0) & (COMM_SLOTS - 1);
  const k = slot * 4;
  if (commUsed[slot] === 1 && commKeys[k] === w0 && commKeys[k + 1] === w1 && commKeys[k + 2] === w2 && commKeys[k + 3] === w3) {
    return commVals[slot]!;
  }
  const s = commText(at);
  commKeys[k] = w0; commKeys[k + 1] = w1; commKeys[k + 2] = w2; commKeys[k + 3] = w3;
  commVals[slot] = s;
  commUsed[slot] = 1;
  return s;
}

function commText(at: number): string {
  let s = '';
  const end = at + L.WA_COMM_LEN;
  for (let i = at; i < end; i++) {
    const c = u8[i] as number;
    if (c === 0) return s;
    if (c >= 0x80) {
      let e = i;
      while (e < end && u8[e] !== 0) e++;
      return utf8(at, e);
    }
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * NUL-separated argv as the kernel lays out arg_start..arg_end (each entry
 * NUL-terminated); an entry without its NUL at the end is kept (it was cut,
 * WA_F_TRUNC_ARGV), empty entries in between are real empty arguments.
 */
export function argvList(start: number, end: number): string[] {
  const argv: string[] = [];
  let from = start;
  for (let i = start; i < end; i++) {
    if (u8[i] === 0) {
      argv.push(from === i ? '' : utf8(from, i));
      from = i + 1;
    }
  }
  if (from < end) argv.push(utf8(from, end));
  return argv;
}

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The address text for a family, or null for families other than AF_INET
 * and AF_INET6: dotted-quad IPv4; RFC 5952 IPv6 (lower-case hex, no leading
 * zeros, the longest run of two or more zero groups — the first on a tie — as
 * `::`, IPv4-mapped as `::ffff:a.b.c.d`). Hand-written rather than node:net
 * because it runs per record and must allocate nothing but the result.
 */
export function addressText(family: number, at: number): string | null {
  if (family === AF_INET) return ipv4Text(at);
  if (family === AF_INET6) return ipv6Text(at);
  return null;
}

function ipv4Text(at: number): string {
  return `${u8[at]}.${u8[at + 1]}.${u8[at + 2]}.${u8[at + 3]}`;
}

function group(at: number, i: number): number {
  return ((u8[at + 2 * i] as number) << 8) | (u8[at + 2 * i + 1] as number);
}

function ipv6Text(at: number): string {
  if (group(at, 0) === 0 && group(at, 1) === 0 && group(at, 2) === 0 &&
      group(at, 3) === 0 && group(at, 4) === 0 && group(at, 5) === 0xffff) {
    return `::ffff:${ipv4Text(at + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (group(at, i) !== 0) {
      runStart = -1;
      continue;
    }
    if (runStart < 0) runStart = i;
    if (i - runStart + 1 > bestLen) {
      bestLen = i - runStart + 1;
      bestStart = runStart;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s.length > 0 && s.charCodeAt(s.length - 1) !== 58 /* ':' */) s += ':';
    s += group(at, i).toString(16);
  }
  return s;
}
