import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { parseCheckpointLine } from './checkpoint.js';
import { readContinuity } from './continuity.js';
import { segmentCheckpointsFile, segmentEventsFile } from './daemon.js';
import { verify as verifyDsse } from './dsse.js';
import { EVENT_TAG, equalBytes } from './hash.js';
import { parsePublicKey } from './keys.js';
import { inclusionPathWith, leafHash, rootOfLeafHashes, verifyInclusion } from './merkle.js';
import type { NoteVerifierKey } from './note-keys.js';
import { openNote, splitNote } from './note.js';
import { parseRecord } from './record.js';
import { GLOBAL_CHECKPOINTS_FILE, GLOBAL_EVENTS_FILE, SESSION_CHECKPOINTS_FILE, SESSION_EVENTS_FILE } from './state.js';
import { parse as parseCheckpoint } from './tlog-checkpoint.js';
import { format as formatProof, parse as parseProof } from './tlog-proof.js';

/**
 * One event, provable to a third party as a c2sp.org/tlog-proof: the proof's
 * checkpoint is the state dir's continuity checkpoint with its witness
 * cosignatures, its index and inclusion proof locate the ledger checkpoint
 * that seals the event, and the extra data carries what links that ledger
 * checkpoint to the event (unauthenticated by itself, but every byte of it
 * is checked against the authenticated roots):
 *   {"v":1,"seq":N,"event":"<event line>","event_proof":[b64...],"ledger_checkpoint":"<DSSE line>"}
 * event leaf = SHA-256(0x00 || "agent-witness.v1.event\n" || event bytes), in
 * the RFC 6962 tree the ledger checkpoint's root_hash heads.
 */
interface Extra { v: 1; seq: number; event: string; event_proof: string[]; ledger_checkpoint: string }

const fail = (why: string, file?: string): WitnessError => new WitnessError('E_LEDGER', why, file ? { file } : {});

/** `seq` (the host ledger, or a session dir given as STATE), `<session id>:seq`, or `daemon/<epoch>/<segment>:seq`. */
function locate(target: string, event: string): { stateDir: string; events: string; checkpoints: string; seq: number } {
  const m = /^(?:(.+):)?(0|[1-9][0-9]*)$/.exec(event);
  if (!m) throw new WitnessError('E_CONFIG', `expected <seq> or <session>:<seq>, got '${event}'`, { field: '--event' });
  const seq = Number(m[2]);
  const abs = path.resolve(target);
  if (!m[1]) {
    if (fs.existsSync(path.join(abs, SESSION_EVENTS_FILE))) {
      return { stateDir: path.resolve(abs, '..', '..'), events: path.join(abs, SESSION_EVENTS_FILE), checkpoints: path.join(abs, SESSION_CHECKPOINTS_FILE), seq };
    }
    return { stateDir: abs, events: path.join(abs, GLOBAL_EVENTS_FILE), checkpoints: path.join(abs, GLOBAL_CHECKPOINTS_FILE), seq };
  }
  const d = /^daemon\/(.+)\/(\d+)$/.exec(m[1]);
  if (d) {
    const dir = path.join(abs, 'daemon', d[1]!);
    return { stateDir: abs, events: path.join(dir, segmentEventsFile(Number(d[2]))), checkpoints: path.join(dir, segmentCheckpointsFile(Number(d[2]))), seq };
  }
  const dir = path.join(abs, 'sessions', m[1]);
  return { stateDir: abs, events: path.join(dir, SESSION_EVENTS_FILE), checkpoints: path.join(dir, SESSION_CHECKPOINTS_FILE), seq };
}

function lines(file: string): Buffer[] {
  if (!fs.existsSync(file)) throw fail('no such ledger file', file);
  const buf = fs.readFileSync(file);
  const out: Buffer[] = [];
  let s = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, s)) { out.push(buf.subarray(s, i)); s = i + 1; }
  return out;
}

const eventLeaf = (bytes: Uint8Array): Uint8Array => leafHash(Buffer.concat([EVENT_TAG, bytes]));

export function proveEvent(target: string, event: string): string {
  const loc = locate(target, event);
  const records = lines(loc.events);
  const rec = records[loc.seq];
  if (!rec) throw fail(`no record with seq ${loc.seq}`, loc.events);
  const parsed = parseRecord(rec, 0, rec.length);
  if (typeof parsed === 'string' || parsed.seq !== loc.seq) throw fail(`record ${loc.seq}: ${typeof parsed === 'string' ? parsed : 'seq out of order'}`, loc.events);
  const eventBytes = rec.subarray(parsed.eventStart, parsed.eventEnd);
  // v1 records store a leaf_hash copy to check against; v2 records are only their event bytes (src/ledger/record.ts)
  if (parsed.leafHex !== null && !equalBytes(eventLeaf(eventBytes), Buffer.from(parsed.leafHex, 'hex'))) throw fail(`record ${loc.seq}: event bytes do not match leaf_hash`, loc.events);

  const cont = readContinuity(loc.stateDir);
  const contLines = cont.leaves.map((l) => l.toString('utf8'));
  // The first ledger checkpoint that seals the event and is in the continuity log.
  let sealing: { line: string; treeSize: number; rootHex: string; leafIndex: number } | null = null;
  for (const l of lines(loc.checkpoints)) {
    const cp = parseCheckpointLine(l);
    if (typeof cp === 'string' || cp.predicate.tree_size <= loc.seq) continue;
    const idx = contLines.indexOf(l.toString('utf8'));
    if (idx >= 0) { sealing = { line: l.toString('utf8'), treeSize: cp.predicate.tree_size, rootHex: cp.predicate.root_hash, leafIndex: idx }; break; }
  }
  if (!sealing) throw fail(`no ledger checkpoint sealing seq ${loc.seq} is in the continuity log`, loc.checkpoints);
  const leafHashes = records.slice(0, sealing.treeSize).map((r) => {
    const p = parseRecord(r, 0, r.length);
    if (typeof p === 'string') throw fail(`record: ${p}`, loc.events);
    return p.leafHex !== null ? Buffer.from(p.leafHex, 'hex') : Buffer.from(eventLeaf(r.subarray(p.eventStart, p.eventEnd)));
  });
  if (leafHashes.length !== sealing.treeSize) throw fail(`events file holds fewer than ${sealing.treeSize} records`, loc.events);
  const mth = (s: number, e: number): Uint8Array => rootOfLeafHashes(leafHashes, s, e);
  if (Buffer.from(mth(0, sealing.treeSize)).toString('hex') !== sealing.rootHex) throw fail('events do not match the sealing checkpoint root', loc.events);
  const eventProof = inclusionPathWith(mth, loc.seq, 0, sealing.treeSize);

  // The smallest continuity checkpoint that includes the leaf and carries cosignatures (else the latest).
  const cosigs = new Map<number, string[]>();
  for (const c of cont.cosignatures) cosigs.set(c.size, [...(cosigs.get(c.size) ?? []), c.line]);
  const size = [...cosigs.keys()].filter((s) => s > sealing!.leafIndex).sort((a, b) => a - b)[0] ?? cont.checkpoints.length;
  const cp = cont.checkpoints[size - 1];
  if (!cp) throw fail('continuity log is empty', loc.stateDir);
  const contHashes = cont.leaves.slice(0, size).map((l) => leafHash(l));
  const contProof = inclusionPathWith((s, e) => rootOfLeafHashes(contHashes, s, e), sealing.leafIndex, 0, size);
  const extra: Extra = { v: 1, seq: loc.seq, event: eventBytes.toString('utf8'), event_proof: eventProof.map((h) => Buffer.from(h).toString('base64')), ledger_checkpoint: sealing.line };
  return formatProof({
    extra: Buffer.from(JSON.stringify(extra), 'utf8'),
    index: sealing.leafIndex,
    inclusionProof: contProof,
    checkpoint: `${cp.note}${[...new Set(cosigs.get(size) ?? [])].join('')}`,
  });
}

export interface VerifiedEventProof {
  origin: string;
  size: number;
  index: number;
  witnesses: Array<{ name: string; timestamp: number }>;
  log: string;
  logId: string;
  seq: number;
  event: string;
}

/** Offline check of a .tlog-proof: log signature, every required witness, both inclusion proofs. */
export function verifyEventProof(text: string, logKey: NoteVerifierKey, witnesses: NoteVerifierKey[]): VerifiedEventProof {
  const p = parseProof(text);
  const opened = openNote(p.checkpoint, [logKey, ...witnesses]);
  if (!opened.verified.includes(logKey.name) || opened.signatures.find((s) => s.name === logKey.name)?.alg !== 1) throw fail(`checkpoint is not signed by the log key ${logKey.name}`);
  for (const w of witnesses) if (!opened.verified.includes(w.name)) throw fail(`checkpoint is not cosigned by witness ${w.name}`);
  const cp = parseCheckpoint(splitNote(p.checkpoint).text);
  if (cp.origin !== logKey.name) throw fail(`origin ${cp.origin} is not ${logKey.name}`);
  if (!p.extra) throw fail('no extra data: the event and its ledger checkpoint are missing');
  let extra: Extra;
  try { extra = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(p.extra)) as Extra; } catch { throw fail('extra data is not UTF-8 JSON'); }
  if (extra.v !== 1 || !Number.isSafeInteger(extra.seq) || typeof extra.event !== 'string' || typeof extra.ledger_checkpoint !== 'string' || !Array.isArray(extra.event_proof)
    || Object.keys(extra).length !== 5) throw fail('extra data is not {v,seq,event,event_proof,ledger_checkpoint}');
  const ledgerLine = Buffer.from(extra.ledger_checkpoint, 'utf8');
  if (!verifyInclusion(leafHash(ledgerLine), p.index, cp.size, p.inclusionProof, cp.rootHash)) throw fail(`the ledger checkpoint is not leaf ${p.index} of the witnessed tree of size ${cp.size}`);
  const lc = parseCheckpointLine(ledgerLine);
  if (typeof lc === 'string') throw fail(`ledger checkpoint: ${lc}`);
  if (!verifyDsse(lc.envelope, parsePublicKey(lc.predicate.public_key, 'ledger checkpoint'))) throw fail('ledger checkpoint signature does not verify');
  const proof = extra.event_proof.map((h) => {
    const b = Buffer.from(String(h), 'base64');
    if (b.length !== 32 || b.toString('base64') !== h) throw fail('event proof hash is not base64 of 32 bytes');
    return b;
  });
  if (!verifyInclusion(eventLeaf(Buffer.from(extra.event, 'utf8')), extra.seq, lc.predicate.tree_size, proof, Buffer.from(lc.predicate.root_hash, 'hex'))) {
    throw fail(`the event is not record ${extra.seq} of ${lc.predicate.log} ${lc.predicate.log_id} (tree size ${lc.predicate.tree_size})`);
  }
  return {
    origin: cp.origin, size: cp.size, index: p.index,
    witnesses: opened.signatures.filter((s) => s.alg === 4).map((s) => ({ name: s.name, timestamp: s.timestamp! })),
    log: lc.predicate.log, logId: lc.predicate.log_id, seq: extra.seq, event: extra.event,
  };
}
