import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WitnessError } from '../errors.js';
import { defaultDigestDir, writeDigest } from '../pulse/digest.js';
import { PulseRepo } from '../pulse/repo.js';
import { defaultStorePath, openStore } from '../store/db.js';

/**
 * `witness digest [--window T] [--open] [--dir DIR] [--store PATH]`
 * T is any instant inside the wanted window (RFC 3339, or YYYY-MM-DDTHH for
 * an hour); default is the latest closed window. Prints the digest paths.
 */
export async function run(argv: string[]): Promise<number> {
  let values: { window?: string; open?: boolean; dir?: string; store?: string };
  try {
    values = parseArgs({ args: argv, strict: true, options: {
      window: { type: 'string' }, open: { type: 'boolean' }, dir: { type: 'string' }, store: { type: 'string' },
    } }).values;
  } catch (cause) {
    throw new WitnessError('E_CONFIG', (cause as Error).message, { field: 'arguments', cause });
  }
  const path = values.store ?? defaultStorePath();
  if (!existsSync(path)) throw new WitnessError('E_STORE', 'no pulse store here yet (has the daemon run?)', { file: path });
  const store = openStore(path);
  try {
    const repo = new PulseRepo(store);
    const windowMs = repo.getMetaNumber('window_ms');
    const latestEnd = repo.latestWindowEnd();
    if (windowMs === null || latestEnd === null) throw new WitnessError('E_STORE', 'the pulse has not closed any window yet', { file: path });
    let start: number;
    if (values.window === undefined) {
      start = latestEnd - windowMs;
    } else {
      const t = parseInstant(values.window);
      start = Math.floor(t / windowMs) * windowMs;
      if (start + windowMs > latestEnd) throw new WitnessError('E_CONFIG', `window ${new Date(start).toISOString()} has not closed yet`, { field: '--window' });
    }
    const out = writeDigest(repo, values.dir ?? defaultDigestDir(), start, start + windowMs);
    process.stdout.write(`${out.markdown}\n${out.html}\n`);
    if (values.open) openInViewer(out.html);
    return 0;
  } finally {
    store.close();
  }
}

export function parseInstant(text: string): number {
  const hour = /^\d{4}-\d{2}-\d{2}T\d{2}$/.test(text) ? `${text}:00:00Z` : text;
  const t = Date.parse(hour);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    throw new WitnessError('E_CONFIG', `'${text}' is not a time (use RFC 3339 or YYYY-MM-DDTHH)`, { field: '--window' });
  }
  return t;
}

function openInViewer(file: string): void {
  const child = spawn('xdg-open', [file], { detached: true, stdio: 'ignore' });
  child.on('error', () => process.stderr.write(`witness digest: could not run xdg-open; open ${file} yourself\n`));
  child.unref();
}
