import { createRequire } from 'node:module';
import { CHAIN_TAG, EVENT_TAG, HASH_SIZE, sha256 } from './hash.js';
import { frontierRanges, splitPoint, type SubtreeHash } from './merkle.js';

/**
 * The writer's hash state in binary, advanced a batch of records at a time.
 *
 * Same tree, same chain, same digests as the per-record hex code (hash.ts,
 * merkle-hex.ts) that recovery and the verifier use: leaf = SHA-256(0x00 ||
 * EVENT_TAG || event bytes) (RFC 6962), chain = SHA-256(CHAIN_TAG || chain ||
 * leaf), RFC 6962 interior nodes. What differs is the cost: the addon's
 * ledgerHash (native/ledger_hash.cc) hashes a whole flush in one call, where
 * node:crypto pays ~1 us of call overhead per digest — three per record.
 * Without the addon (verify-only installs, tests) the JS fallback below runs
 * the same algorithm through node:crypto.
 */
export interface BatchHasher {
  /** leaf hashes of data[ranges[2i], ranges[2i+1]) into leaves at leavesAt; the chain advanced in place */
  leafChain(data: Uint8Array, ranges: Uint32Array, n: number, chain: Uint8Array, leaves: Uint8Array, leavesAt: number): void;
  /** appends n leaf hashes to the frontier (64 × 32 bytes, largest subtree first); returns the new size */
  frontierAppend(nodes: Uint8Array, size: number, leaves: Uint8Array, leavesAt: number, n: number): number;
  /** RFC 6962 MTH over n >= 1 leaf hashes, into out */
  subtreeRoot(leaves: Uint8Array, leavesAt: number, n: number, out: Uint8Array): void;
  /** The addon's background thread (native/ledger_hash_queue.cc): leafChain + frontierAppend off the event loop */
  queue?: HashQueue;
}

/**
 * leafChain then frontierAppend as one job on a background thread, in
 * submission order. The caller keeps every buffer alive and unchanged until
 * waitFor(ticket), and reads chain, nodes or leaves only after wait().
 */
export interface HashQueue {
  submit(data: Uint8Array, ranges: Uint32Array, n: number, chain: Uint8Array, leaves: Uint8Array, leavesAt: number, nodes: Uint8Array, size: number): number;
  waitFor(ticket: number): void;
  wait(): void;
}

const MAX_NODES = 64;

function popcount(size: number): number {
  let n = 0;
  for (let s = size; s > 0; s = Math.floor(s / 2)) n += s % 2;
  return n;
}

const nodeBuf = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeBuf[0] = 0x01;
function nodeInto(left: Uint8Array, right: Uint8Array, out: Uint8Array, outAt: number): void {
  nodeBuf.set(left, 1);
  nodeBuf.set(right, 1 + HASH_SIZE);
  out.set(sha256(nodeBuf), outAt);
}

/** The same three operations through node:crypto, one digest per call. */
export const jsBatchHasher: BatchHasher = {
  leafChain(data, ranges, n, chain, leaves, leavesAt) {
    const chainBuf = Buffer.alloc(CHAIN_TAG.length + 2 * HASH_SIZE);
    CHAIN_TAG.copy(chainBuf, 0);
    const prefix = Buffer.concat([Buffer.from([0]), EVENT_TAG]);
    for (let i = 0; i < n; i++) {
      const leaf = sha256(Buffer.concat([prefix, data.subarray(ranges[2 * i]!, ranges[2 * i + 1]!)]));
      leaves.set(leaf, leavesAt + i * HASH_SIZE);
      chainBuf.set(chain, CHAIN_TAG.length);
      chainBuf.set(leaf, CHAIN_TAG.length + HASH_SIZE);
      chain.set(sha256(chainBuf));
    }
  },
  frontierAppend(nodes, size, leaves, leavesAt, n) {
    for (let i = 0; i < n; i++) {
      let node = Buffer.from(leaves.subarray(leavesAt + i * HASH_SIZE, leavesAt + (i + 1) * HASH_SIZE));
      let top = popcount(size);
      for (let c = size; c % 2 === 1; c = Math.floor(c / 2)) {
        top--;
        const out = Buffer.alloc(HASH_SIZE);
        nodeInto(nodes.subarray(top * HASH_SIZE, (top + 1) * HASH_SIZE), node, out, 0);
        node = out;
      }
      nodes.set(node, top * HASH_SIZE);
      size++;
    }
    return size;
  },
  subtreeRoot(leaves, leavesAt, n, out) {
    const nodes = Buffer.alloc(MAX_NODES * HASH_SIZE);
    const size = this.frontierAppend(nodes, 0, leaves, leavesAt, n);
    const top = popcount(size) - 1;
    const r = Buffer.from(nodes.subarray(top * HASH_SIZE, (top + 1) * HASH_SIZE));
    for (let i = top - 1; i >= 0; i--) nodeInto(nodes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE), r, r, 0);
    out.set(r);
  },
};

let cached: BatchHasher | undefined;

/** The addon's batch hasher when it loads, else the node:crypto one. */
export function batchHasher(): BatchHasher {
  if (cached) return cached;
  if (process.env.WITNESS_LEDGER_JS_HASH === '1') return (cached = jsBatchHasher);
  try {
    const require = createRequire(import.meta.url);
    // the same addon the sensor loads (node-gyp-build picks build/Release or the prebuild)
    const mod = require('node-gyp-build')(new URL('../..', import.meta.url).pathname) as { ledgerHash?: BatchHasher };
    cached = mod.ledgerHash ?? jsBatchHasher;
  } catch {
    cached = jsBatchHasher;
  }
  return cached;
}

const EMPTY_ROOT_HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * Chain head, frontier and the unsealed segment's leaf hashes of one log, in
 * binary. `append` takes byte ranges of records already laid out in a buffer
 * (the writer's pending output): nothing is copied or re-encoded.
 */
export class LedgerHashState {
  private readonly chain = Buffer.alloc(HASH_SIZE);
  private readonly nodes = Buffer.alloc(MAX_NODES * HASH_SIZE);
  private count: number;
  /** the last checkpoint's tree: size and frontier nodes (hex, as checkpoints carry them) */
  private sealedSize: number;
  private sealedNodes: string[];
  /** leaf hashes of records [sealedSize, count) */
  private segment: Buffer;
  private readonly impl: BatchHasher;
  /** background hashing (opts.background and the addon has it); null: every append hashes before it returns */
  private readonly queue: HashQueue | null;
  /** the last job submitted and not yet waited for (0: none) */
  private inflight = 0;

  constructor(init: { size: number; frontier: readonly string[]; chainHeadHex: string; sealedSize: number; sealedFrontier: readonly string[]; unsealedLeaves: readonly string[] }, impl = batchHasher(), opts: { background?: boolean } = {}) {
    this.impl = impl;
    this.queue = opts.background === true ? impl.queue ?? null : null;
    if (frontierRanges(init.size).length !== init.frontier.length) throw new RangeError(`frontier of size ${init.size} needs ${frontierRanges(init.size).length} nodes`);
    if (init.sealedSize + init.unsealedLeaves.length !== init.size) throw new RangeError('sealed size + unsealed leaves must equal the tree size');
    this.count = init.size;
    init.frontier.forEach((h, i) => this.nodes.write(h, i * HASH_SIZE, 'hex'));
    this.chain.write(init.chainHeadHex, 'hex');
    this.sealedSize = init.sealedSize;
    this.sealedNodes = init.sealedFrontier.slice();
    this.segment = Buffer.alloc(Math.max(1024, init.unsealedLeaves.length * 2) * HASH_SIZE);
    init.unsealedLeaves.forEach((h, i) => this.segment.write(h, i * HASH_SIZE, 'hex'));
  }

  get size(): number { return this.count; }
  get unsealed(): number { return this.count - this.sealedSize; }
  get chainHeadHex(): string { this.settle(); return this.chain.toString('hex'); }

  /** Waits for the background jobs: chain, frontier and leaves are complete after it. */
  settle(): void {
    if (this.inflight === 0) return;
    this.queue!.waitFor(this.inflight);
    this.inflight = 0;
  }

  /** The ticket of the last job submitted (bytes it reads must stay unchanged until waitFor(it)); 0 when none. */
  get lastTicket(): number { return this.inflight; }

  /** Waits for the jobs up to `ticket` only (a buffer they read is about to be reused). */
  waitFor(ticket: number): void {
    if (ticket === 0 || this.queue === null) return;
    this.queue.waitFor(ticket);
    if (ticket >= this.inflight) this.inflight = 0;
  }

  frontierHex(): string[] {
    this.settle();
    const out: string[] = [];
    for (let i = 0; i < popcount(this.count); i++) out.push(this.nodes.toString('hex', i * HASH_SIZE, (i + 1) * HASH_SIZE));
    return out;
  }

  rootHex(): string {
    if (this.count === 0) return EMPTY_ROOT_HEX;
    this.settle();
    const top = popcount(this.count) - 1;
    const r = Buffer.from(this.nodes.subarray(top * HASH_SIZE, (top + 1) * HASH_SIZE));
    for (let i = top - 1; i >= 0; i--) nodeInto(this.nodes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE), r, r, 0);
    return r.toString('hex');
  }

  /** Hashes n records (their event bytes at data[ranges[2i], ranges[2i+1])) into chain, tree and segment. */
  append(data: Uint8Array, ranges: Uint32Array, n: number): void {
    if (n === 0) return;
    const at = this.unsealed * HASH_SIZE;
    if (at + n * HASH_SIZE > this.segment.length) {
      this.settle(); // the copy reads leaves a job may still be writing
      const next = Buffer.alloc(Math.max(this.segment.length * 2, at + n * HASH_SIZE));
      this.segment.copy(next, 0, 0, at);
      this.segment = next;
    }
    if (this.queue !== null) {
      this.inflight = this.queue.submit(data, ranges, n, this.chain, this.segment, at, this.nodes, this.count);
      this.count += n;
      return;
    }
    this.impl.leafChain(data, ranges, n, this.chain, this.segment, at);
    this.count = this.impl.frontierAppend(this.nodes, this.count, this.segment, at, n);
  }

  /** One record whose leaf hash is already known (the v1 record path computes it first). */
  appendLeafHex(leafHex: string, chainHex: string): void {
    this.settle();
    const at = this.unsealed * HASH_SIZE;
    if (at + HASH_SIZE > this.segment.length) {
      const next = Buffer.alloc(this.segment.length * 2);
      this.segment.copy(next, 0, 0, at);
      this.segment = next;
    }
    this.segment.write(leafHex, at, 'hex');
    this.chain.write(chainHex, 'hex');
    this.count = this.impl.frontierAppend(this.nodes, this.count, this.segment, at, 1);
  }

  get sealed(): { size: number; frontier: readonly string[] } {
    return { size: this.sealedSize, frontier: this.sealedNodes };
  }

  /**
   * Subtree hashes of the current tree for the consistency proof from the
   * sealed size: ranges inside the segment from its leaves (natively), the
   * sealed tree's frontier nodes as they are, and the rest by recursion.
   */
  subtreeHasher(): SubtreeHash {
    this.settle();
    const oldSize = this.sealedSize;
    const known = new Map<string, string>();
    frontierRanges(oldSize).forEach(([s, e], i) => known.set(`${s}:${e - s}`, this.sealedNodes[i]!));
    const out = Buffer.alloc(HASH_SIZE);
    const mth = (start: number, end: number): Buffer => {
      if (start >= oldSize) {
        this.impl.subtreeRoot(this.segment, (start - oldSize) * HASH_SIZE, end - start, out);
        return Buffer.from(out);
      }
      const hit = known.get(`${start}:${end - start}`);
      if (hit !== undefined) return Buffer.from(hit, 'hex');
      if (end <= oldSize) throw new RangeError(`subtree [${start}, ${end}) is neither in the segment nor a frontier node`);
      const k = splitPoint(end - start);
      const r = Buffer.alloc(HASH_SIZE);
      nodeInto(mth(start, start + k), mth(start + k, end), r, 0);
      return r;
    };
    return mth;
  }

  /** A checkpoint sealed everything so far. */
  seal(): void {
    this.sealedSize = this.count;
    this.sealedNodes = this.frontierHex();
  }
}
