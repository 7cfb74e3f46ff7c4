import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EventHasher, ZERO_HASH, fromHex32 } from './hash.js';
import { inclusionPathWith, segmentHasher, verifyInclusion } from './merkle.js';
import { parseRecord } from './record.js';
import { readRange } from './tail.js';
import { verifyCheckpointChain, isFailure, type CheckpointChain, type Failure, type VerifiedCheckpoint } from './verify-checkpoints.js';
import { verifySegment, type SegmentFailure, type SegmentTask } from './verify-segment.js';
import type { CheckpointPredicate } from './checkpoint.js';

export type VerifyMode = 'full' | 'fast';

export interface LogVerifyOptions {
  mode: VerifyMode;
  pinned: KeyObject | null;
  expectLog?: CheckpointPredicate['log'];
  /** Fast mode: how many records to prove inclusion for (plus the first and last). */
  samples?: number;
  /** Full mode: use worker threads when the events file is at least this big (default 16 MiB). */
  parallelMinBytes?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface LogVerified { chain: CheckpointChain; last: VerifiedCheckpoint; eventsBytes: number }

function segmentTasks(file: string, cps: VerifiedCheckpoint[]): SegmentTask[] {
  const tasks: SegmentTask[] = [];
  let prev: CheckpointPredicate | null = null;
  for (const { predicate: p } of cps) {
    if (!prev || p.tree_size > prev.tree_size || p.events_bytes > prev.events_bytes) {
      tasks.push({
        file,
        startByte: prev?.events_bytes ?? 0,
        endByte: p.events_bytes,
        startSeq: prev?.tree_size ?? 0,
        startChainHex: prev?.chain_head ?? ZERO_HASH.toString('hex'),
        startFrontier: prev?.frontier ?? [],
        endSeq: p.tree_size,
        endChainHex: p.chain_head,
        endRootHex: p.root_hash,
        checkpointIndex: p.index,
      });
    }
    prev = p;
  }
  return tasks;
}

const workerUrl = new URL('./verify-worker.js', import.meta.url);

async function runParallel(tasks: SegmentTask[], total: number, onProgress?: (d: number, t: number) => void): Promise<SegmentFailure | null> {
  const threads = Math.max(1, Math.min(os.availableParallelism(), 4));
  // Batches of ~4 MiB keep messages few while balancing the threads.
  const batches: SegmentTask[][] = [];
  let cur: SegmentTask[] = [];
  let curBytes = 0;
  for (const t of tasks) {
    cur.push(t);
    curBytes += t.endByte - t.startByte;
    if (curBytes >= 4 * 1024 * 1024) { batches.push(cur); cur = []; curBytes = 0; }
  }
  if (cur.length) batches.push(cur);
  const failures: SegmentFailure[] = [];
  let done = 0;
  let next = 0;
  // execArgv: [] so flags of the parent (e.g. --input-type, --eval) never leak into the worker.
  const workers = Array.from({ length: Math.min(threads, batches.length) }, () => new Worker(workerUrl, { execArgv: [] }));
  try {
    await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
      const dispatch = (): void => {
        if (next >= batches.length) { resolve(); return; }
        const id = next++;
        w.postMessage({ id, tasks: batches[id] });
      };
      w.on('message', (m: { id: number; progress?: number; failure?: SegmentFailure | null }) => {
        if (m.progress) { done += m.progress; onProgress?.(done, total); }
        if (m.failure !== undefined) { if (m.failure) failures.push(m.failure); dispatch(); }
      });
      w.on('error', reject);
      dispatch();
    })));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  failures.sort((a, b) => a.seq - b.seq);
  return failures[0] ?? null;
}

async function fullPass(eventsPath: string, cps: VerifiedCheckpoint[], opts: LogVerifyOptions): Promise<SegmentFailure | null> {
  const tasks = segmentTasks(eventsPath, cps);
  const total = cps[cps.length - 1]!.predicate.events_bytes;
  const parallel = total >= (opts.parallelMinBytes ?? 16 * 1024 * 1024) && tasks.length > 1
    && os.availableParallelism() > 1 && fs.existsSync(fileURLToPath(workerUrl));
  if (parallel) return runParallel(tasks, total, opts.onProgress);
  let done = 0;
  for (const t of tasks) {
    const f = verifySegment(t, (n) => { done += n; opts.onProgress?.(done, total); });
    if (f) return f;
  }
  return null;
}

/**
 * Reads one sealed segment and checks its structure (seq run, chain links);
 * v1 records are not re-hashed (their stored hashes are used), v2 records are.
 */
function readSegment(eventsPath: string, prev: CheckpointPredicate | null, cp: CheckpointPredicate, hasher: EventHasher): SegmentFailure | { buf: Buffer; leaves: Buffer[]; spans: Array<[number, number]> } {
  const m = prev?.tree_size ?? 0;
  const buf = readRange(eventsPath, prev?.events_bytes ?? 0, cp.events_bytes);
  const leaves: Buffer[] = [];
  const spans: Array<[number, number]> = [];
  let pos = 0;
  let prevHex = prev?.chain_head ?? ZERO_HASH.toString('hex');
  for (let s = m; s < cp.tree_size; s++) {
    const nl = buf.indexOf(0x0a, pos);
    const fail = (reason: string): SegmentFailure => ({ seq: s, line: s + 1, reason });
    if (nl === -1) return fail('record missing before the sealed end (truncated)');
    const rec = parseRecord(buf, pos, nl);
    if (typeof rec === 'string') return fail(rec);
    if (rec.seq !== s) return fail(`expected seq ${s}, found ${rec.seq} (record deleted, inserted or reordered)`);
    if (rec.prevHex !== null && rec.prevHex !== prevHex) return fail('prev_chain does not match the previous record\'s chain_hash (chain broken)');
    // v2 stores no hashes: compute them (this segment is then fully re-hashed)
    const leafHex = rec.leafHex ?? hasher.leafHexOfBytes(buf.subarray(rec.eventStart, rec.eventEnd));
    leaves.push(fromHex32(leafHex));
    spans.push([pos, nl]);
    prevHex = rec.chainHex ?? hasher.chainHex(prevHex, leafHex);
    pos = nl + 1;
  }
  if (pos !== buf.length) return { seq: cp.tree_size, line: cp.tree_size + 1, reason: `checkpoint ${cp.index} seals bytes beyond its last record` };
  if (prevHex !== cp.chain_head) return { seq: cp.tree_size - 1, line: cp.tree_size, reason: `chain head differs from checkpoint ${cp.index}` };
  return { buf, leaves, spans };
}

/** Fast mode: structure + sampled inclusion proofs; only the sampled segments are read. */
function fastPass(eventsPath: string, cps: VerifiedCheckpoint[], samples: number): SegmentFailure | null {
  const last = cps[cps.length - 1]!.predicate;
  const size = last.tree_size;
  if (size === 0) return null;
  const wanted = new Set<number>([0, size - 1]);
  for (let i = 0; i < samples && wanted.size < size; i++) wanted.add(crypto.randomInt(0, size));
  const hasher = new EventHasher();
  const sorted = [...wanted].sort((a, b) => a - b);
  // Segment k's bytes and leaf hashes, read once however many samples fall in it.
  let cachedK = -1;
  let cached: { buf: Buffer; leaves: Buffer[]; spans: Array<[number, number]> } | null = null;
  for (const seq of sorted) {
    // Segment containing seq: first checkpoint with tree_size > seq.
    let k = 0;
    while (cps[k]!.predicate.tree_size <= seq) k++;
    const cp = cps[k]!.predicate;
    const prev = k > 0 ? cps[k - 1]!.predicate : null;
    const m = prev?.tree_size ?? 0;
    if (k !== cachedK) {
      const read = readSegment(eventsPath, prev, cp, hasher);
      if ('reason' in read) return read;
      cached = read;
      cachedK = k;
    }
    const { buf, leaves, spans } = cached!;
    const [start, end] = spans[seq - m]!;
    const rec = parseRecord(buf, start, end);
    if (typeof rec === 'string') return { seq, line: seq + 1, reason: rec };
    const leaf = hasher.leafHexOfBytes(buf.subarray(rec.eventStart, rec.eventEnd));
    if (rec.leafHex !== null && leaf !== rec.leafHex) return { seq, line: seq + 1, reason: 'leaf_hash does not match the event bytes (event modified)' };
    if (rec.prevHex !== null && hasher.chainHex(rec.prevHex, leaf) !== rec.chainHex) return { seq, line: seq + 1, reason: 'chain_hash does not match H(prev_chain || leaf_hash)' };
    const proof = inclusionPathWith(segmentHasher(m, (prev?.frontier ?? []).map(fromHex32), leaves), seq, 0, cp.tree_size);
    if (!verifyInclusion(leaves[seq - m]!, seq, cp.tree_size, proof, fromHex32(cp.root_hash))) {
      return { seq, line: seq + 1, reason: `inclusion proof against checkpoint ${cp.index} fails (records altered and re-hashed)` };
    }
  }
  return null;
}

/** Verifies one log (events + checkpoints). Returns the first failure or the verified chain. */
export async function verifyLog(dir: string, eventsFile: string, checkpointsFile: string, opts: LogVerifyOptions): Promise<LogVerified | Failure> {
  const chain = verifyCheckpointChain(path.join(dir, checkpointsFile), opts.pinned, opts.expectLog);
  if (isFailure(chain)) return chain;
  const last = chain.checkpoints[chain.checkpoints.length - 1]!;
  if (last.predicate.events_file !== eventsFile) return { file: checkpointsFile, reason: `checkpoints seal ${last.predicate.events_file}, expected ${eventsFile}` };
  const eventsPath = path.join(dir, eventsFile);
  let size: number;
  try { size = fs.statSync(eventsPath).size; } catch { return { file: eventsFile, reason: 'events file missing' }; }
  const sealed = last.predicate.events_bytes;
  const f = opts.mode === 'full' ? await fullPass(eventsPath, chain.checkpoints, opts) : (size < sealed ? null : fastPass(eventsPath, chain.checkpoints, opts.samples ?? 32));
  if (f) return { file: eventsFile, line: f.line, seq: f.seq, reason: f.reason };
  if (size < sealed) return { file: eventsFile, seq: last.predicate.tree_size, reason: `file holds ${size} bytes but checkpoint ${last.predicate.index} seals ${sealed} (truncated)` };
  if (size > sealed) return { file: eventsFile, line: last.predicate.tree_size + 1, seq: last.predicate.tree_size, reason: `${size - sealed} bytes after the last checkpoint are not sealed` };
  return { chain, last, eventsBytes: size };
}
