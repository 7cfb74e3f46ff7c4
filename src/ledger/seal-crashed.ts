import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../log.js';
import { DaemonWriter, EPOCH_DONE_FILE, listSegments } from './daemon.js';
import { adoptOrphanRows, appendGlobalRow, noteHeld, rowDir, type DaemonSegmentRow } from './global.js';
import { keyIdOf, rawPublicKey } from './keys.js';
import { existingHostKey } from './rotation.js';
import { segmentTail } from './segment-tail.js';
import { SessionWriter } from './session.js';
import { GLOBAL_EVENTS_FILE, SESSION_CHECKPOINTS_FILE, SESSION_FILE, SESSION_OPEN_FILE, writerState } from './state.js';
import { readTail } from './tail.js';
import { parseCheckpointLine } from './checkpoint.js';

/**
 * A writer killed with kill -9 leaves its log open: no final checkpoint, no
 * host-ledger row. Every new writer (`witness run`, the daemon) first seals
 * what dead writers left in this state dir: it resumes the log (the torn
 * tail is cut off and reported in a `sensor.restart` record naming the last
 * checkpoint and the lost bytes), seals it with a final checkpoint and
 * records its row. Returns what was sealed ("daemon/<epoch>", "session/<id>").
 */
export async function sealCrashed(stateDir: string, key: KeyObject, sealer: string, ownDir?: string): Promise<string[]> {
  const keys = [key, existingHostKey(stateDir)].filter((k): k is KeyObject => k !== null);
  const keyFor = (publicKeyB64: string | null): KeyObject | null =>
    publicKeyB64 === null ? keys[0]! : keys.find((k) => rawPublicKey(k).toString('base64') === publicKeyB64) ?? null;
  // Rows noted by killed closers first, so the checks below see them.
  if (hasDeadNotes(stateDir)) adoptOrphanRows(stateDir, keys[0]!);
  const sealed: string[] = [];
  for (const id of await sealCrashedEpochs(stateDir, keyFor, sealer, ownDir)) sealed.push(`daemon/${id}`);
  for (const id of await sealCrashedSessions(stateDir, keyFor, sealer, ownDir)) sealed.push(`session/${id}`);
  return sealed;
}

/** Any note in pending-rows/ that no live writer holds (checked without the host-ledger lock). */
function hasDeadNotes(stateDir: string): boolean {
  let names: string[];
  try { names = fs.readdirSync(path.join(stateDir, 'pending-rows')); } catch { return false; }
  return names.some((n) => !noteHeld(path.join(stateDir, 'pending-rows', n)));
}

type KeyFor = (publicKeyB64: string | null) => KeyObject | null;

function recordedSegments(stateDir: string): Set<string> {
  const out = new Set<string>();
  let text = '';
  try { text = fs.readFileSync(path.join(stateDir, GLOBAL_EVENTS_FILE), 'utf8'); } catch { return out; }
  for (const m of text.matchAll(/"kind":"daemon_segment","epoch_id":"([^"]+)","segment":(\d+)/g)) out.add(`${m[1]}/${m[2]}`);
  return out;
}

async function sealCrashedEpochs(stateDir: string, keyFor: KeyFor, sealer: string, ownDir?: string): Promise<string[]> {
  const root = path.join(stateDir, 'daemon');
  let names: string[];
  try { names = fs.readdirSync(root).sort(); } catch { return []; }
  const sealed: string[] = [];
  let recorded: Set<string> | null = null;
  for (const epochId of names) {
    const dir = path.join(root, epochId);
    if (dir === ownDir) continue;
    if (fs.existsSync(path.join(dir, EPOCH_DONE_FILE)) || writerState(dir).alive) continue;
    const segments = listSegments(dir);
    if (segments.length === 0) continue;
    recorded ??= recordedSegments(stateDir);
    // Sealed segments whose row a killed writer never appended (killed between seal and note).
    for (const n of segments) {
      const t = segmentTail(dir, n);
      if (!t.sealedBy || recorded.has(`${epochId}/${n}`) || !t.checkpoint || !t.checkpointSha256) continue;
      const k = keyFor(t.checkpoint.public_key);
      if (!k) continue;
      const row: DaemonSegmentRow = {
        kind: 'daemon_segment', epoch_id: epochId, segment: n, dir: rowDir(stateDir, dir), tree_size: t.checkpoint.tree_size,
        root_hash: t.checkpoint.root_hash, chain_head: t.checkpoint.chain_head, final_checkpoint_sha256: t.checkpointSha256, key_id: keyIdOf(k),
      };
      appendGlobalRow(stateDir, k, row);
      recorded.add(`${epochId}/${n}`);
    }
    const last = segmentTail(dir, segments[segments.length - 1]!);
    if (last.sealedBy === 'shutdown') { fs.writeFileSync(path.join(dir, EPOCH_DONE_FILE), `${last.checkpointSha256}\n`, { mode: 0o600 }); continue; }
    const k = keyFor(last.checkpoint?.public_key ?? null);
    if (!k) { log.warn({ dir }, 'crashed daemon epoch signed by a key this writer does not hold; left unsealed'); continue; }
    const w = await DaemonWriter.create({
      stateDir, signKey: k, epochId, sealCrashed: false, sealedBy: sealer,
      segmentMaxSeconds: 0, checkpointEverySeconds: 0, flushIntervalMs: 0,
    });
    await w.close(last.checkpoint?.counters ?? {}, last.checkpoint?.drops ?? {});
    sealed.push(epochId);
  }
  return sealed;
}

function lastSessionSigner(dir: string): string | null {
  try {
    const fd = fs.openSync(path.join(dir, SESSION_CHECKPOINTS_FILE), 'r');
    try {
      const { lastLine } = readTail(fd, fs.fstatSync(fd).size);
      const parsed = lastLine ? parseCheckpointLine(lastLine) : null;
      return parsed && typeof parsed !== 'string' ? parsed.predicate.public_key : null;
    } finally { fs.closeSync(fd); }
  } catch {
    return null;
  }
}

/**
 * Session dirs seen sealed (session.json present), per sessions root: a sealed session is
 * never resumed, so a long-lived writer (the daemon opens a session per `witness run`)
 * checks each dir once, not once per run; without it every open costs a stat per session
 * the state dir ever held.
 */
const seenSealed = new Map<string, Set<string>>();

async function sealCrashedSessions(stateDir: string, keyFor: KeyFor, sealer: string, ownDir?: string): Promise<string[]> {
  const root = path.resolve(stateDir, 'sessions');
  let names: string[];
  try { names = fs.readdirSync(root).sort(); } catch { return []; }
  let known = seenSealed.get(root);
  if (!known) seenSealed.set(root, known = new Set());
  const sealed: string[] = [];
  for (const name of names) {
    if (known.has(name)) continue;
    const dir = path.join(root, name);
    if (dir === ownDir) continue;
    if (fs.existsSync(path.join(dir, SESSION_FILE))) { known.add(name); continue; }
    if (!fs.existsSync(path.join(dir, SESSION_OPEN_FILE)) || writerState(dir).alive) continue;
    const k = keyFor(lastSessionSigner(dir));
    if (!k) { log.warn({ dir }, 'crashed session signed by a key this writer does not hold; left unsealed'); continue; }
    const w = await SessionWriter.create({ dir, stateDir, signKey: k, command: [], sealCrashed: false, checkpointEverySeconds: 0, flushIntervalMs: 0 });
    await w.close({ exitCode: null, signal: null, counters: {}, drops: {}, sealedBy: sealer });
    sealed.push(w.sessionId);
  }
  return sealed;
}
