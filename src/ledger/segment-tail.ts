import fs from 'node:fs';
import path from 'node:path';
import { parseCheckpointLine, type CheckpointPredicate } from './checkpoint.js';
import { readTail } from './tail.js';

const pad = (n: number): string => String(n).padStart(6, '0');

export interface SegmentTail {
  /** The segment's last checkpoint (null: none yet) and that line's SHA-256. */
  checkpoint: CheckpointPredicate | null;
  checkpointSha256: string | null;
  /** `rotate` / `shutdown` when that checkpoint is final and nothing follows it; else null (open). */
  sealedBy: 'rotate' | 'shutdown' | null;
  /** 0 when the events file holds no complete record (killed before its first write); else > 0. */
  records: number;
  eventsBytes: number;
  /** What the next segment's first record must name. */
  link: { root: string; chainHead: string; checkpointSha: string } | null;
}

/** Reads a daemon segment's end (last checkpoint line + file size): O(line), never the whole segment. */
export function segmentTail(dir: string, n: number): SegmentTail {
  const events = path.join(dir, `segment-${pad(n)}.ndjson`);
  const cps = path.join(dir, `segment-${pad(n)}.checkpoints.ndjson`);
  let cp: CheckpointPredicate | null = null;
  let sha: string | null = null;
  try {
    const fd = fs.openSync(cps, 'r');
    try {
      const { lastLine } = readTail(fd, fs.fstatSync(fd).size);
      const parsed = lastLine ? parseCheckpointLine(lastLine) : null;
      if (parsed && typeof parsed !== 'string') { cp = parsed.predicate; sha = parsed.lineSha256; }
    } finally { fs.closeSync(fd); }
  } catch { /* no checkpoints file */ }
  let eventsBytes = 0;
  let records = 0;
  try {
    eventsBytes = fs.statSync(events).size;
    if (cp && cp.tree_size > 0) records = cp.tree_size;
    else if (eventsBytes > 0) {
      const fd = fs.openSync(events, 'r');
      try {
        const buf = Buffer.alloc(Math.min(eventsBytes, 1 << 20));
        fs.readSync(fd, buf, 0, buf.length, 0);
        records = buf.includes(0x0a) ? 1 : 0;
      } finally { fs.closeSync(fd); }
    }
  } catch { /* no events file */ }
  const final = cp && (cp.reason === 'rotate' || cp.reason === 'shutdown') && eventsBytes === cp.events_bytes ? cp.reason : null;
  return {
    checkpoint: cp,
    checkpointSha256: sha,
    sealedBy: final,
    records,
    eventsBytes,
    link: cp && sha ? { root: cp.root_hash, chainHead: cp.chain_head, checkpointSha: sha } : null,
  };
}
