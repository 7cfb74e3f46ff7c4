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
  const line = typeof ledgerCheckpointLine === 'string' ? ledgerCheckpointLine : ledgerCheckpointLine.toString('utf8');
  if (line.length === 0 || line.includes('\n')) throw new WitnessError('E_LEDGER', 'a continuity leaf is one non-empty line', { field: 'leaf' });
  const dir = continuityDir(stateDir);
  ensurePrivateDir(dir);
  const signer = opts.signer ?? hostNoteSigner(stateDir);
  return withFileLock(path.join(dir, 'continuity.lock'), () => {
    const notesPath = path.join(dir, NOTES_FILE);
    const leavesPath = path.join(dir, LEAVES_FILE);
    const last = lastCheckpoint(notesPath);
    const leavesBytes = last?.leaves_bytes ?? 0;
    // A leaf written by an appender that died before signing it is cut back; its ledger checkpoint stays in its own log.
    if (fs.existsSync(leavesPath) && fs.statSync(leavesPath).size > leavesBytes) fs.truncateSync(leavesPath, leavesBytes);
    const frontier = new MerkleFrontier(last?.size ?? 0, (last?.frontier ?? []).map((h) => Buffer.from(h, 'hex')));
    const leafBytes = Buffer.from(line, 'utf8');
    appendDurably(leavesPath, `${line}\n`);
    frontier.append(leafHash(leafBytes));
    const body = formatCheckpoint({ origin: signer.name, size: frontier.size, rootHash: frontier.root() });
    const record: ContinuityCheckpoint = {
      size: frontier.size,
      leaves_bytes: leavesBytes + leafBytes.length + 1,
      frontier: frontier.frontier.map((h) => Buffer.from(h).toString('hex')),
      time: (opts.now?.() ?? new Date()).toISOString(),
      note: signNote(body, signer),
    };
    const created = last === null;
    appendDurably(notesPath, `${JSON.stringify(record)}\n`);
    if (created) fsyncDir(dir);
    return record;
  });
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

/** A hook for LedgerLog: every sealed ledger checkpoint becomes a continuity leaf. */
export function continuityHook(stateDir: string): (line: Buffer) => void {
  let signer: NoteSignerKey | undefined;
  return (line) => {
    signer ??= hostNoteSigner(stateDir);
    appendContinuity(stateDir, line, { signer });
  };
}
