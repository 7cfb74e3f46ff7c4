import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';
import { appendGlobalRow } from './global.js';
import { keyIdOf, loadPrivateKey, writeKeyPair } from './keys.js';
import { loadVerifierKey, vkeyPathOf, writeVkey } from './note-key-files.js';
import { hostKeyPrefix, keyRotationRow } from './rotation.js';
import { ensurePrivateDir } from './state.js';

/**
 * Replaces the state dir's host key the only way verification accepts: a
 * `key_rotation` row naming the new key, signed by the old key, sealed into
 * the host ledger by the old key; then the new key takes `keys/host.key`
 * (the old pair is kept as `host.rotated-<time>.{key,pub}`).
 */
export function rotateHostKey(stateDir: string): { oldKeyId: string; newKeyId: string } {
  const prefix = hostKeyPrefix(stateDir);
  if (!fs.existsSync(`${prefix}.key`)) throw new WitnessError('E_LEDGER', 'no host key to rotate', { file: `${prefix}.key` });
  const oldKey = loadPrivateKey(`${prefix}.key`);
  ensurePrivateDir(path.dirname(prefix));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const next = `${prefix}.next-${stamp}`;
  const files = writeKeyPair(next);
  const newKey = loadPrivateKey(files.privatePath);
  const row = keyRotationRow(oldKey, newKey);
  appendGlobalRow(stateDir, oldKey, row);
  fs.renameSync(`${prefix}.key`, `${prefix}.rotated-${stamp}.key`);
  fs.renameSync(`${prefix}.pub`, `${prefix}.rotated-${stamp}.pub`);
  fs.renameSync(files.privatePath, `${prefix}.key`);
  fs.renameSync(files.publicPath, `${prefix}.pub`);
  // The signed-note verifier key (C2SP formats) names the host key too: same name and type, new key.
  const vkey = vkeyPathOf(`${prefix}.key`);
  if (fs.existsSync(vkey)) {
    const old = loadVerifierKey(vkey);
    fs.renameSync(vkey, `${prefix}.rotated-${stamp}.vkey`);
    writeVkey(`${prefix}.key`, old.name, old.alg);
  }
  return { oldKeyId: keyIdOf(oldKey), newKeyId: row.new_key_id };
}
