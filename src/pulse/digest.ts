import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WitnessError } from '../errors.js';
import { ensurePrivateDir, stateDir } from '../store/db.js';
import { buildDigest } from './digest-model.js';
import { renderHtml } from './digest-html.js';
import { renderMarkdown } from './digest-markdown.js';
import type { PulseRepo } from './repo.js';

/** Digest folder: env WITNESS_DIGEST_DIR, else <state dir>/digest. */
export function defaultDigestDir(env: NodeJS.ProcessEnv = process.env): string {
  const d = env.WITNESS_DIGEST_DIR;
  return d !== undefined && d !== '' ? d : join(stateDir(env), 'digest');
}

/**
 * …/YYYY-MM-DD/HH/ for the window's start (UTC); sub-hour windows get a
 * further MMSS level so every window has its own folder.
 */
export function digestPath(root: string, windowStart: number): string {
  const iso = new Date(windowStart).toISOString();
  const parts = [root, iso.slice(0, 10), iso.slice(11, 13)];
  const minuteSecond = iso.slice(14, 16) + iso.slice(17, 19);
  if (minuteSecond !== '0000') parts.push(minuteSecond);
  return join(...parts);
}

export interface WrittenDigest {
  dir: string;
  markdown: string;
  html: string;
}

/** Writes digest.md and digest.html atomically (temp + rename). */
export function writeDigest(repo: PulseRepo, root: string, windowStart: number, windowEnd: number): WrittenDigest {
  const model = buildDigest(repo, windowStart, windowEnd);
  const dir = digestPath(root, windowStart);
  const markdown = join(dir, 'digest.md');
  const html = join(dir, 'digest.html');
  try {
    ensurePrivateDir(dir);
    for (const [file, text] of [[markdown, renderMarkdown(model)], [html, renderHtml(model)]] as const) {
      writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    }
  } catch (cause) {
    if (cause instanceof WitnessError) throw cause;
    throw new WitnessError('E_IO', `cannot write digest (${(cause as Error).message})`, { file: dir, cause });
  }
  return { dir, markdown, html };
}
