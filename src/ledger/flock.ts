import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WitnessError } from '../errors.js';

/**
 * flock(2), from the native addon (native/flock.cc): Node has no flock. The
 * ledger's locks are flock locks on lock files that are kept, never unlinked:
 * the kernel drops a flock with the last fd of its holder, so a `kill -9`
 * leaves nothing stale, and no pid in a file is ever trusted.
 */
interface FlockBinding {
  flock(fd: number, op: number): boolean;
  flockOps: { LOCK_SH: number; LOCK_EX: number; LOCK_NB: number; LOCK_UN: number };
}

let binding: FlockBinding | undefined;

/**
 * The package root: the nearest ancestor holding agent-witness's package.json.
 * Walking up (rather than a fixed `../..`) also finds it from the copy of
 * src/ledger that the kill tests compile under node_modules/.cache.
 */
function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'agent-witness') return dir;
    } catch { /* no package.json here */ }
    if (path.dirname(dir) === dir) throw new WitnessError('E_NATIVE', 'cannot find the agent-witness package root (for the flock binding)');
  }
}

function load(): FlockBinding {
  if (binding) return binding;
  let mod: Partial<FlockBinding>;
  try {
    mod = createRequire(import.meta.url)('node-gyp-build')(packageRoot()) as Partial<FlockBinding>;
  } catch (err) {
    throw new WitnessError('E_NATIVE', `the native addon is missing or failed to load (${(err as Error).message.split('\n')[0]}); the ledger's locks need its flock binding: npm run build:native`, { cause: err });
  }
  if (typeof mod.flock !== 'function' || !mod.flockOps) throw new WitnessError('E_NATIVE', 'this build of the native addon has no flock binding; rebuild it (npm run build:native)');
  binding = mod as FlockBinding;
  return binding;
}

/**
 * Loads the binding now. A process that drops root (the cosigner's --user) calls this first:
 * afterwards it may no longer be able to read the addon (a checkout in root's 0700 home).
 */
export function preloadFlock(): void {
  load();
}

/** Takes an exclusive (or shared) lock without blocking: false when another open file holds a conflicting one. */
export function tryLock(fd: number, shared = false): boolean {
  const b = load();
  return b.flock(fd, (shared ? b.flockOps.LOCK_SH : b.flockOps.LOCK_EX) | b.flockOps.LOCK_NB);
}
