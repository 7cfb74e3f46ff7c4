import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { WitnessError } from '../errors.js';
import { asPublicKey, keyIdOf, loadPrivateKey, loadPublicKey, rawPublicKey } from './keys.js';

export interface LocalHostKey { stateDir: string; publicPath: string; key: KeyObject; keyId: string }

/**
 * The key `witness verify` pins when no `--pubkey` is given: the host key of the state dir that
 * holds PATH (PATH itself or its nearest ancestor with `keys/host.pub`, the key the daemon and
 * `witness run` sign with by default). This proves the ledger was signed by the key this host
 * signs with, which is what a local check after the quick start wants; it does not stand
 * against someone who can rewrite the state dir, keys included (pin a copy kept elsewhere with
 * `--pubkey` for that). When `keys/host.key` is readable it must be the private half of
 * `host.pub`: a swapped public file is refused, never pinned.
 */
export function findLocalHostKey(target: string): LocalHostKey | null {
  let dir: string;
  try { dir = fs.realpathSync(target); } catch { return null; }
  for (;;) {
    const publicPath = path.join(dir, 'keys', 'host.pub');
    if (fs.existsSync(publicPath)) {
      const key = loadPublicKey(publicPath);
      const privatePath = path.join(dir, 'keys', 'host.key');
      if (fs.existsSync(privatePath) && !rawPublicKey(asPublicKey(loadPrivateKey(privatePath))).equals(rawPublicKey(key))) {
        throw new WitnessError('E_LEDGER', 'keys/host.pub is not the public half of keys/host.key (replaced?); pass --pubkey', { file: publicPath });
      }
      return { stateDir: dir, publicPath, key, keyId: keyIdOf(key) };
    }
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}
