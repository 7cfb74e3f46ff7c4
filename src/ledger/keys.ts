import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { WitnessError } from '../errors.js';
import { sha256 } from './hash.js';

/**
 * Ed25519 keys. On disk: PREFIX.key is PKCS#8 PEM (mode 0600, root-only),
 * PREFIX.pub is SPKI PEM (shareable). The key id is the lowercase hex
 * SHA-256 of the raw 32-byte public key.
 */

// DER prefixes of the fixed-size Ed25519 PKCS#8 and SPKI encodings (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export type PrivateKeyInput = KeyObject | Uint8Array;
export type PublicKeyInput = KeyObject | Uint8Array;

export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new RangeError(`ed25519 seed must be 32 bytes, got ${seed.length}`);
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError(`ed25519 public key must be 32 bytes, got ${raw.length}`);
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function asPrivateKey(k: PrivateKeyInput): KeyObject {
  return k instanceof Uint8Array ? privateKeyFromSeed(k) : k;
}

export function asPublicKey(k: PublicKeyInput): KeyObject {
  if (k instanceof Uint8Array) return publicKeyFromRaw(k);
  return k.type === 'private' ? crypto.createPublicKey(k) : k;
}

/** A KeyObject never changes: its raw public key is exported once (a log's open and every host-ledger append ask). */
const rawOfKey = new WeakMap<KeyObject, Buffer>();

export function rawPublicKey(k: PublicKeyInput): Buffer {
  if (k instanceof Uint8Array) return Buffer.from(k);
  let raw = rawOfKey.get(k);
  if (raw === undefined) {
    raw = asPublicKey(k).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
    rawOfKey.set(k, raw);
  }
  return Buffer.from(raw); // a copy: callers may keep or change it
}

export function keyIdOf(k: PublicKeyInput): string {
  return sha256(rawPublicKey(k)).toString('hex');
}

export interface KeyFiles { privatePath: string; publicPath: string; keyId: string }

/** Writes PREFIX.key (0600, refuses to overwrite) and PREFIX.pub (0644). */
export function writeKeyPair(prefix: string): KeyFiles {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const privatePath = `${prefix}.key`;
  const publicPath = `${prefix}.pub`;
  const privPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const pubPem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
  let fd: number;
  try {
    fd = fs.openSync(privatePath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (cause) {
    throw new WitnessError('E_IO', `cannot create private key (${(cause as Error).message})`, { file: privatePath, cause });
  }
  try {
    fs.fchmodSync(fd, 0o600); // umask cannot widen it, but be explicit
    fs.writeSync(fd, privPem);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(publicPath, pubPem, { mode: 0o644 });
  return { privatePath, publicPath, keyId: keyIdOf(publicKey) };
}

/**
 * Parsed keys by path, with the identity of the file they were parsed from. A long-lived
 * process (the daemon) signs several checkpoints per `witness run` and parsing the PEM is
 * most of a signature's cost; a key file replaced or rewritten in any way (inode, size,
 * mtime, ctime) is read again. The owner and mode checks run on every load all the same.
 */
const parsedKeys = new Map<string, { identity: string; key: KeyObject }>();
const PARSED_KEYS_MAX = 8;
const fileIdentity = (st: fs.BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * A private key file parsed once per file identity, without loadPrivateKey's owner and mode
 * checks (for a key only looked at, never trusted to sign for a caller: the state dir's host
 * key when the appender holds another); null when it is missing or no key.
 */
export function parsedKeyFile(path: string): KeyObject | null {
  let st: fs.BigIntStats;
  try { st = fs.statSync(path, { bigint: true }); } catch { return null; }
  const identity = fileIdentity(st);
  const known = peekedKeys.get(path);
  if (known?.identity === identity) return known.key;
  let key: KeyObject;
  try { key = crypto.createPrivateKey(fs.readFileSync(path)); } catch { return null; }
  if (peekedKeys.size >= PARSED_KEYS_MAX) peekedKeys.delete(peekedKeys.keys().next().value!);
  peekedKeys.set(path, { identity, key });
  return key;
}
const peekedKeys = new Map<string, { identity: string; key: KeyObject }>();

/** Loads a PKCS#8 PEM private key; refuses keys other users could read. */
export function loadPrivateKey(path: string): KeyObject {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(path, { bigint: true });
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `cannot read signing key (${(cause as Error).message})`, { file: path, field: '--sign-key', cause });
  }
  const me = process.getuid?.() ?? 0;
  const uid = Number(st.uid);
  if (uid !== me && uid !== 0) {
    // a key another user owns is a key another user can replace: checkpoints signed with it prove nothing
    throw new WitnessError('E_CONFIG', `signing key belongs to uid ${uid}; it must be owned by root${me !== 0 ? ` or uid ${me}` : ''}`, { file: path, field: '--sign-key' });
  }
  const mode = Number(st.mode);
  if ((mode & 0o077) !== 0) {
    throw new WitnessError('E_CONFIG', `signing key is accessible to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`, { file: path, field: '--sign-key' });
  }
  const identity = fileIdentity(st);
  const known = parsedKeys.get(path);
  if (known?.identity === identity) return known.key;
  try {
    const key = crypto.createPrivateKey(fs.readFileSync(path));
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`key type is ${key.asymmetricKeyType}, expected ed25519`);
    if (parsedKeys.size >= PARSED_KEYS_MAX) parsedKeys.delete(parsedKeys.keys().next().value!);
    parsedKeys.set(path, { identity, key });
    return key;
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `not an ed25519 PKCS#8 PEM private key (${(cause as Error).message})`, { file: path, field: '--sign-key', cause });
  }
}

/** Loads a public key: SPKI PEM, or 32 raw bytes as hex/base64 text. */
export function loadPublicKey(path: string): KeyObject {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `cannot read public key (${(cause as Error).message})`, { file: path, field: '--pubkey', cause });
  }
  return parsePublicKey(text, path);
}

export function parsePublicKey(text: string, where = 'public key'): KeyObject {
  const t = text.trim();
  try {
    if (t.startsWith('-----BEGIN')) {
      const key = crypto.createPublicKey(t);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`key type is ${key.asymmetricKeyType}`);
      return key;
    }
    const raw = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
    return publicKeyFromRaw(raw);
  } catch (cause) {
    throw new WitnessError('E_CONFIG', `not an ed25519 public key (${(cause as Error).message})`, { file: where, field: 'public_key', cause });
  }
}
