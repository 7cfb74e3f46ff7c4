import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../errors.js';

/**
 * Root writes the ledger and the event stream where it is told. A path an
 * unprivileged user controls (a symlink, a hard link, a file or directory they
 * own) would let them aim those writes at /etc/shadow or into their own hands,
 * so such targets are refused with the reason, never followed.
 */

function ownerOk(st: fs.Stats): boolean {
  const me = process.getuid?.() ?? 0;
  return st.uid === me || st.uid === 0;
}

/** A session/state dir: refused when it, or an existing ancestor, is a symlink or belongs to someone else. */
export function refuseUnsafeDir(dir: string, field: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return; // will be created 0700 by us
  }
  if (st.isSymbolicLink()) {
    let target = '?';
    try { target = fs.readlinkSync(dir); } catch { /* raced */ }
    throw new WitnessError('E_CONFIG', `is a symlink (-> ${target}); refusing to follow it: the ledger is written only into a real directory the witness owns`, { file: dir, field });
  }
  if (!st.isDirectory()) throw new WitnessError('E_CONFIG', 'exists and is not a directory', { file: dir, field });
  if (!ownerOk(st)) {
    throw new WitnessError('E_CONFIG', `belongs to uid ${st.uid}; refusing to write a ledger into a directory another user controls`, { file: dir, field });
  }
}

/**
 * `--out FILE`: opened O_NOFOLLOW|O_APPEND, and kept only if it is a regular
 * file with one link, owned by us (or root). Returns the fd.
 */
export function openOutputFile(file: string, field = '--out'): number {
  const abs = path.resolve(file);
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'is a symlink; refusing to follow it' : (cause as Error).message;
    throw new WitnessError('E_CONFIG', `cannot open output (${why})`, { file: abs, field, cause });
  }
  const st = fs.fstatSync(fd);
  const reason = !st.isFile() && !st.isFIFO() ? 'is not a regular file or FIFO'
    : st.isFile() && st.nlink !== 1 ? `has ${st.nlink} hard links; refusing to write through a link to another file`
      : !ownerOk(st) ? `belongs to uid ${st.uid}; refusing to write into a file another user controls` : null;
  if (reason) {
    fs.closeSync(fd);
    throw new WitnessError('E_CONFIG', reason, { file: abs, field });
  }
  return fd;
}
