import crypto from 'node:crypto';

/**
 * SHA-256 primitives for the ledger's hot path.
 *
 * `crypto.hash` (Node >= 20.12) is a one-shot call that measured about 2x
 * faster than `createHash().update().digest()` and about 2x faster than
 * @noble/hashes for the 65-byte Merkle node inputs on this machine (see
 * bench/ledger-bench.mjs), so it is used where available.
 */
type OneShot = (data: Uint8Array) => Buffer;

const hasOneShot = typeof (crypto as { hash?: unknown }).hash === 'function';

export const sha256: OneShot = hasOneShot
  ? (data) => crypto.hash('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest();

/** SHA-256 over the concatenation of parts, without building the concatenation. */
export function sha256Parts(...parts: Uint8Array[]): Buffer {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export const HASH_SIZE = 32;
export const ZERO_HASH: Buffer = Buffer.alloc(HASH_SIZE);

/**
 * Domain tags. The event tag is prefixed to the event bytes to form the
 * RFC 6962 *leaf data*, so an event's leaf hash is
 * SHA-256(0x00 || "agent-witness.v1.event\n" || bytes): a plain RFC 6962
 * leaf, and no event can collide with a chain link or a tree node.
 */
export const EVENT_TAG: Buffer = Buffer.from('agent-witness.v1.event\n', 'latin1');
export const CHAIN_TAG: Buffer = Buffer.from('agent-witness.v1.chain\n', 'latin1');

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

export function fromHex32(hex: string): Buffer {
  if (!HEX64.test(hex)) throw new RangeError(`not a 32-byte lowercase hex digest: ${hex.slice(0, 80)}`);
  return Buffer.from(hex, 'hex');
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

const EVENT_PREFIX_STR = '\u0000agent-witness.v1.event\n';

const hexOf: (data: Uint8Array | string) => string = hasOneShot
  ? (data) => crypto.hash('sha256', data, 'hex')
  : (data) => crypto.createHash('sha256').update(data).digest('hex');

/**
 * The hot-path hasher. Digests travel as lowercase hex strings: the records
 * store hex anyway, and a 64-char string is far cheaper to allocate than a
 * Buffer (measured ~2x faster end to end; most of the difference was GC).
 * Not re-entrant; every user is synchronous.
 */
export class EventHasher {
  private scratch = Buffer.alloc(64 * 1024);
  private readonly chainScratch = Buffer.alloc(CHAIN_TAG.length + 2 * HASH_SIZE);
  private readonly nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);

  constructor() {
    this.scratch[0] = 0x00;
    EVENT_TAG.copy(this.scratch, 1);
    CHAIN_TAG.copy(this.chainScratch, 0);
    this.nodeScratch[0] = 0x01;
  }

  /**
   * leaf = SHA-256(0x00 || EVENT_TAG || UTF-8 bytes of the line). Hashing the
   * JS string lets node encode it once, natively; the writer stores the same
   * string through the same UTF-8 encoder, so the bytes hashed are the bytes stored.
   */
  leafHexOfString(line: string): string {
    return hexOf(EVENT_PREFIX_STR + line);
  }

  /** Same for bytes read back from disk (verification hashes exact bytes, never a decode/re-encode). */
  leafHexOfBytes(bytes: Uint8Array): string {
    const head = 1 + EVENT_TAG.length;
    if (head + bytes.length > this.scratch.length) this.grow(head + bytes.length);
    this.scratch.set(bytes, head);
    return hexOf(this.scratch.subarray(0, head + bytes.length));
  }

  /** chain[i] = SHA-256(CHAIN_TAG || chain[i-1] || leaf[i]). */
  chainHex(prevHex: string, leafHex: string): string {
    this.chainScratch.write(prevHex, CHAIN_TAG.length, 'hex');
    this.chainScratch.write(leafHex, CHAIN_TAG.length + HASH_SIZE, 'hex');
    return hexOf(this.chainScratch);
  }

  /** RFC 6962 interior node SHA-256(0x01 || left || right). */
  nodeHex(leftHex: string, rightHex: string): string {
    this.nodeScratch.write(leftHex, 1, 'hex');
    this.nodeScratch.write(rightHex, 1 + HASH_SIZE, 'hex');
    return hexOf(this.nodeScratch);
  }

  private grow(min: number): void {
    const next = Buffer.alloc(Math.max(min, this.scratch.length * 2));
    this.scratch.copy(next, 0, 0, 1 + EVENT_TAG.length);
    this.scratch = next;
  }
}
