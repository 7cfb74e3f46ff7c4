import { WitnessError } from '../errors.js';
import { ALG_COSIGNATURE_V1, parseSignerKey, parseVerifierKey, signerKeyFromPrivate, type NoteSignerKey, type NoteVerifierKey } from './note-keys.js';
import { openNote, signatureLine } from './note.js';
import { parse as parseCheckpoint } from './tlog-checkpoint.js';

/**
 * Ed25519 cosignature/v1 (c2sp.org/tlog-cosignature): a note signature line
 *   — <cosigner name> base64(key id || u64 big-endian timestamp || Ed25519 signature)
 * over "cosignature/v1\ntime <timestamp>\n" || checkpoint body, with
 * key id = SHA-256(name || "\n" || 0x04 || public key)[:4].
 */
function cosignerKey(signerKey: string | NoteSignerKey): NoteSignerKey {
  const key = typeof signerKey === 'string' ? parseSignerKey(signerKey) : signerKey;
  return key.alg === ALG_COSIGNATURE_V1 ? key : signerKeyFromPrivate(key.name, ALG_COSIGNATURE_V1, key.privateKey);
}

/** One cosignature line (ending in "\n") over a checkpoint body. */
export function sign(checkpointBody: string, signerKey: string | NoteSignerKey, timestamp: number): string {
  parseCheckpoint(checkpointBody);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new WitnessError('E_LEDGER', 'timestamp must be a non-negative integer (POSIX seconds)', { field: 'timestamp' });
  return signatureLine(cosignerKey(signerKey), checkpointBody, timestamp);
}

/** Verifies one cosignature line against a type-0x04 vkey; returns its timestamp, throws on failure. */
export function verify(checkpointBody: string, line: string, vkey: string | NoteVerifierKey): number {
  const key = typeof vkey === 'string' ? parseVerifierKey(vkey) : vkey;
  if (key.alg !== ALG_COSIGNATURE_V1) throw new WitnessError('E_LEDGER', `key ${key.name} is not a cosignature/v1 (type 0x04) key`, { field: 'vkey' });
  parseCheckpoint(checkpointBody);
  const l = line.endsWith('\n') ? line : `${line}\n`;
  if (l.indexOf('\n') !== l.length - 1) throw new WitnessError('E_LEDGER', 'expected exactly one cosignature line', { field: 'cosignature' });
  const opened = openNote(`${checkpointBody}\n${l}`, [key]);
  return opened.signatures[0]!.timestamp!;
}
