import fs from 'node:fs';
import path from 'node:path';
import { listSegments, segmentCheckpointsFile, segmentEventsFile } from './daemon.js';
import { parseRecord } from './record.js';
import { isFailure, type Failure } from './verify-checkpoints.js';
import { verifyLog, type LogVerifyOptions } from './verify-log.js';

export interface DaemonVerified {
  records: number; checkpoints: number; segments: number; rootHash: string; signers: string[];
  finalCheckpointSha: Map<number, string>;
  /** With allowOpen: the last segment, still being written, was not verified. */
  openSegment: number | null;
}

/** What a pruned segment's host-ledger row says its successor must link to. */
export type SegmentLink = { root: string; chainHead: string; cpSha: string };

export function firstEvent(file: string): Record<string, unknown> | null {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(0x0a);
    if (nl === -1) return null;
    const rec = parseRecord(buf, 0, nl);
    if (typeof rec === 'string') return null;
    return JSON.parse(buf.toString('utf8', rec.eventStart, rec.eventEnd)) as Record<string, unknown>;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A daemon epoch: segments 0..n, each a verified log; all but the last sealed
 * by a `rotate` checkpoint, the last by `shutdown`; each segment after the
 * first opens by naming its predecessor's root, chain head and final checkpoint.
 */
export async function verifyDaemonDir(dir: string, opts: Omit<LogVerifyOptions, 'expectLog'>, rel = '', allowOpen = false, pruned: Map<number, SegmentLink> = new Map()): Promise<DaemonVerified | Failure> {
  const present = listSegments(dir);
  if (present.length === 0) return { file: rel || '.', reason: 'no daemon segments' };
  // Segments retention pruned (recorded in the host ledger) are expected gone; their rows carry the link.
  const segments: number[] = [];
  for (let i = 0; i <= present[present.length - 1]!; i++) if (present.includes(i) || !pruned.has(i)) segments.push(i);
  let prev: SegmentLink | null = null;
  let records = 0;
  let checkpoints = 0;
  const signers = new Set<string>();
  const finalCheckpointSha = new Map<number, string>();
  let openSegment: number | null = null;
  for (let i = 0; i < segments.length; i++) {
    const n = segments[i]!;
    const ev = segmentEventsFile(n);
    const at = (reason: string, extra: Partial<Failure> = {}): Failure => ({ file: path.join(rel, ev), reason, ...extra });
    if (!present.includes(n - 1) && pruned.has(n - 1)) prev = pruned.get(n - 1)!;
    if (!present.includes(n)) return at(`segment ${n} is missing (segments must run 0..n without gaps; only pruning recorded in the host ledger removes one)`);
    const isLast = i === segments.length - 1;
    const res = await verifyLog(dir, ev, segmentCheckpointsFile(n), { ...opts, expectLog: 'daemon' });
    const sealed = !isFailure(res) && (res.last.predicate.reason === 'rotate' || res.last.predicate.reason === 'shutdown');
    if (isLast && allowOpen && !sealed) { openSegment = n; break; }
    if (isFailure(res)) return { ...res, file: path.join(rel, res.file) };
    const last = res.last.predicate;
    if (!isLast && last.reason !== 'rotate') return { file: path.join(rel, segmentCheckpointsFile(n)), reason: `segment ${n} is followed by another but was not sealed by rotation` };
    if (isLast && last.reason !== 'shutdown' && last.reason !== 'rotate') return { file: path.join(rel, segmentCheckpointsFile(n)), reason: `last segment ${n} is not sealed (daemon still running, or killed and not yet restarted)` };
    if (prev) {
      const first = firstEvent(path.join(dir, ev));
      const a = (first?.attributes ?? {}) as Record<string, unknown>;
      if (first?.event !== 'sensor.start' || a['witness.ledger.prev_segment_root'] !== prev.root
        || a['witness.ledger.prev_segment_chain_head'] !== prev.chainHead || a['witness.ledger.prev_segment_checkpoint_sha256'] !== prev.cpSha) {
        return at(`first record does not link to segment ${n - 1}'s final checkpoint (segment replaced or reordered)`, { line: 1, seq: 0 });
      }
    }
    for (const s of res.chain.signers) signers.add(s);
    const cpSha = res.chain.checkpoints[res.chain.checkpoints.length - 1]!.lineSha256;
    finalCheckpointSha.set(n, cpSha);
    prev = { root: last.root_hash, chainHead: last.chain_head, cpSha };
    records += last.tree_size;
    checkpoints += res.chain.checkpoints.length;
  }
  if (!opts.pinned && signers.size > 1) return { file: rel || '.', reason: 'segments are signed by different keys' };
  return { records, checkpoints, segments: segments.length, rootHash: prev?.root ?? '', signers: [...signers], finalCheckpointSha, openSegment };
}
