import { closeSync, lstatSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '../log.js';
import { ExecutableHasher } from '../identity/exe-hash.js';
import { ensurePrivateDir } from '../ledger/state.js';

/**
 * Executable digests kept between `witness run`s, in the state dir (root
 * only, 0600). Every run's enricher identifies the agent's whole parent chain
 * (the guardian, the witness's own node, the shell above it), and a fresh
 * process would hash them all again: ~100 MB of node alone, hundreds of ms
 * per call, which a resident sensor cannot save since this process does its
 * own attribution. Keys are file identities (device, inode, size, mtime and
 * ctime in ns), so a file changed in any way is hashed again; an entry is only
 * ever a digest this host computed of that exact identity.
 */

const FILE = 'exe-hash-cache.json';
const MAX_ENTRIES = 4096;

export function cachedHasher(stateDir: string): { hasher: ExecutableHasher; save: () => void } {
  const hasher = new ExecutableHasher();
  const dir = join(stateDir, 'cache');
  const path = join(dir, FILE);
  // what the file holds: a run that hashed nothing new (a resident run of a cached tree) rewrites nothing
  let onDisk = '';
  try {
    const st = lstatSync(path);
    // root's own regular file, private: anything else is not trusted as a digest source
    if (st.isFile() && st.uid === 0 && (st.mode & 0o077) === 0) {
      const text = readFileSync(path, 'utf8');
      const entries = JSON.parse(text) as unknown;
      onDisk = text;
      if (Array.isArray(entries)) hasher.seed(entries.filter((e): e is [string, string] => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string'));
    }
  } catch { /* no cache yet, or unreadable: hash as without one */ }
  const save = (): void => {
    try {
      const text = JSON.stringify(hasher.known().slice(-MAX_ENTRIES));
      if (text === onDisk) return;
      ensurePrivateDir(dir);
      const tmp = `${path}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w', 0o600);
      // no fsync: a cache torn by a crash fails to parse and is ignored (hashing again is the cost)
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      onDisk = text;
    } catch (err) {
      log.debug({ err: (err as Error).message, path }, 'executable digest cache not saved');
    }
  };
  return { hasher, save };
}
