import { closeSync, openSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { log } from '../log.js';
import type { NativeSensor } from './native.js';
import { kernelDev } from './sensitive.js';

/**
 * Turns sensitive paths into what the kernel matches (bpf/sensitive.bpf.h):
 *  - identities of the paths themselves and of every file under a sensitive
 *    directory (bounded), so a hard link made elsewhere is still the file;
 *  - (parent identity, name) for every path whose parent exists, so a path
 *    created after the sensor started, or replaced, matches by name;
 *  - identities as the kernel computes them: each path is opened O_PATH by
 *    the sensor and the kernel reports the fd's superblock and inode
 *    (bpf/identity.bpf.h); stat(2) is the fallback when the iterator did not
 *    load, and the result says which was used.
 * The kernel maps are bounded (1024 entries each): what does not fit is
 * counted and named in `refused`, never a failure to start.
 */

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const DIR_FILES_MAX = 256;
const DIR_DEPTH_MAX = 3;
const BATCH = 200;

export interface SensitiveRegistration {
  /** identities registered (paths and files below sensitive directories) */
  watched: number;
  /** (parent, name) entries registered */
  names: number;
  /** configured paths that neither exist nor have an existing parent: not watched */
  skipped: string[];
  /** entries the kernel's maps refused (their cap): named so the gap is visible */
  refused: string[];
  /** where identities came from: the kernel's own objects, or stat(2) when the iterator is unavailable */
  identity: 'kernel' | 'stat';
}

interface Plan { files: string[]; names: { parent: string; name: string }[]; skipped: string[] }

function isDir(path: string): boolean | null {
  try { return statSync(path).isDirectory(); } catch { return null; }
}

/** Files under a sensitive directory, breadth-first, bounded in depth and count. */
function filesUnder(dir: string, out: string[]): void {
  let level = [dir];
  for (let depth = 0; depth < DIR_DEPTH_MAX && level.length > 0; depth++) {
    const next: string[] = [];
    for (const d of level) {
      let entries;
      try { entries = readdirSync(d, { withFileTypes: true }); } catch { continue; }
      let n = 0;
      for (const e of entries) {
        if (n++ >= DIR_FILES_MAX) break;
        const p = join(d, e.name);
        if (e.isDirectory()) next.push(p);
        else if (e.isFile()) out.push(p);
      }
    }
    level = next;
  }
}

export function planSensitive(paths: string[]): Plan {
  const files: string[] = [];
  const names: { parent: string; name: string }[] = [];
  const skipped: string[] = [];
  for (const p of new Set(paths)) {
    const self = isDir(p);
    const parent = dirname(p);
    const parentIsDir = parent !== p && isDir(parent) === true;
    if (self !== null) {
      files.push(p);
      if (self) filesUnder(p, files);
    }
    if (parentIsDir) names.push({ parent, name: basename(p) });
    if (self === null && !parentIsDir) skipped.push(p);
  }
  return { files: [...new Set(files)], names, skipped };
}

type Identity = { dev: number; ino: bigint };

/** Kernel identities of `paths` (null when a path cannot be opened), in batches of open O_PATH fds. */
function identities(native: NativeSensor, paths: string[]): { ids: (Identity | null)[]; source: 'kernel' | 'stat' } {
  const ids: (Identity | null)[] = [];
  let source: 'kernel' | 'stat' = 'kernel';
  for (let i = 0; i < paths.length; i += BATCH) {
    const batch = paths.slice(i, i + BATCH);
    const fds = batch.map((p) => { try { return openSync(p, O_PATH | O_CLOEXEC); } catch { return -1; } });
    try {
      let byFd: Map<number, Identity> | null = null;
      if (source === 'kernel') {
        try {
          byFd = new Map(native.kernelIdentities().map((r) => [r.fd, { dev: r.dev, ino: r.ino }]));
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'kernel identity iterator unavailable: sensitive identities from stat(2)');
          source = 'stat';
        }
      }
      batch.forEach((p, j) => {
        if (fds[j]! < 0) return void ids.push(null);
        if (byFd) return void ids.push(byFd.get(fds[j]!) ?? null);
        try {
          const st = statSync(p, { bigint: true });
          ids.push({ dev: kernelDev(st.dev), ino: st.ino });
        } catch { ids.push(null); }
      });
    } finally {
      for (const fd of fds) if (fd >= 0) closeSync(fd);
    }
  }
  return { ids, source };
}

export function registerSensitive(native: NativeSensor, paths: string[]): SensitiveRegistration {
  const plan = planSensitive(paths);
  const parents = [...new Set(plan.names.map((n) => n.parent))];
  const { ids, source } = identities(native, [...plan.files, ...parents]);
  const refused: string[] = [];
  let watched = 0;
  let names = 0;
  plan.files.forEach((p, i) => {
    const id = ids[i];
    if (!id) return;
    try { native.addSensitive(id.dev, id.ino); watched++; } catch { refused.push(p); }
  });
  const parentId = new Map(parents.map((p, i) => [p, ids[plan.files.length + i] ?? null]));
  for (const n of plan.names) {
    const id = parentId.get(n.parent);
    if (!id) continue;
    try { native.addSensitiveName(id.dev, id.ino, n.name); names++; } catch { refused.push(join(n.parent, n.name)); }
  }
  if (refused.length > 0) {
    log.warn({ refused: refused.length, first: refused.slice(0, 5) },
      'the kernel sensitive set is full (1024 identities / 1024 names): these paths are NOT watched');
  }
  return { watched, names, skipped: plan.skipped, refused, identity: source };
}
