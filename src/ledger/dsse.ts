import crypto from 'node:crypto';
import { asPrivateKey, asPublicKey, keyIdOf, type PrivateKeyInput, type PublicKeyInput } from './keys.js';

/**
 * DSSE v1 (github.com/secure-systems-lab/dsse, protocol.md):
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 * LEN is the ASCII decimal byte length; the signature is Ed25519 over PAE.
 */
export interface DsseSignature { keyid: string; sig: string }
export interface DsseEnvelope { payloadType: string; payload: string; signatures: DsseSignature[] }

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8');
  const head = Buffer.from(`DSSEv1 ${type.length} `, 'latin1');
  const mid = Buffer.from(` ${payload.length} `, 'latin1');
  return Buffer.concat([head, type, mid, payload]);
}

export function sign(payloadType: string, payload: Uint8Array, privateKey: PrivateKeyInput, keyid?: string): DsseEnvelope {
  const key = asPrivateKey(privateKey);
  const sig = crypto.sign(null, pae(payloadType, payload), key);
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid: keyid ?? keyIdOf(key), sig: sig.toString('base64') }],
  };
}

/** True when at least one signature verifies under `publicKey` (keyids are hints, never trusted). */
export function verify(envelope: DsseEnvelope, publicKey: PublicKeyInput): boolean {
  if (!isEnvelope(envelope)) return false;
  const key = asPublicKey(publicKey);
  const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  return envelope.signatures.some((s) => {
    const sig = Buffer.from(s.sig, 'base64');
    return sig.length === 64 && crypto.verify(null, message, key, sig);
  });
}

export function isEnvelope(x: unknown): x is DsseEnvelope {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return typeof e.payloadType === 'string' && typeof e.payload === 'string' && Array.isArray(e.signatures)
    && e.signatures.every((s) => typeof s === 'object' && s !== null && typeof (s as DsseSignature).sig === 'string');
}

export function payloadOf(envelope: DsseEnvelope): Buffer {
  return Buffer.from(envelope.payload, 'base64');
}
