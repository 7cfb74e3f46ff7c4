import { HASH_SIZE, equalBytes, sha256 } from './hash.js';

/**
 * RFC 6962 / RFC 9162 §2.1 Merkle tree over SHA-256.
 *
 *   MTH({})      = SHA-256("")
 *   MTH({d0})    = SHA-256(0x00 || d0)
 *   MTH(D[0:n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  with k the largest power of two < n
 *
 * Sizes and indexes are JS numbers (exact to 2^53); halving uses arithmetic,
 * not 32-bit shifts, so trees past 2^31 leaves stay correct.
 */

const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = 0x01;

export const EMPTY_ROOT: Buffer = sha256(new Uint8Array(0));

/** SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  const buf = Buffer.allocUnsafe(1 + data.length);
  buf[0] = 0x00;
  buf.set(data, 1);
  return sha256(buf);
}

/** SHA-256(0x01 || left || right). Uses a shared scratch buffer: synchronous only. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

/** Largest power of two strictly less than n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Hash of the subtree over leaf positions [start, end). */
export type SubtreeHash = (start: number, end: number) => Uint8Array;

/** MTH over a slice of already-computed leaf hashes. */
export function rootOfLeafHashes(hashes: readonly Uint8Array[], start = 0, end = hashes.length): Uint8Array {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return hashes[start]!;
  const k = splitPoint(n);
  const left = rootOfLeafHashes(hashes, start, start + k);
  const right = rootOfLeafHashes(hashes, start + k, end);
  return nodeHash(left, right);
}

/** RFC 9162 §2.1.3.1 PATH(m, D[start:end]) with `index` absolute. */
export function inclusionPathWith(mth: SubtreeHash, index: number, start: number, end: number): Uint8Array[] {
  const proof: Uint8Array[] = [];
  // Walk root-to-leaf, collecting siblings; RFC order is leaf-to-root.
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      proof.push(mth(start + k, end));
      end = start + k;
    } else {
      proof.push(mth(start, start + k));
      start += k;
    }
  }
  return proof.reverse();
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true). */
export function consistencyProofWith(mth: SubtreeHash, oldSize: number, newSize: number): Uint8Array[] {
  if (oldSize < 0 || oldSize > newSize) throw new RangeError(`consistency proof needs 0 <= oldSize <= newSize (got ${oldSize}, ${newSize})`);
  if (oldSize === 0 || oldSize === newSize) return [];
  const proof: Uint8Array[] = [];
  let m = oldSize;
  let start = 0;
  let end = newSize;
  let completeSubtree = true;
  // Iterative SUBPROOF: hashes are produced root-to-leaf and reversed at the end.
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!completeSubtree) proof.push(mth(start, end));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      proof.push(mth(start + k, end));
      end = start + k;
    } else {
      proof.push(mth(start, start + k));
      start += k;
      m -= k;
      completeSubtree = false;
    }
  }
  return proof.reverse();
}

function leafArrayHasher(leaves: readonly Uint8Array[]): SubtreeHash {
  return (start, end) => rootOfLeafHashes(leaves, start, end);
}

function checkIndex(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new RangeError(`${name} out of range: ${value}`);
}

/** MTH over raw leaf data (each leaf is hashed with leafHash first). */
export function rootHash(leaves: Uint8Array[]): Uint8Array {
  return rootOfLeafHashes(leaves.map(leafHash));
}

/** Audit path for leaf `index` in the tree over raw `leaves`. */
export function inclusionProof(leaves: Uint8Array[], index: number): Uint8Array[] {
  checkIndex('index', index, leaves.length - 1);
  return inclusionPathWith(leafArrayHasher(leaves.map(leafHash)), index, 0, leaves.length);
}

/** Consistency proof from the first `oldSize` leaves to all of `leaves`. */
export function consistencyProof(leaves: Uint8Array[], oldSize: number): Uint8Array[] {
  checkIndex('oldSize', oldSize, leaves.length);
  return consistencyProofWith(leafArrayHasher(leaves.map(leafHash)), oldSize, leaves.length);
}

const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/** RFC 9162 §2.1.3.2. */
export function verifyInclusion(leaf: Uint8Array, index: number, treeSize: number, proof: Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) return false;
  if (leaf.length !== HASH_SIZE || root.length !== HASH_SIZE) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (p.length !== HASH_SIZE || sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(r, root);
}

/** RFC 9162 §2.1.4.2, plus the trivial cases (old tree empty, or same size). */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: Uint8Array[]): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize) return false;
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE) return false;
  if (oldSize === 0) return proof.length === 0;
  if (oldSize === newSize) return proof.length === 0 && equalBytes(oldRoot, newRoot);
  if (proof.length === 0 || proof.some((p) => p.length !== HASH_SIZE)) return false;
  // If oldSize is a power of two, the old root itself is the first node of the path.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) { fn = half(fn); sn = half(sn); }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(fr, oldRoot) && equalBytes(sr, newRoot);
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * Compact frontier ("compact range" [0, size)): one perfect-subtree hash per
 * set bit of `size`, largest (leftmost) first. O(log n) memory; appending is
 * amortised one node hash per leaf.
 */
export class MerkleFrontier {
  private nodes: Uint8Array[];
  private count: number;

  constructor(size = 0, nodes: Uint8Array[] = []) {
    if (popcount(size) !== nodes.length) throw new RangeError(`frontier of size ${size} needs ${popcount(size)} nodes, got ${nodes.length}`);
    this.count = size;
    this.nodes = nodes.slice();
  }

  get size(): number { return this.count; }

  /** The nodes, largest subtree first. */
  get frontier(): readonly Uint8Array[] { return this.nodes; }

  append(leaf: Uint8Array): void {
    let node: Uint8Array = leaf;
    let c = this.count;
    while (isOdd(c)) {
      node = nodeHash(this.nodes.pop()!, node);
      c = half(c);
    }
    this.nodes.push(node);
    this.count++;
  }

  /** MTH of the current tree: fold the frontier right to left. */
  root(): Uint8Array {
    if (this.count === 0) return EMPTY_ROOT;
    let r = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) r = nodeHash(this.nodes[i]!, r);
    return Buffer.from(r);
  }

  clone(): MerkleFrontier { return new MerkleFrontier(this.count, this.nodes); }
}

function popcount(n: number): number {
  let c = 0;
  while (n > 0) { if (isOdd(n)) c++; n = half(n); }
  return c;
}

/** [start, end) leaf ranges of the frontier nodes of a tree of `size`, largest first. */
export function frontierRanges(size: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let bit = 1;
  while (bit * 2 <= size) bit *= 2;
  let start = 0;
  for (; bit >= 1; bit /= 2) {
    if (Math.floor(size / bit) % 2 === 1) { ranges.push([start, start + bit]); start += bit; }
  }
  return ranges;
}

/**
 * Subtree hashes for a tree of `oldSize + segment.length` leaves when only the
 * frontier at `oldSize` and the leaf hashes after it are known. Enough to
 * prove inclusion of any new leaf and consistency from oldSize: every node
 * those proofs need is either inside the segment or a frontier node.
 */
export function segmentHasher(oldSize: number, frontier: readonly Uint8Array[], segment: readonly Uint8Array[]): SubtreeHash {
  const known = new Map<string, Uint8Array>();
  frontierRanges(oldSize).forEach(([s, e], i) => known.set(`${s}:${e}`, frontier[i]!));
  const mth: SubtreeHash = (start, end) => {
    if (start >= oldSize) return rootOfLeafHashes(segment, start - oldSize, end - oldSize);
    const hit = known.get(`${start}:${end}`);
    if (hit) return hit;
    if (end <= oldSize) throw new RangeError(`subtree [${start}, ${end}) is neither in the segment nor a frontier node`);
    const k = splitPoint(end - start);
    return nodeHash(mth(start, start + k), mth(start + k, end));
  };
  return mth;
}
