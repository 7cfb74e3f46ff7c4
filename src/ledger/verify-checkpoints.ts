import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseCheckpointLine, type CheckpointPredicate } from './checkpoint.js';
import { verify as dsseVerify } from './dsse.js';
import { ZERO_HASH, fromHex32 } from './hash.js';
import { publicKeyFromRaw } from './keys.js';
import { EMPTY_ROOT, MerkleFrontier, verifyConsistency } from './merkle.js';

export interface Failure { file: string; line?: number; seq?: number; reason: string }

export interface VerifiedCheckpoint { predicate: CheckpointPredicate; lineSha256: string }

export interface CheckpointChain {
  checkpoints: VerifiedCheckpoint[];
  /** Base64 raw public keys that signed (one, unless the host ledger changed signers). */
  signers: Set<string>;
}

/**
 * Checks the whole checkpoint chain: every signature (with the pinned key,
 * or else each checkpoint's own embedded key), the hash links between
 * consecutive checkpoints, that each frontier folds to its root, and the
 * RFC 9162 consistency proof between consecutive tree heads. Reads no events.
 */
export function verifyCheckpointChain(checkpointsPath: string, pinned: KeyObject | null, expectLog?: CheckpointPredicate['log']): CheckpointChain | Failure {
  const file = path.basename(checkpointsPath);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(checkpointsPath);
  } catch (e) {
    return { file, reason: `cannot read checkpoints (${(e as Error).message})` };
  }
  if (bytes.length === 0) return { file, reason: 'no checkpoints: nothing is sealed' };
  if (bytes[bytes.length - 1] !== 0x0a) return { file, line: bytes.toString('latin1').split('\n').length, reason: 'last checkpoint line is torn (no newline)' };
  const checkpoints: VerifiedCheckpoint[] = [];
  const signers = new Set<string>();
  let prev: CheckpointPredicate | null = null;
  let prevSha: string | null = null;
  let start = 0;
  let lineNo = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    const line = bytes.subarray(start, nl);
    start = nl + 1;
    lineNo++;
    const at = (reason: string): Failure => ({ file, line: lineNo, reason });
    const parsed = parseCheckpointLine(line);
    if (typeof parsed === 'string') return at(parsed);
    const p = parsed.predicate;
    let key: KeyObject;
    try {
      key = pinned ?? embeddedKey(p.public_key);
    } catch {
      return at('embedded public_key is not an ed25519 key');
    }
    if (!dsseVerify(parsed.envelope, key)) {
      return at(pinned ? 'signature does not verify with the pinned public key' : 'signature does not verify with the checkpoint\'s public key');
    }
    signers.add(p.public_key);
    if (expectLog && p.log !== expectLog) return at(`checkpoint is for a ${p.log} log, expected ${expectLog}`);
    if (p.index !== lineNo - 1) return at(`checkpoint index ${p.index} at position ${lineNo - 1} (checkpoint removed or reordered)`);
    if (p.prev_checkpoint_sha256 !== prevSha) return at('prev_checkpoint_sha256 does not match the previous checkpoint (checkpoint removed, reordered or edited)');
    const prevSize = prev?.tree_size ?? 0;
    if (p.prev_tree_size !== prevSize) return at(`prev_tree_size ${p.prev_tree_size} but previous checkpoint has ${prevSize}`);
    if (prev && (p.log_id !== prev.log_id || p.events_file !== prev.events_file)) return at('log_id or events_file changed between checkpoints');
    if (p.tree_size < prevSize || p.events_bytes < (prev?.events_bytes ?? 0)) return at('tree shrank between checkpoints');
    let frontier: MerkleFrontier;
    try {
      frontier = new MerkleFrontier(p.tree_size, p.frontier.map(fromHex32));
    } catch (e) {
      return at(`frontier malformed: ${(e as Error).message}`);
    }
    if (Buffer.from(frontier.root()).toString('hex') !== p.root_hash) return at('frontier does not fold to root_hash');
    if (p.tree_size === 0 && p.chain_head !== ZERO_HASH.toString('hex')) return at('empty tree with a non-zero chain head');
    const prevRoot = prev ? fromHex32(prev.root_hash) : EMPTY_ROOT;
    if (!verifyConsistency(prevSize, p.tree_size, prevRoot, fromHex32(p.root_hash), p.consistency_proof.map(fromHex32))) {
      return at(`consistency proof from tree size ${prevSize} to ${p.tree_size} does not verify (history rewritten)`);
    }
    checkpoints.push({ predicate: p, lineSha256: parsed.lineSha256 });
    prev = p;
    prevSha = parsed.lineSha256;
  }
  return { checkpoints, signers };
}

/** Every checkpoint of a log names the same key: parse it once, not once per checkpoint. */
const keyCache = new Map<string, KeyObject>();
function embeddedKey(publicKeyB64: string): KeyObject {
  let k = keyCache.get(publicKeyB64);
  if (!k) {
    k = publicKeyFromRaw(Buffer.from(publicKeyB64, 'base64'));
    if (keyCache.size > 64) keyCache.clear();
    keyCache.set(publicKeyB64, k);
  }
  return k;
}

export function isFailure(x: unknown): x is Failure {
  return typeof x === 'object' && x !== null && 'reason' in x && 'file' in x;
}
