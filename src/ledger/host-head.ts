import fs from 'node:fs';
import path from 'node:path';
import { parseCheckpointLine } from './checkpoint.js';
import { GLOBAL_CHECKPOINTS_FILE } from './state.js';
import { EarlySync, fsyncDir, readTail, writeFully } from './tail.js';

/**
 * Copies of the host ledger's latest signed checkpoint kept *outside* the
 * host-ledger files, so cutting `ledger.ndjson` and
 * `ledger.checkpoints.ndjson` back together is still a mismatch:
 *
 * - `<state>/ledger.head`: the latest checkpoint line, rewritten (temp file +
 *   rename) after every host-ledger append;
 * - every session's and daemon segment's first record names the host
 *   ledger's checkpoint at the moment it opened (`witness.ledger.host_*`).
 *
 * Verification requires each copy to be a checkpoint the host ledger still
 * holds. A root attacker who also rewinds these copies (and deletes the
 * sessions that name newer ones) rolls the whole state back together: only
 * an off-host witness of the checkpoints catches that (docs/ledger.md §6).
 */
export const LEDGER_HEAD_FILE = 'ledger.head';

export function writeLedgerHead(stateDir: string, checkpointLine: Buffer): void {
  const file = path.join(stateDir, LEDGER_HEAD_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { writeFully(fd, Buffer.concat([checkpointLine, Buffer.from('\n')])); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
  fsyncDir(stateDir);
}

/**
 * writeLedgerHead in two steps: the temporary written and its fsync started on the threadpool as
 * soon as the checkpoint line is signed (while the host ledger's own fsyncs and its continuity
 * leaf run), then `finish()` once that checkpoint is durable: the temporary's fsync (as before),
 * the rename, the directory sync. The same writes in the same order; ledger.head is replaced only
 * after the checkpoint it copies is durable, as ever.
 */
export function startLedgerHead(stateDir: string, checkpointLine: Buffer): { finish: () => void; abandon: () => void } {
  const file = path.join(stateDir, LEDGER_HEAD_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  let early: EarlySync;
  try {
    writeFully(fd, Buffer.concat([checkpointLine, Buffer.from('\n')]));
    early = new EarlySync(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return {
    finish: () => {
      early.sync();
      fs.renameSync(tmp, file);
      fsyncDir(stateDir);
    },
    /** the checkpoint failed: ledger.head stays as it was (the temporary is left, as a crash leaves it) */
    abandon: () => early.release(),
  };
}

export interface HostAnchor { index: number; treeSize: number; checkpointSha256: string }

/** The host ledger's last checkpoint, read from its tail (O(line)); null when it has none. */
export function currentHostAnchor(stateDir: string): HostAnchor | null {
  const file = path.join(stateDir, GLOBAL_CHECKPOINTS_FILE);
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch { return null; }
  try {
    const { lastLine } = readTail(fd, fs.fstatSync(fd).size);
    if (!lastLine) return null;
    const parsed = parseCheckpointLine(lastLine);
    if (typeof parsed === 'string') return null;
    return { index: parsed.predicate.index, treeSize: parsed.predicate.tree_size, checkpointSha256: parsed.lineSha256 };
  } finally {
    fs.closeSync(fd);
  }
}

/** The attributes a log's first record carries to name the host ledger's head. */
export function hostAnchorAttributes(stateDir: string): Record<string, number | string | null> {
  const a = currentHostAnchor(stateDir);
  return {
    'witness.ledger.host_checkpoint_index': a?.index ?? null,
    'witness.ledger.host_tree_size': a?.treeSize ?? null,
    'witness.ledger.host_checkpoint_sha256': a?.checkpointSha256 ?? null,
  };
}

/** Reads `ledger.head` back: the checkpoint it holds, or a reason it cannot be used. */
export function readLedgerHead(stateDir: string): { index: number; treeSize: number; lineSha256: string } | 'missing' | string {
  let bytes: Buffer;
  try { bytes = fs.readFileSync(path.join(stateDir, LEDGER_HEAD_FILE)); } catch { return 'missing'; }
  const line = bytes[bytes.length - 1] === 0x0a ? bytes.subarray(0, bytes.length - 1) : bytes;
  const parsed = parseCheckpointLine(line);
  if (typeof parsed === 'string') return `unreadable (${parsed})`;
  return { index: parsed.predicate.index, treeSize: parsed.predicate.tree_size, lineSha256: parsed.lineSha256 };
}
