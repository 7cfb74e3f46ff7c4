import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { log } from '../log.js';
import { nowRfc3339 } from './clock.js';
import { EPOCH_DONE_FILE, listSegments, segmentCheckpointsFile, segmentEventsFile } from './daemon.js';
import { appendGlobalRow, type DaemonSegmentRow, type PruneRow } from './global.js';
import { parseRecord } from './record.js';
import { segmentTail } from './segment-tail.js';
import { GLOBAL_EVENTS_FILE } from './state.js';
import { fsyncDir } from './tail.js';

/**
 * Ledger retention (config `ledger.maxBytes` / `ledger.maxAge`): the daemon's
 * sealed segments, oldest first (host-ledger order), are deleted once every
 * segment of every epoch together exceeds `maxBytes`, or once a segment was
 * sealed longer ago than `maxAge`.
 *
 * Only what verification can do without: a segment is pruned only when it is
 * sealed (`rotate`/`shutdown` checkpoint, nothing after it) **and** its
 * host-ledger row names exactly that final checkpoint. Nothing unsealed is
 * ever deleted; an epoch that is not finished (no `epoch.sealed`) keeps its
 * newest segment (and, while that is empty, the one before it), so the dir
 * still holds its chain's end. Each prune first
 * appends a `prune` row (the segment's identity, why, when, bytes) and only
 * then deletes the files: a crash in between leaves a pruned segment on disk
 * (verified as usual, deleted by the next pass), never a missing segment
 * without its row. A sealed segment deleted without a prune row stays a
 * MISMATCH.
 */
export interface RetentionPolicy {
  /** Total bytes of daemon segments (events + checkpoints files, all epochs) to stay under; 0/undefined: no size limit. */
  maxBytes?: number;
  /** Sealed segments older than this (their final checkpoint's time) are pruned; 0/undefined: no age limit. */
  maxAgeMs?: number;
}

export interface PruneOutcome {
  pruned: Array<{ epoch: string; segment: number; reason: 'size' | 'age'; bytes: number }>;
  bytesBefore: number;
  bytesAfter: number;
}

interface Candidate { row: DaemonSegmentRow; epochDir: string; bytes: number; sealedMs: number }

function hostRows(stateDir: string): Array<Record<string, unknown>> {
  let buf: Buffer;
  try { buf = fs.readFileSync(path.join(stateDir, GLOBAL_EVENTS_FILE)); } catch { return []; }
  const rows: Array<Record<string, unknown>> = [];
  for (let pos = 0; pos < buf.length;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1) break; // a torn last row: the next appender recovers it
    const rec = parseRecord(buf, pos, nl);
    pos = nl + 1;
    if (typeof rec === 'string') continue;
    try { rows.push(JSON.parse(buf.toString('utf8', rec.eventStart, rec.eventEnd)) as Record<string, unknown>); } catch { /* not a row */ }
  }
  return rows;
}

const fileBytes = (f: string): number => { try { return fs.statSync(f).size; } catch { return 0; } };

/** The segment's files: events, checkpoints and any `.lost-<seq>` tails a recovery cut off it. */
function segmentFiles(epochDir: string, n: number): string[] {
  const ev = segmentEventsFile(n);
  const lost = fs.readdirSync(epochDir).filter((f) => f.startsWith(`${ev}.lost-`));
  return [ev, segmentCheckpointsFile(n), ...lost].map((f) => path.join(epochDir, f));
}

function removeSegment(epochDir: string, n: number): void {
  for (const f of segmentFiles(epochDir, n)) fs.rmSync(f, { force: true });
  fsyncDir(epochDir);
}

/** Removes a finished epoch's dir once none of its segments is left (verify expects a dir with segments, or none). */
function removeEmptyEpoch(epochDir: string): void {
  if (!fs.existsSync(epochDir) || listSegments(epochDir).length > 0 || !fs.existsSync(path.join(epochDir, EPOCH_DONE_FILE))) return;
  fs.rmSync(epochDir, { recursive: true, force: true }); // its writer.lock is nobody's: the epoch was sealed and closed
  fsyncDir(path.dirname(epochDir));
}

/**
 * What an unfinished epoch keeps: its newest segment, and while that one
 * holds no complete record also the one before it, whose final checkpoint a
 * resumed writer reads to link the segment's first record (DaemonWriter.create).
 */
function keptByUnfinished(epochDir: string): number[] {
  const segs = listSegments(epochDir);
  const newest = segs[segs.length - 1];
  if (newest === undefined) return [];
  return segmentTail(epochDir, newest).records === 0 && segs.length > 1 ? [newest, segs[segs.length - 2]!] : [newest];
}

export function pruneSealedSegments(stateDir: string, key: KeyObject, policy: RetentionPolicy, nowMs = Date.now()): PruneOutcome {
  const out: PruneOutcome = { pruned: [], bytesBefore: 0, bytesAfter: 0 };
  if (!(policy.maxBytes && policy.maxBytes > 0) && !(policy.maxAgeMs && policy.maxAgeMs > 0)) return out;
  const rows = hostRows(stateDir);
  const prunedIds = new Set<string>();
  for (const r of rows) if (r.kind === 'prune') prunedIds.add(`${String(r.epoch_id)}/${String(r.segment)}`);

  // Finish earlier passes: a prune row whose files a crash left behind.
  for (const r of rows) {
    if (r.kind !== 'prune' || typeof r.dir !== 'string' || typeof r.segment !== 'number') continue;
    const epochDir = path.resolve(stateDir, r.dir);
    if (fs.existsSync(path.join(epochDir, segmentEventsFile(r.segment)))) removeSegment(epochDir, r.segment);
    removeEmptyEpoch(epochDir);
  }

  // Every segment on disk counts toward the size; only recorded, sealed ones may go.
  const daemonRoot = path.join(stateDir, 'daemon');
  for (const name of fs.existsSync(daemonRoot) ? fs.readdirSync(daemonRoot) : []) {
    const epochDir = path.join(daemonRoot, name);
    try { for (const n of listSegments(epochDir)) for (const f of segmentFiles(epochDir, n)) out.bytesBefore += fileBytes(f); } catch { /* not an epoch dir */ }
  }
  const candidates: Candidate[] = [];
  const kept = new Map<string, number[]>();
  for (const r of rows) {
    if (r.kind !== 'daemon_segment') continue;
    const row = r as unknown as DaemonSegmentRow;
    if (prunedIds.has(`${row.epoch_id}/${row.segment}`)) continue;
    const epochDir = path.resolve(stateDir, row.dir);
    if (!fs.existsSync(path.join(epochDir, segmentEventsFile(row.segment)))) continue; // gone: verify reports it
    const tail = segmentTail(epochDir, row.segment);
    if (tail.sealedBy === null || tail.checkpointSha256 !== row.final_checkpoint_sha256) continue; // not what the row sealed: left for verify
    const done = fs.existsSync(path.join(epochDir, EPOCH_DONE_FILE));
    if (!done) {
      if (!kept.has(epochDir)) kept.set(epochDir, keptByUnfinished(epochDir));
      if (kept.get(epochDir)!.includes(row.segment)) continue;
    }
    const bytes = segmentFiles(epochDir, row.segment).reduce((a, f) => a + fileBytes(f), 0);
    candidates.push({ row, epochDir, bytes, sealedMs: Date.parse(tail.checkpoint!.time) });
  }

  let total = out.bytesBefore;
  for (const c of candidates) {
    const old = policy.maxAgeMs && policy.maxAgeMs > 0 && nowMs - c.sealedMs > policy.maxAgeMs;
    const big = policy.maxBytes && policy.maxBytes > 0 && total > policy.maxBytes;
    if (!old && !big) continue;
    const reason = old ? 'age' : 'size';
    const { kind: _k, key_id: _id, ...identity } = c.row;
    const prune: PruneRow = { ...identity, kind: 'prune', time: nowRfc3339(), reason, bytes: c.bytes };
    // The row first: from here on the segment is expected gone.
    appendGlobalRow(stateDir, key, prune);
    removeSegment(c.epochDir, c.row.segment);
    removeEmptyEpoch(c.epochDir);
    total -= c.bytes;
    out.pruned.push({ epoch: c.row.epoch_id, segment: c.row.segment, reason, bytes: c.bytes });
  }
  out.bytesAfter = total;
  if (out.pruned.length > 0) log.info({ pruned: out.pruned.length, bytesBefore: out.bytesBefore, bytesAfter: total }, 'ledger retention pruned sealed segments');
  return out;
}
