import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { parseCheckpointLine, type CheckpointPredicate } from './checkpoint.js';
import { EventHasher, sha256 } from './hash.js';
import { HexFrontier, ZERO_HEX } from './merkle-hex.js';
import { parseRecord } from './record.js';
import { readFully, readTail, writeFully } from './tail.js';

/**
 * Bringing a log back after a crash. Only the last checkpoint and the
 * records after it are read, so restart cost is bounded by the checkpoint
 * cadence, not the log's length.
 *
 * Sealed history (everything a signed checkpoint covers) is never modified:
 * if it is shorter than the checkpoint says, recovery refuses to continue.
 * Unsealed records after the checkpoint are re-hashed; the intact ones are
 * kept, and the first damaged one and everything after it (at most the torn
 * record after kill -9; possibly more after power loss) is moved to a
 * `.lost-<seq>` file and truncated away, so the chain continues from the
 * last good record and the restart record says exactly what was lost.
 */
export interface RecoveredLog {
  seq: number;
  chainHeadHex: string;
  frontier: HexFrontier;
  eventsBytes: number;
  lastCheckpoint: CheckpointPredicate | null;
  lastCheckpointSha256: string | null;
  /** Tree state at the last checkpoint (for the next consistency proof). */
  sealedFrontier: HexFrontier;
  /** Leaf hashes (hex) of intact records after the last checkpoint. */
  unsealedLeaves: string[];
  lost: { bytes: number; sha256: string | null; file: string | null; firstSeq: number };
  tornCheckpointBytes: number;
}

function readCheckpointTail(checkpointsPath: string): { cp: CheckpointPredicate | null; sha: string | null; torn: number } {
  if (!fs.existsSync(checkpointsPath)) return { cp: null, sha: null, torn: 0 };
  const fd = fs.openSync(checkpointsPath, 'r+');
  try {
    const size = fs.fstatSync(fd).size;
    const tail = readTail(fd, size);
    if (tail.tornBytes > 0) {
      // A checkpoint torn mid-write was never durable; drop it (the restart record reports it).
      fs.ftruncateSync(fd, tail.completeBytes);
      fs.fsyncSync(fd);
    }
    if (!tail.lastLine) return { cp: null, sha: null, torn: tail.tornBytes };
    const parsed = parseCheckpointLine(tail.lastLine);
    if (typeof parsed === 'string') {
      throw new WitnessError('E_LEDGER', `last checkpoint unreadable (${parsed}); refusing to extend a ledger whose seal is damaged`, { file: checkpointsPath });
    }
    return { cp: parsed.predicate, sha: parsed.lineSha256, torn: tail.tornBytes };
  } finally {
    fs.closeSync(fd);
  }
}

export function recoverLog(eventsPath: string, checkpointsPath: string): RecoveredLog {
  const { cp, sha, torn } = readCheckpointTail(checkpointsPath);
  const hasher = new EventHasher();
  const sealedFrontier = cp ? new HexFrontier(cp.tree_size, cp.frontier, hasher) : new HexFrontier(0, [], hasher);
  const frontier = sealedFrontier.snapshot();
  let chainHeadHex = cp ? cp.chain_head : ZERO_HEX;
  let seq = cp ? cp.tree_size : 0;
  const sealedBytes = cp ? cp.events_bytes : 0;

  const fd = fs.openSync(eventsPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    const size = fs.fstatSync(fd).size;
    if (size < sealedBytes) {
      throw new WitnessError('E_LEDGER', `holds ${size} bytes but checkpoint ${cp?.index} sealed ${sealedBytes}; sealed history is missing, refusing to continue`, { file: eventsPath });
    }
    const tail = Buffer.alloc(size - sealedBytes);
    if (tail.length > 0) readFully(fd, tail, sealedBytes);
    const unsealedLeaves: string[] = [];
    let good = 0; // bytes of `tail` that are intact records
    for (;;) {
      const nl = tail.indexOf(0x0a, good);
      if (nl === -1) break;
      const rec = parseRecord(tail, good, nl);
      if (typeof rec === 'string' || rec.seq !== seq || (rec.prevHex !== null && rec.prevHex !== chainHeadHex)) break;
      const leaf = hasher.leafHexOfBytes(tail.subarray(rec.eventStart, rec.eventEnd));
      const link = hasher.chainHex(chainHeadHex, leaf);
      if ((rec.leafHex !== null && leaf !== rec.leafHex) || (rec.chainHex !== null && link !== rec.chainHex)) break;
      frontier.append(leaf);
      unsealedLeaves.push(leaf);
      chainHeadHex = link;
      seq++;
      good = nl + 1;
    }
    const lostBuf = tail.subarray(good);
    let lostFile: string | null = null;
    if (lostBuf.length > 0) {
      // Keep the lost bytes for forensics rather than destroying them.
      lostFile = `${eventsPath}.lost-${seq}`;
      const lfd = fs.openSync(lostFile, 'w', 0o600);
      try { writeFully(lfd, lostBuf); fs.fsyncSync(lfd); } finally { fs.closeSync(lfd); }
      fs.ftruncateSync(fd, sealedBytes + good);
      fs.fsyncSync(fd);
    }
    return {
      seq,
      chainHeadHex,
      frontier,
      eventsBytes: sealedBytes + good,
      lastCheckpoint: cp,
      lastCheckpointSha256: sha,
      sealedFrontier,
      unsealedLeaves,
      lost: { bytes: lostBuf.length, sha256: lostBuf.length ? sha256(lostBuf).toString('hex') : null, file: lostFile ? path.basename(lostFile) : null, firstSeq: seq },
      tornCheckpointBytes: torn,
    };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What a `sensor.restart` record says about a recovery, the same for a
 * session and a daemon segment: where the chain resumed and exactly what was
 * lost (at most the torn tail, kept aside with its hash).
 */
export function restartAttributes(rec: RecoveredLog, restartCount: number): Record<string, string | number | null> {
  return {
    'witness.ledger.restart_count': restartCount,
    'witness.ledger.resumed_at_seq': rec.seq,
    'witness.ledger.unsealed_records_kept': rec.unsealedLeaves.length,
    'witness.ledger.lost_bytes': rec.lost.bytes,
    'witness.ledger.lost_sha256': rec.lost.sha256,
    'witness.ledger.lost_file': rec.lost.file,
    'witness.ledger.torn_checkpoint_bytes': rec.tornCheckpointBytes,
  };
}
