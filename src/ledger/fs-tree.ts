import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { toHex } from './hash.js';
import { rootHash } from './merkle.js';

/**
 * Filesystem Merkle root for `--track PATH`: RFC 6962 root over one leaf per
 * entry, in byte order of the relative path. Leaf data is
 * "<relpath>\0<type>\0<mode octal>\0<size>\0<sha256 of content | link target>".
 * Symlinks are recorded, never followed; other special files record type only.
 */
export interface TrackedRoot { path: string; root: string; entries: number; bytes: number }

export function filesystemRoot(target: string): TrackedRoot {
  const base = path.resolve(target);
  const leaves: Array<[string, Uint8Array]> = [];
  let bytes = 0;
  const walk = (abs: string, rel: string): void => {
    let st: fs.Stats;
    try { st = fs.lstatSync(abs); } catch { leaves.push([rel, Buffer.from(`${rel}\0missing`)]); return; }
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      leaves.push([rel, Buffer.from(`${rel}\0dir\0${mode}\0\0`)]);
      for (const name of fs.readdirSync(abs).sort()) walk(path.join(abs, name), rel === '' ? name : `${rel}/${name}`);
    } else if (st.isFile()) {
      const digest = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
      bytes += st.size;
      leaves.push([rel, Buffer.from(`${rel}\0file\0${mode}\0${st.size}\0${digest}`)]);
    } else if (st.isSymbolicLink()) {
      leaves.push([rel, Buffer.from(`${rel}\0symlink\0${mode}\0\0${fs.readlinkSync(abs)}`)]);
    } else {
      leaves.push([rel, Buffer.from(`${rel}\0other\0${mode}\0\0`)]);
    }
  };
  walk(base, '');
  leaves.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
  return { path: base, root: toHex(rootHash(leaves.map((l) => l[1]))), entries: leaves.length, bytes };
}
