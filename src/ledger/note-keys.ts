import crypto, { type KeyObject } from 'node:crypto';
import { WitnessError } from '../errors.js';
import { privateKeyFromSeed, publicKeyFromRaw, rawPublicKey } from './keys.js';

/**
 * signed-note keys (c2sp.org/signed-note, Go golang.org/x/mod/sumdb/note):
 *   verifier key  <name>+<8 hex key hash>+base64(type || public key)
 *   signer key    PRIVATE+KEY+<name>+<8 hex key hash>+base64(type || ed25519 seed)
 *   key hash      first 4 bytes (big-endian) of SHA-256(name || "\n" || type || public key)
 * Type 0x01 is an Ed25519 note signature (the log's key); type 0x04 is an
 * Ed25519 cosignature/v1 key (a witness, c2sp.org/tlog-cosignature).
 */
export const ALG_ED25519 = 0x01;
export const ALG_COSIGNATURE_V1 = 0x04;

export interface NoteVerifierKey {
  name: string;
  keyHash: number;
  alg: number;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  key: KeyObject;
}

export interface NoteSignerKey extends NoteVerifierKey {
  privateKey: KeyObject;
}

const malformed = (what: string, why: string): WitnessError => new WitnessError('E_LEDGER', `malformed ${what}: ${why}`, { field: what });

// Go's unicode.IsSpace: ASCII whitespace, U+0085, U+00A0 and the Unicode White_Space set.
const UNICODE_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** A JS string is valid UTF-8 once encoded unless it holds a lone surrogate. */
export function isWellFormed(s: string): boolean { return !LONE_SURROGATE.test(s); }

/** A key name is non-empty, well-formed UTF-8, and has neither Unicode spaces nor '+'. */
export function isValidName(name: string): boolean {
  return name !== '' && isWellFormed(name) && !UNICODE_SPACE.test(name) && !name.includes('+');
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict RFC 4648 §4 base64: canonical padding and zero trailing bits (Buffer.from alone skips junk). */
export function decodeBase64Strict(s: string): Buffer | null {
  if (!B64.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

export function keyHash(name: string, algAndKey: Uint8Array): number {
  return crypto.createHash('sha256').update(name, 'utf8').update('\n').update(algAndKey).digest().readUInt32BE(0);
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** Go's chop: split at the first `sep`; when absent, everything is `before`. */
function chop(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)];
}

function parseHash(hash16: string): number | null {
  return /^[0-9a-fA-F]{8}$/.test(hash16) ? Number.parseInt(hash16, 16) : null;
}

export function parseVerifierKey(text: string): NoteVerifierKey {
  const [name, rest] = chop(text, '+');
  const [hash16, key64] = chop(rest, '+');
  const hash = parseHash(hash16);
  const key = decodeBase64Strict(key64);
  if (hash === null || key === null || key.length === 0 || !isValidName(name)) throw malformed('verifier key', 'expected <name>+<8 hex>+<base64>');
  if (hash !== keyHash(name, key)) throw malformed('verifier key', 'key hash does not match name and key');
  const alg = key[0]!;
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) throw malformed('verifier key', `unknown key type 0x${alg.toString(16).padStart(2, '0')}`);
  const publicKey = key.subarray(1);
  if (publicKey.length !== 32) throw malformed('verifier key', 'an Ed25519 key is 32 bytes');
  return { name, keyHash: hash, alg, publicKey, key: publicKeyFromRaw(publicKey) };
}

export function parseSignerKey(text: string): NoteSignerKey {
  const [priv1, r1] = chop(text, '+');
  const [priv2, r2] = chop(r1, '+');
  const [name, r3] = chop(r2, '+');
  const [hash16, key64] = chop(r3, '+');
  const hash = parseHash(hash16);
  const key = decodeBase64Strict(key64);
  if (priv1 !== 'PRIVATE' || priv2 !== 'KEY' || hash === null || key === null || key.length === 0 || !isValidName(name)) {
    throw malformed('signer key', 'expected PRIVATE+KEY+<name>+<8 hex>+<base64>');
  }
  const alg = key[0]!;
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) throw malformed('signer key', `unknown key type 0x${alg.toString(16).padStart(2, '0')}`);
  const seed = key.subarray(1);
  if (seed.length !== 32) throw malformed('signer key', 'an Ed25519 seed is 32 bytes');
  const privateKey = privateKeyFromSeed(seed);
  const publicKey = rawPublicKey(privateKey);
  // The hash names the public key; it can only be checked after deriving it.
  if (hash !== keyHash(name, Buffer.concat([Buffer.of(alg), publicKey]))) throw malformed('signer key', 'key hash does not match name and key');
  return { name, keyHash: hash, alg, publicKey, key: crypto.createPublicKey(privateKey), privateKey };
}

export function encodeVerifierKey(name: string, alg: number, publicKey: Uint8Array): string {
  if (!isValidName(name)) throw malformed('key name', `'${name}' must be non-empty, without spaces or '+'`);
  const algKey = Buffer.concat([Buffer.of(alg), publicKey]);
  return `${name}+${hex8(keyHash(name, algKey))}+${algKey.toString('base64')}`;
}

/** The signer-key text of an Ed25519 private key (its 32-byte seed). */
export function encodeSignerKey(name: string, alg: number, privateKey: KeyObject): string {
  if (!isValidName(name)) throw malformed('key name', `'${name}' must be non-empty, without spaces or '+'`);
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const hash = keyHash(name, Buffer.concat([Buffer.of(alg), rawPublicKey(privateKey)]));
  return `PRIVATE+KEY+${name}+${hex8(hash)}+${Buffer.concat([Buffer.of(alg), seed]).toString('base64')}`;
}

/** The same signer under another key type (a log key's seed used as cosigner, or back): the hash is recomputed. */
export function signerKeyFromPrivate(name: string, alg: number, privateKey: KeyObject): NoteSignerKey {
  return parseSignerKey(encodeSignerKey(name, alg, privateKey));
}
