import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { leafHash, MerkleFrontier } from './merkle.js';
import type { NoteSignerKey } from './note-keys.js';
import { hostNoteSigner } from './note-key-files.js';
import { sign as signNote } from './note.js';
import { ensurePrivateDir, withFileLock } from './state.js';
import { fsyncDir, readTail, writeFully } from './tail.js';
import { format as formatCheckpoint } from './tlog-checkpoint.js';

/**
 * The continuity log: one C2SP transparency log per state dir. Its leaves are
 * the state dir's ledger checkpoints (each DSSE checkpoint line, verbatim,
 * from every session, daemon segment and the host ledger), so one append-only
 * tree covers the whole history; after every leaf it signs a c2sp.org
 * tlog-checkpoint note (origin = the host key's name, size, RFC 6962 root).
 * Witnesses cosign these notes; a state dir rolled back or forked then
 * disagrees with what a witness holds. Files in `<state>/continuity/`:
 *   leaves.ndjson        one ledger checkpoint line per leaf
 *   checkpoints.ndjson   {size, leaves_bytes, frontier, time, note} per leaf
 *   cosignatures.ndjson  {size, witness, line, received} per cosignature
 * Appends happen under `continuity.lock` (sessions and the daemon share it).
 */
export const CONTINUITY_DIR = 'continuity';
export const LEAVES_FILE = 'leaves.ndjson';
export const NOTES_FILE = 'checkpoints.ndjson';
export const COSIGNATURES_FILE = 'cosignatures.ndjson';

export interface ContinuityCheckpoint {
  size: number;
  leaves_bytes: number;
  /** Compact frontier (hex, largest subtree first): the next append needs nothing else. */
  frontier: string[];
  time: string;
  /** The signed checkpoint note. */
  note: string;
}

export interface CosignatureRecord { size: number; witness: string; line: string; received: string }

export const continuityDir = (stateDir: string): string => path.join(stateDir, CONTINUITY_DIR);

function appendDurably(file: string, data: string): void {
  const fd = fs.openSync(file, 'a', 0o600);
  try { writeFully(fd, Buffer.from(data, 'utf8')); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** The last complete checkpoint record; a torn tail (crash mid-write) is cut off. */
function lastCheckpoint(file: string): ContinuityCheckpoint | null {
  if (!fs.existsSync(file)) return null;
  const fd = fs.openSync(file, 'r+');
  try {
    const size = fs.fstatSync(fd).size;
    const tail = readTail(fd, size);
    if (tail.tornBytes > 0) { fs.ftruncateSync(fd, tail.completeBytes); fs.fsyncSync(fd); }
    return tail.lastLine ? JSON.parse(tail.lastLine.toString('utf8')) as ContinuityCheckpoint : null;
  } finally {
    fs.closeSync(fd);
  }
}

export interface ContinuityAppendOptions {
  signer?: NoteSignerKey;
  now?: () => Date;
}

/** Appends one ledger checkpoint line as a leaf and signs the new tree head. Returns the checkpoint record. */
export function appendContinuity(stateDir: string, ledgerCheckpointLine: Buffer | string, opts: ContinuityAppendOptions = {}): ContinuityCheckpoint {
  return appendContinuityLeaves(stateDir, [ledgerCheckpointLine], opts).at(-1)!;
}

/**
 * Appends leaves in order, under one lock: the leaves in one write and one fsync, then one signed
 * note per leaf (as one appended after each would read) in one write and one fsync. A crash leaves
 * what a crash between single appends leaves: leaves without notes are cut back by the next
 * appender, a torn note is cut off, and every note on disk covers leaves that were durable first.
 * Leaves deferred for this state dir (deferContinuity) go first: the order stays the seal order.
 */
export function appendContinuityLeaves(stateDir: string, ledgerCheckpointLines: Array<Buffer | string>, opts: ContinuityAppendOptions = {}): ContinuityCheckpoint[] {
  const held = takeDeferred(stateDir);
  const lines = [...held, ...ledgerCheckpointLines].map((l) => (typeof l === 'string' ? l : l.toString('utf8')));
  try {
    return appendLocked(stateDir, lines, opts);
  } catch (e) {
    // nothing of them is signed: the deferred ones wait for the next append (or the writer's flush)
    if (held.length > 0) deferred.set(path.resolve(stateDir), [...held, ...(deferred.get(path.resolve(stateDir)) ?? [])]);
    throw e;
  }
}

function appendLocked(stateDir: string, lines: string[], opts: ContinuityAppendOptions): ContinuityCheckpoint[] {
  if (lines.length === 0) return [];
  for (const line of lines) {
    if (line.length === 0 || line.includes('\n')) throw new WitnessError('E_LEDGER', 'a continuity leaf is one non-empty line', { field: 'leaf' });
  }
  const dir = continuityDir(stateDir);
  ensurePrivateDir(dir);
  const signer = opts.signer ?? hostNoteSigner(stateDir);
  return withFileLock(path.join(dir, 'continuity.lock'), () => {
    const notesPath = path.join(dir, NOTES_FILE);
    const leavesPath = path.join(dir, LEAVES_FILE);
    const last = lastCheckpoint(notesPath);
    let leavesBytes = last?.leaves_bytes ?? 0;
    // A leaf written by an appender that died before signing it is cut back; its ledger checkpoint stays in its own log.
    if (fs.existsSync(leavesPath) && fs.statSync(leavesPath).size > leavesBytes) fs.truncateSync(leavesPath, leavesBytes);
    const frontier = new MerkleFrontier(last?.size ?? 0, (last?.frontier ?? []).map((h) => Buffer.from(h, 'hex')));
    const leafBytes = lines.map((l) => Buffer.from(l, 'utf8'));
    appendDurably(leavesPath, lines.map((l) => `${l}\n`).join(''));
    const records: ContinuityCheckpoint[] = [];
    for (const leaf of leafBytes) {
      frontier.append(leafHash(leaf));
      leavesBytes += leaf.length + 1;
      const body = formatCheckpoint({ origin: signer.name, size: frontier.size, rootHash: frontier.root() });
      records.push({
        size: frontier.size,
        leaves_bytes: leavesBytes,
        frontier: frontier.frontier.map((h) => Buffer.from(h).toString('hex')),
        time: (opts.now?.() ?? new Date()).toISOString(),
        note: signNote(body, signer),
      });
    }
    const created = last === null;
    appendDurably(notesPath, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    if (created) fsyncDir(dir);
    return records;
  });
}

/**
 * Sealed ledger checkpoints whose leaves wait, per state dir (this process's): a writer defers a
 * leaf that nothing waits for (the resident daemon's `sensor.start` seal, before the agent runs;
 * a session's final seal, which its host-ledger row's leaf follows at once), and the next append
 * of the state dir takes them first, in seal order, in its one lock and pair of fsyncs.
 * flushContinuity appends them alone (a writer's close, a timer). Their checkpoints are durable
 * already: a crash before the append leaves what a crash between a seal and its leaf leaves today.
 */
const deferred = new Map<string, Buffer[]>();
const flushTimers = new Map<string, NodeJS.Timeout>();

function takeDeferred(stateDir: string): Buffer[] {
  const key = path.resolve(stateDir);
  const held = deferred.get(key) ?? [];
  deferred.delete(key);
  const t = flushTimers.get(key);
  if (t !== undefined) { clearTimeout(t); flushTimers.delete(key); }
  return held;
}

/** Holds a sealed checkpoint's leaf for the state dir's next append; appended alone after `withinMs` at the latest. */
export function deferContinuity(stateDir: string, line: Buffer, withinMs: number, onFlushError: (e: Error) => void = () => {}): void {
  const key = path.resolve(stateDir);
  deferred.set(key, [...(deferred.get(key) ?? []), line]);
  if (flushTimers.has(key)) return;
  flushTimers.set(key, setTimeout(() => {
    flushTimers.delete(key);
    try { flushContinuity(key); } catch (e) { onFlushError(e as Error); }
  }, withinMs).unref());
}

/** Appends the state dir's deferred leaves now (none: nothing happens). */
export function flushContinuity(stateDir: string): void {
  if (!deferred.has(path.resolve(stateDir))) return;
  appendContinuityLeaves(stateDir, []);
}

export interface ContinuityContents {
  leaves: Buffer[];
  checkpoints: ContinuityCheckpoint[];
  cosignatures: CosignatureRecord[];
}

function readLines(file: string): Buffer[] {
  if (!fs.existsSync(file)) return [];
  const buf = fs.readFileSync(file);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, start)) { out.push(buf.subarray(start, i)); start = i + 1; }
  return out; // a torn last line (no newline) is not a record
}

function parseJsonLines<T>(file: string): T[] {
  return readLines(file).map((l, i) => {
    try { return JSON.parse(l.toString('utf8')) as T; } catch (cause) {
      throw new WitnessError('E_LEDGER', `line ${i + 1} is not JSON`, { file, cause });
    }
  });
}

export function readContinuity(stateDir: string): ContinuityContents {
  const dir = continuityDir(stateDir);
  return {
    leaves: readLines(path.join(dir, LEAVES_FILE)),
    checkpoints: parseJsonLines<ContinuityCheckpoint>(path.join(dir, NOTES_FILE)),
    cosignatures: parseJsonLines<CosignatureRecord>(path.join(dir, COSIGNATURES_FILE)),
  };
}

/** Stores a verified cosignature with the checkpoint it signs. */
export function storeCosignature(stateDir: string, rec: CosignatureRecord): void {
  appendDurably(path.join(continuityDir(stateDir), COSIGNATURES_FILE), `${JSON.stringify(rec)}\n`);
}

/** The latest checkpoint record (what a pusher sends next). */
export function latestContinuity(stateDir: string): ContinuityCheckpoint | null {
  const file = path.join(continuityDir(stateDir), NOTES_FILE);
  if (!fs.existsSync(file)) return null;
  const fd = fs.openSync(file, 'r');
  try {
    const tail = readTail(fd, fs.fstatSync(fd).size);
    return tail.lastLine ? JSON.parse(tail.lastLine.toString('utf8')) as ContinuityCheckpoint : null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A hook for LedgerLog: every sealed ledger checkpoint becomes a continuity leaf, now, or with
 * the state dir's next append when `later()` answers a deadline in ms (deferContinuity).
 */
export function continuityHook(stateDir: string, later: () => number | null = () => null, onFlushError?: (e: Error) => void): (line: Buffer) => void {
  let signer: NoteSignerKey | undefined;
  return (line) => {
    const within = later();
    if (within !== null) return deferContinuity(stateDir, line, within, onFlushError);
    signer ??= hostNoteSigner(stateDir);
    appendContinuity(stateDir, line, { signer });
  };
}
