import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

/** Mounts a tmpfs with `options` (e.g. `size=4m,mode=0700`) on `dir`; returns `dir`. */
export function mountTmpfs(dir: string, options: string): string {
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  return dir;
}

/**
 * A test's scratch mounts and dirs, in order: each is unmounted (lazily when still busy) and
 * removed. Removing a dir that is no mount point only fails the umount, which is fine.
 */
export function unmountAndRemove(paths: readonly string[]): void {
  for (const m of paths) {
    if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
}
