import { EventHasher, ZERO_HASH } from './hash.js';
import { frontierRanges, splitPoint, type SubtreeHash } from './merkle.js';

const EMPTY_ROOT_HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Perfect subtrees at least this wide are remembered for the next checkpoint's proofs. */
const CACHE_MIN_WIDTH = 16;

/**
 * The compact frontier of merkle.ts with hex-string nodes, for the hot
 * paths (append, full verification, recovery). Same tree, same hashes.
 * Optionally remembers the wide perfect subtrees it builds, so a checkpoint's
 * consistency proof costs O(log n) hashes instead of re-hashing the segment.
 */
export class HexFrontier {
  private nodes: string[];
  private count: number;
  private readonly hasher: EventHasher;
  cache: Map<string, string> | null = null;

  constructor(size = 0, nodes: readonly string[] = [], hasher = new EventHasher()) {
    this.count = size;
    this.nodes = nodes.slice();
    this.hasher = hasher;
    if (frontierRanges(size).length !== nodes.length) throw new RangeError(`frontier of size ${size} needs ${frontierRanges(size).length} nodes, got ${nodes.length}`);
  }

  get size(): number { return this.count; }
  get frontier(): readonly string[] { return this.nodes; }

  append(leafHex: string): void {
    let node = leafHex;
    let c = this.count;
    let width = 1;
    while (c % 2 === 1) {
      node = this.hasher.nodeHex(this.nodes.pop()!, node);
      c = Math.floor(c / 2);
      width *= 2;
      if (this.cache !== null && width >= CACHE_MIN_WIDTH) this.cache.set(`${this.count + 1 - width}:${width}`, node);
    }
    this.nodes.push(node);
    this.count++;
  }

  rootHex(): string {
    if (this.count === 0) return EMPTY_ROOT_HEX;
    let r = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) r = this.hasher.nodeHex(this.nodes[i]!, r);
    return r;
  }

  snapshot(): HexFrontier { return new HexFrontier(this.count, this.nodes, this.hasher); }
}

/**
 * Subtree hashes of the tree at `oldSize + leaves.length` from the frontier at
 * oldSize, the new leaves, and (optionally) cached perfect subtrees — the hex
 * counterpart of merkle.ts segmentHasher, returning bytes for the proof code.
 */
export function hexSegmentHasher(oldSize: number, frontier: readonly string[], leaves: readonly string[], cache: Map<string, string> | null, hasher = new EventHasher()): SubtreeHash {
  const known = new Map<string, string>();
  frontierRanges(oldSize).forEach(([s, e], i) => known.set(`${s}:${e - s}`, frontier[i]!));
  const mth = (start: number, end: number): string => {
    const width = end - start;
    if (width === 1 && start >= oldSize) return leaves[start - oldSize]!;
    const key = `${start}:${width}`;
    const hit = known.get(key) ?? cache?.get(key);
    if (hit !== undefined) return hit;
    if (end <= oldSize) throw new RangeError(`subtree [${start}, ${end}) is neither in the segment nor a frontier node`);
    const k = splitPoint(width);
    return hasher.nodeHex(mth(start, start + k), mth(start + k, end));
  };
  return (start, end) => Buffer.from(mth(start, end), 'hex');
}

export const ZERO_HEX = ZERO_HASH.toString('hex');
