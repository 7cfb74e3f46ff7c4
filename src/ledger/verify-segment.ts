import fs from 'node:fs';
import { EventHasher } from './hash.js';
import { HexFrontier } from './merkle-hex.js';
import { parseRecord } from './record.js';

/**
 * Full verification of one checkpoint-to-checkpoint segment of an events
 * file. A segment starts from a signed state (seq, chain head, frontier at
 * the previous checkpoint) and must end exactly at the next checkpoint's
 * state, so segments verify independently — which is what lets `verify`
 * spread them over worker threads.
 */
export interface SegmentTask {
  file: string;
  startByte: number;
  endByte: number;
  startSeq: number;
  startChainHex: string;
  startFrontier: string[];
  /** Expected end state (from the checkpoint that closes the segment). */
  endSeq: number;
  endChainHex: string;
  endRootHex: string;
  checkpointIndex: number;
}

export interface SegmentFailure { seq: number; line: number; reason: string }

const CHUNK = 8 * 1024 * 1024;

export function verifySegment(task: SegmentTask, onBytes?: (n: number) => void): SegmentFailure | null {
  const hasher = new EventHasher();
  const frontier = new HexFrontier(task.startSeq, task.startFrontier, hasher);
  let seq = task.startSeq;
  let headHex = task.startChainHex;
  const fail = (reason: string): SegmentFailure => ({ seq, line: seq + 1, reason });

  const fd = fs.openSync(task.file, 'r');
  try {
    let pos = task.startByte;
    let carry = Buffer.alloc(0);
    while (pos < task.endByte || carry.length > 0) {
      const want = Math.min(CHUNK, task.endByte - pos);
      let buf = carry;
      if (want > 0) {
        const chunk = Buffer.allocUnsafe(want);
        const n = fs.readSync(fd, chunk, 0, want, pos);
        if (n === 0) return fail(`file ends at byte ${pos} but checkpoint ${task.checkpointIndex} seals ${task.endByte} bytes (truncated)`);
        pos += n;
        buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      } else if (carry.length > 0) {
        return fail(`record at byte ${pos - carry.length} has no newline before the sealed end (truncated or torn)`);
      }
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, start);
        if (nl === -1) break;
        if (seq >= task.endSeq) return fail(`more records than checkpoint ${task.checkpointIndex} seals (${task.endSeq}); record inserted?`);
        const rec = parseRecord(buf, start, nl);
        if (typeof rec === 'string') return fail(rec);
        if (rec.seq !== seq) return fail(`expected seq ${seq}, found ${rec.seq} (record deleted, inserted or reordered)`);
        // v1 records carry copies of the hashes: a naive edit is pinned to its record
        if (rec.prevHex !== null && rec.prevHex !== headHex) return fail('prev_chain does not match the previous record\'s chain_hash (chain broken)');
        const leaf = hasher.leafHexOfBytes(buf.subarray(rec.eventStart, rec.eventEnd));
        if (rec.leafHex !== null && leaf !== rec.leafHex) return fail('leaf_hash does not match the event bytes (event modified)');
        headHex = hasher.chainHex(headHex, leaf);
        if (rec.chainHex !== null && headHex !== rec.chainHex) return fail('chain_hash does not match H(prev_chain || leaf_hash)');
        frontier.append(leaf);
        seq++;
        start = nl + 1;
      }
      carry = buf.subarray(start);
      if (onBytes) onBytes(start);
      if (pos >= task.endByte && carry.length > 0) {
        return fail(`record at byte ${pos - carry.length} has no newline before the sealed end (truncated or torn)`);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  if (seq !== task.endSeq) return fail(`checkpoint ${task.checkpointIndex} seals ${task.endSeq} records, the file holds ${seq} (truncated or deleted)`);
  // v2 records carry no hash copies: a modified event shows here, and every
  // record of the segment is suspect, so the failure names its first one.
  const span = `records ${task.startSeq}..${task.endSeq - 1}`;
  const atStart = (reason: string): SegmentFailure => ({ seq: task.startSeq, line: task.startSeq + 1, reason });
  if (headHex !== task.endChainHex) return atStart(`chain head differs from checkpoint ${task.checkpointIndex}: an event among ${span} was modified, or records were replaced`);
  const root = frontier.rootHex();
  if (root !== task.endRootHex) return atStart(`Merkle root over ${span} differs from signed checkpoint ${task.checkpointIndex}`);
  return null;
}
