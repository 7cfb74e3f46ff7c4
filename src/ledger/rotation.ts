import type { KeyObject } from 'node:crypto';
import crypto from 'node:crypto';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { nowRfc3339 } from './clock.js';
import { keyIdOf, parsedKeyFile, publicKeyFromRaw, rawPublicKey } from './keys.js';

/**
 * Changing the host ledger's signing key. A change of signer between two
 * host-ledger checkpoints is a MISMATCH unless the row just before it is a
 * `key_rotation` record, sealed by the old key, that names the new key and
 * carries the old key's signature over it. A re-keyed state dir (someone
 * replaced `keys/host.key`) therefore cannot pass as the same ledger.
 */
export interface KeyRotationRow {
  kind: 'key_rotation';
  time: string;
  old_public_key: string;
  new_public_key: string;
  new_key_id: string;
  /** base64 Ed25519 signature by the old key over ROTATION_CONTEXT ‖ new_public_key (base64 text). */
  signature: string;
}

const ROTATION_CONTEXT = 'agent-witness.v1.key-rotation\n';

function rotationMessage(newPublicKeyB64: string): Buffer {
  return Buffer.from(`${ROTATION_CONTEXT}${newPublicKeyB64}`, 'utf8');
}

export function keyRotationRow(oldKey: KeyObject, newKey: KeyObject): KeyRotationRow {
  const newPub = rawPublicKey(newKey).toString('base64');
  return {
    kind: 'key_rotation',
    time: nowRfc3339(),
    old_public_key: rawPublicKey(oldKey).toString('base64'),
    new_public_key: newPub,
    new_key_id: keyIdOf(newKey),
    signature: crypto.sign(null, rotationMessage(newPub), oldKey).toString('base64'),
  };
}

/** True when `row` authorises the change from `oldPub` to `newPub` (base64 raw keys). */
export function authorisesRotation(row: Partial<Omit<KeyRotationRow, 'kind'>> & { kind?: string }, oldPub: string, newPub: string): boolean {
  if (row.kind !== 'key_rotation' || row.old_public_key !== oldPub || row.new_public_key !== newPub || typeof row.signature !== 'string') return false;
  try {
    return crypto.verify(null, rotationMessage(newPub), publicKeyFromRaw(Buffer.from(oldPub, 'base64')), Buffer.from(row.signature, 'base64'));
  } catch {
    return false;
  }
}

/** Refuses a key file that is not the host ledger's current signer (a rotation must be signed by the old key). */
export function assertIsSigner(currentSigner: string | null, key: KeyObject, file: string): void {
  if (currentSigner !== null && currentSigner !== rawPublicKey(key).toString('base64')) {
    throw new WitnessError('E_LEDGER', 'is not the key that signs this host ledger; a rotation must be signed by the current key', { file });
  }
}

export function hostKeyPrefix(stateDir: string): string { return path.join(stateDir, 'keys', 'host'); }

/** The state dir's host key, when present (no creation). */
export function existingHostKey(stateDir: string): KeyObject | null {
  // every session's open asks (sealCrashed): parsed once per file identity
  return parsedKeyFile(`${hostKeyPrefix(stateDir)}.key`);
}
