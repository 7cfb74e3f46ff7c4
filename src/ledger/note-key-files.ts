import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { loadPrivateKey, rawPublicKey, writeKeyPair } from './keys.js';
import { ALG_ED25519, encodeVerifierKey, parseVerifierKey, signerKeyFromPrivate, type NoteSignerKey, type NoteVerifierKey } from './note-keys.js';
import { ensurePrivateDir } from './state.js';
import { fsyncDir, writeFully } from './tail.js';

/**
 * Key files for the C2SP formats. A key pair PREFIX.key (PKCS#8 PEM, 0600)
 * and PREFIX.pub gets a third file, PREFIX.vkey: the signed-note verifier
 * key `<name>+<key id>+base64(type || key)` that names the key (the log's
 * origin, or the cosigner's name) and says its type (0x01 log, 0x04 cosigner).
 */
export const vkeyPathOf = (keyPath: string): string => `${keyPath.replace(/\.key$/, '')}.vkey`;

/** A host id for origins: the machine id (systemd), else the hostname. */
export function hostId(): string {
  try {
    const id = fs.readFileSync('/etc/machine-id', 'utf8').trim();
    if (/^[0-9a-f]{32}$/.test(id)) return id.slice(0, 16);
  } catch { /* no machine id: containers, minimal images */ }
  return os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'host';
}

/** `<host-id>.agent-witness/<state dir>`: one log per state dir (spaces and '+' cannot appear in a key name). */
export function defaultOrigin(stateDir: string): string {
  return `${hostId()}.agent-witness${path.resolve(stateDir)}`.replace(/[\s+]/gu, '_');
}

/** Writes a small file by temp + fsync + rename: a crash leaves the old file or the new one, never half of it. */
function writeAtomically(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try { writeFully(fd, Buffer.from(data)); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

export function writeVkey(keyPath: string, name: string, alg: number): string {
  const vkey = encodeVerifierKey(name, alg, rawPublicKey(loadPrivateKey(keyPath)));
  writeAtomically(vkeyPathOf(keyPath), `${vkey}\n`, 0o644);
  return vkey;
}

/**
 * `<state>/keys/host.key` (+ `.pub`), created so that a writer killed at any
 * point never leaves a half-written key for the next one to choke on: the key
 * is written and fsync'd under a temporary name and linked into place (link
 * never overwrites, so two racing writers agree on one key).
 */
export function ensureHostKey(stateDir: string): string {
  const keyDir = path.join(stateDir, 'keys');
  const keyPath = path.join(keyDir, 'host.key');
  if (!fs.existsSync(keyPath)) {
    ensurePrivateDir(keyDir);
    const tmp = path.join(keyDir, `.host-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    writeKeyPair(tmp);
    try {
      fs.linkSync(`${tmp}.key`, keyPath);
      fsyncDir(keyDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // a concurrent writer linked its key first
    } finally {
      fs.rmSync(`${tmp}.key`, { force: true });
      fs.rmSync(`${tmp}.pub`, { force: true });
    }
  }
  const pubPath = path.join(keyDir, 'host.pub');
  if (!fs.existsSync(pubPath)) {
    writeAtomically(pubPath, crypto.createPublicKey(loadPrivateKey(keyPath)).export({ format: 'pem', type: 'spki' }) as string, 0o644);
  }
  return keyPath;
}

function readVerifierKeyText(file: string, field: string): string {
  try { return fs.readFileSync(file, 'utf8').trim(); } catch (cause) {
    throw new WitnessError('E_CONFIG', `cannot read verifier key (${(cause as Error).message})`, { file, field, cause });
  }
}

export function loadVerifierKey(file: string, field = '--vkey'): NoteVerifierKey {
  return parseVerifierKeyText(readVerifierKeyText(file, field), file, field);
}

function parseVerifierKeyText(text: string, file: string, field: string): NoteVerifierKey {
  try { return parseVerifierKey(text); } catch (cause) {
    throw new WitnessError('E_CONFIG', `not a signed-note verifier key <name>+<8 hex>+<base64>: ${(cause as Error).message}`, { file, field, cause });
  }
}

/**
 * Signers by key path, with the verifier key's text and the private key object they were
 * made from: the daemon signs a continuity note for every ledger checkpoint (three per
 * `witness run`), and deriving the signer is most of a signature's cost. loadPrivateKey
 * re-reads a key file that changed, so a rotated key or a rewritten .vkey makes a new signer.
 */
const signers = new Map<string, { vkeyText: string; key: KeyObject; signer: NoteSignerKey }>();

/** The note signer for PREFIX.key, named by PREFIX.vkey (whose type, 0x01 or 0x04, it keeps). */
export function loadNoteSigner(keyPath: string): NoteSignerKey {
  const vkeyPath = vkeyPathOf(keyPath);
  const vkeyText = readVerifierKeyText(vkeyPath, '--key');
  const key = loadPrivateKey(keyPath);
  const known = signers.get(keyPath);
  if (known && known.vkeyText === vkeyText && known.key === key) return known.signer;
  const vkey = parseVerifierKeyText(vkeyText, vkeyPath, '--key');
  const signer = signerKeyFromPrivate(vkey.name, vkey.alg, key);
  if (signer.keyHash !== vkey.keyHash) throw new WitnessError('E_CONFIG', 'the .vkey beside this key names a different key', { file: vkeyPath, field: '--key' });
  if (signers.size >= 8) signers.delete(signers.keys().next().value!);
  signers.set(keyPath, { vkeyText, key, signer });
  return signer;
}

/**
 * The state dir's own log key, `<state>/keys/host.key`, and its verifier key
 * `<state>/keys/host.vkey` named by the state dir's origin; both created on first use.
 */
export function hostNoteSigner(stateDir: string): NoteSignerKey {
  const keyPath = ensureHostKey(stateDir);
  if (!fs.existsSync(vkeyPathOf(keyPath))) writeVkey(keyPath, defaultOrigin(stateDir), ALG_ED25519);
  return loadNoteSigner(keyPath);
}
