import { parseCheckpointLine, type CheckpointPredicate } from './checkpoint.js';
import { readContinuity, type ContinuityContents } from './continuity.js';
import { verify as verifyDsse } from './dsse.js';
import { equalBytes } from './hash.js';
import { leafHash, MerkleFrontier } from './merkle.js';
import type { NoteVerifierKey } from './note-keys.js';
import { openNote } from './note.js';
import { parse as parseCheckpoint } from './tlog-checkpoint.js';
import { verify as verifyCosignature } from './cosignature.js';
import { parsePublicKey } from './keys.js';

/**
 * Checks a state dir's continuity log as a whole: every checkpoint note is
 * signed by the log key and commits to exactly the leaves before it (so
 * consecutive checkpoints are consistent), every leaf is a validly signed
 * ledger checkpoint, every stored cosignature verifies, and any checkpoint a
 * witness holds (`held`) is consistent with the state dir. The per-window
 * view is built on top of this (continuity-period.ts).
 */
export interface LeafInfo {
  index: number;
  time: number;
  predicate: CheckpointPredicate;
  /** Earliest cosignature timestamp (ms) per witness on a checkpoint that includes this leaf. */
  witnessedAt: Record<string, number | null>;
}

export interface HeldCheckpoint { witness: string; size: number; cosignedAt: number; root: string }

export interface ContinuityVerdict {
  origin: string | null;
  size: number;
  leaves: LeafInfo[];
  held: HeldCheckpoint[];
  failures: string[];
  /** Latest cosigned size per witness found in the state dir. */
  cosignedSize: Record<string, number>;
}

export interface ContinuityVerifyOptions {
  logKey: NoteVerifierKey;
  witnesses: NoteVerifierKey[];
  /** Signed checkpoints obtained from witnesses (GET /checkpoint/<origin>), with their cosignatures. */
  held?: string[];
  contents?: ContinuityContents;
}

export function verifyContinuity(stateDir: string, opts: ContinuityVerifyOptions): ContinuityVerdict {
  const c = opts.contents ?? readContinuity(stateDir);
  const failures: string[] = [];
  const out: ContinuityVerdict = { origin: null, size: 0, leaves: [], held: [], failures, cosignedSize: {} };
  if (c.checkpoints.length === 0) { failures.push('no continuity checkpoints: this state dir never sealed a ledger checkpoint'); return out; }
  const bodies: string[] = [];
  const roots: Buffer[] = [];
  const frontier = new MerkleFrontier();
  for (let i = 0; i < c.checkpoints.length; i++) {
    const rec = c.checkpoints[i]!;
    const leaf = c.leaves[i];
    if (leaf === undefined) { failures.push(`checkpoint ${i + 1}: its leaf is missing from leaves.ndjson (truncated)`); break; }
    frontier.append(leafHash(leaf));
    let body: string;
    try {
      body = openNote(rec.note, [opts.logKey]).text;
    } catch (e) {
      failures.push(`checkpoint ${i + 1}: ${(e as Error).message} (not signed by ${opts.logKey.name})`);
      break;
    }
    const cp = parseCheckpoint(body);
    if (cp.origin !== opts.logKey.name) { failures.push(`checkpoint ${i + 1}: origin ${cp.origin} is not ${opts.logKey.name}`); break; }
    if (cp.size !== i + 1 || !equalBytes(cp.rootHash, frontier.root())) {
      failures.push(`checkpoint ${i + 1}: size ${cp.size} / root does not match the leaves before it (edited or reordered)`);
      break;
    }
    bodies.push(body);
    roots.push(Buffer.from(cp.rootHash));
    out.origin = cp.origin;
    out.size = cp.size;
  }
  if (c.leaves.length > out.size && failures.length === 0) failures.push(`${c.leaves.length - out.size} leaves after the last signed checkpoint`);

  // Cosignatures: verified, then folded into "earliest witness time for each leaf".
  const byWitness = new Map(opts.witnesses.map((w) => [w.name, w]));
  const cosigned = new Map<string, Array<{ size: number; ts: number }>>();
  for (const rec of c.cosignatures) {
    const w = byWitness.get(rec.witness);
    if (!w) continue; // not a required witness
    const body = bodies[rec.size - 1];
    if (body === undefined) { failures.push(`cosignature by ${rec.witness} for size ${rec.size}: no such checkpoint here`); continue; }
    try {
      const ts = verifyCosignature(body, rec.line, w);
      cosigned.set(w.name, [...(cosigned.get(w.name) ?? []), { size: rec.size, ts: ts * 1000 }]);
    } catch (e) {
      failures.push(`cosignature by ${rec.witness} for size ${rec.size} does not verify: ${(e as Error).message}`);
    }
  }
  const earliest = new Map<string, Array<number | null>>();
  for (const w of opts.witnesses) {
    const arr: Array<number | null> = new Array(out.size).fill(null);
    const list = cosigned.get(w.name) ?? [];
    out.cosignedSize[w.name] = list.reduce((m, x) => Math.max(m, x.size), 0);
    // a cosignature on size s covers leaves [0, s): suffix-min over sizes
    const bySize: Array<number | null> = new Array(out.size + 1).fill(null);
    for (const x of list) bySize[x.size] = bySize[x.size] === null ? x.ts : Math.min(bySize[x.size]!, x.ts);
    let best: number | null = null;
    for (let s = out.size; s >= 1; s--) {
      if (bySize[s] !== null && (best === null || bySize[s]! < best)) best = bySize[s]!;
      arr[s - 1] = best;
    }
    earliest.set(w.name, arr);
  }

  for (let i = 0; i < out.size; i++) {
    const parsed = parseCheckpointLine(c.leaves[i]!);
    if (typeof parsed === 'string') { failures.push(`leaf ${i}: ${parsed}`); continue; }
    const p = parsed.predicate;
    if (!verifyDsse(parsed.envelope, parsePublicKey(p.public_key, `leaf ${i}`))) { failures.push(`leaf ${i}: ledger checkpoint signature does not verify`); continue; }
    const witnessedAt: Record<string, number | null> = {};
    for (const w of opts.witnesses) witnessedAt[w.name] = earliest.get(w.name)![i]!;
    out.leaves.push({ index: i, time: Date.parse(p.time), predicate: p, witnessedAt });
  }

  // What witnesses hold, compared against this state dir.
  for (const text of opts.held ?? []) {
    let opened;
    try { opened = openNote(text, opts.witnesses); } catch (e) { failures.push(`held checkpoint: ${(e as Error).message} (not cosigned by a given witness)`); continue; }
    const cp = parseCheckpoint(opened.text);
    const sig = opened.signatures[0]!;
    const h: HeldCheckpoint = { witness: sig.name, size: cp.size, cosignedAt: (sig.timestamp ?? 0) * 1000, root: Buffer.from(cp.rootHash).toString('base64') };
    out.held.push(h);
    const when = new Date(h.cosignedAt).toISOString();
    if (cp.origin !== out.origin) { failures.push(`witness ${h.witness} holds origin ${cp.origin}, not ${out.origin}`); continue; }
    if (cp.size > out.size) {
      failures.push(`ROLLBACK: witness ${h.witness} cosigned size ${cp.size} at ${when}, but this state dir has only ${out.size} checkpoints: it was rolled back or replaced`);
    } else if (cp.size > 0 && !equalBytes(cp.rootHash, roots[cp.size - 1]!)) {
      failures.push(`FORK: witness ${h.witness} cosigned a different tree at size ${cp.size} (${when}): this state dir's history was rewritten`);
    }
  }
  return out;
}
