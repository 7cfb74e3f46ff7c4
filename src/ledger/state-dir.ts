import path from 'node:path';

/**
 * Where the state dir is, apart from the rest of state.ts: the thin `witness run` client
 * (src/cli/run-resident.ts) needs only this, and state.ts brings the flock binding's loader.
 */
export const DEFAULT_STATE_DIR = '/var/lib/agent-witness';

/** State dir: explicit option, else $WITNESS_STATE_DIR, else /var/lib/agent-witness. */
export function resolveStateDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.WITNESS_STATE_DIR ?? DEFAULT_STATE_DIR);
}
