import crypto from 'node:crypto';
import { WitnessError } from '../errors.js';
import {
  ALG_COSIGNATURE_V1, ALG_ED25519, decodeBase64Strict, isValidName, isWellFormed, parseSignerKey, parseVerifierKey,
  type NoteSignerKey, type NoteVerifierKey,
} from './note-keys.js';

/**
 * Signed notes (c2sp.org/signed-note; Go golang.org/x/mod/sumdb/note):
 *   <text ending in "\n">"\n"("— " <key name> " " base64(key hash || signature) "\n")+
 * Valid UTF-8, no control characters but "\n". Signatures from unknown keys
 * are ignored; a known key whose signature fails makes the whole note fail.
 * Type 0x04 keys verify cosignature/v1 lines (c2sp.org/tlog-cosignature).
 */
export const SIG_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;

export interface NoteSignature { name: string; keyHash: number; base64: string; line: string }
export interface OpenedNote {
  text: string;
  verified: string[];
  /** Verified signatures, in note order; `timestamp` for cosignatures. */
  signatures: Array<NoteSignature & { alg: number; timestamp?: number }>;
  unverified: NoteSignature[];
}

const malformedNote = (why: string): WitnessError => new WitnessError('E_LEDGER', `malformed note: ${why}`, { field: 'note' });

function asText(msg: string | Uint8Array): string {
  if (typeof msg === 'string') {
    if (!isWellFormed(msg)) throw malformedNote('not valid UTF-8');
    return msg;
  }
  try { return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(msg); } catch { throw malformedNote('not valid UTF-8'); }
}

/** No ASCII control characters other than newline. */
export function hasControlChars(s: string): boolean {
  return /[\u0000-\u0009\u000b-\u001f]/.test(s);
}

/** The cosignature/v1 signed message: header, time line, then the note text. */
export function cosignedMessage(text: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`, 'utf8');
}

export function signatureLine(key: NoteSignerKey, text: string, timestamp?: number): string {
  const head = Buffer.alloc(key.alg === ALG_COSIGNATURE_V1 ? 12 : 4);
  head.writeUInt32BE(key.keyHash >>> 0, 0);
  let message: Buffer;
  if (key.alg === ALG_COSIGNATURE_V1) {
    if (timestamp === undefined || !Number.isSafeInteger(timestamp) || timestamp < 0) throw new WitnessError('E_LEDGER', 'a cosignature needs a non-negative integer timestamp', { field: 'timestamp' });
    head.writeBigUInt64BE(BigInt(timestamp), 4);
    message = cosignedMessage(text, timestamp);
  } else {
    message = Buffer.from(text, 'utf8');
  }
  const sig = crypto.sign(null, message, key.privateKey);
  return `${SIG_PREFIX}${key.name} ${Buffer.concat([head, sig]).toString('base64')}\n`;
}

/** note.sign: the whole signed note (text, blank line, one signature line). */
export function sign(text: string, signerKey: string | NoteSignerKey): string {
  const key = typeof signerKey === 'string' ? parseSignerKey(signerKey) : signerKey;
  if (!text.endsWith('\n')) throw malformedNote('text must end in a newline');
  if (hasControlChars(text) || !isWellFormed(text)) throw malformedNote('text has control characters or is not UTF-8');
  return `${text}\n${signatureLine(key, text, key.alg === ALG_COSIGNATURE_V1 ? Math.floor(Date.now() / 1000) : undefined)}`;
}

/** Splits a note into text and signature lines without verifying anything. */
export function splitNote(msg: string | Uint8Array): { text: string; sigLines: string[] } {
  const s = asText(msg);
  if (hasControlChars(s)) throw malformedNote('control character');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformedNote('no signature block');
  const text = s.slice(0, split + 1);
  const sigs = s.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n')) throw malformedNote('signature block must end in a newline');
  return { text, sigLines: sigs.slice(0, -1).split('\n') };
}

function parseSigLine(line: string): NoteSignature & { raw: Buffer } {
  if (!line.startsWith(SIG_PREFIX)) throw malformedNote('signature line must start with an em dash and a space');
  const body = line.slice(SIG_PREFIX.length);
  const sp = body.indexOf(' ');
  const name = sp < 0 ? body : body.slice(0, sp);
  const b64 = sp < 0 ? '' : body.slice(sp + 1);
  const raw = decodeBase64Strict(b64);
  if (raw === null || !isValidName(name) || b64 === '' || raw.length < 5) throw malformedNote('bad signature line');
  return { name, keyHash: raw.readUInt32BE(0), base64: b64, line: `${line}\n`, raw };
}

function verifyOne(key: NoteVerifierKey, text: string, raw: Buffer): { ok: boolean; timestamp?: number } {
  const sig = raw.subarray(4);
  if (key.alg === ALG_ED25519) return { ok: sig.length === 64 && crypto.verify(null, Buffer.from(text, 'utf8'), key.key, sig) };
  if (sig.length !== 72) return { ok: false };
  const ts = sig.readBigUInt64BE(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false };
  const timestamp = Number(ts);
  return { ok: crypto.verify(null, cosignedMessage(text, timestamp), key.key, sig.subarray(8)), timestamp };
}

/** Opens a note against known keys; throws on a malformed note, a bad known signature, or no verified one. */
export function openNote(msg: string | Uint8Array, verifierKeys: Array<string | NoteVerifierKey>): OpenedNote {
  const keys = verifierKeys.map((k) => (typeof k === 'string' ? parseVerifierKey(k) : k));
  const { text, sigLines } = splitNote(msg);
  if (sigLines.length > MAX_SIGNATURES) throw malformedNote(`more than ${MAX_SIGNATURES} signatures`);
  const out: OpenedNote = { text, verified: [], signatures: [], unverified: [] };
  const seen = new Set<string>();
  const seenUnverified = new Set<string>();
  for (const line of sigLines) {
    const sig = parseSigLine(line);
    const matches = keys.filter((k) => k.name === sig.name && k.keyHash === sig.keyHash);
    const id = `${sig.name}+${sig.keyHash}`;
    if (matches.length === 0) {
      if (!seenUnverified.has(line)) { seenUnverified.add(line); out.unverified.push({ name: sig.name, keyHash: sig.keyHash, base64: sig.base64, line: sig.line }); }
      continue;
    }
    if (matches.length > 1) throw new WitnessError('E_LEDGER', `ambiguous key ${sig.name}+${sig.keyHash.toString(16).padStart(8, '0')}`, { field: 'note' });
    if (seen.has(id)) continue;
    seen.add(id);
    const key = matches[0]!;
    const res = verifyOne(key, text, sig.raw);
    if (!res.ok) throw new WitnessError('E_LEDGER', `invalid signature for key ${sig.name}+${sig.keyHash.toString(16).padStart(8, '0')}`, { field: 'note' });
    out.verified.push(sig.name);
    out.signatures.push({ name: sig.name, keyHash: sig.keyHash, base64: sig.base64, line: sig.line, alg: key.alg, ...(res.timestamp !== undefined && { timestamp: res.timestamp }) });
  }
  if (out.verified.length === 0) throw new WitnessError('E_LEDGER', 'note has no verifiable signatures', { field: 'note' });
  return out;
}

/** note.open: the text and the names whose signatures verified. */
export function open(msg: string | Uint8Array, verifierKeys: string[]): { text: string; verified: string[] } {
  const n = openNote(msg, verifierKeys);
  return { text: n.text, verified: n.verified };
}
